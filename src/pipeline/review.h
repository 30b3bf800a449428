// Documents held for review: what the parse stage's quality gate (stages.h) put on doc_review
// instead of doc_parsed — documents whose OCR confidence was too low or that had too many empty
// pages — and releasing them past the gate. `sluice review` and anything else that lists or
// releases held documents is built on this.
//
// It is the dead letters' machinery (dead_letters.h) on another topic: reading never disturbs a
// consumer group, a release sends the held doc_parsed message on to doc_parsed (its
// original_topic header) with the same key, value and trace_id, at attempt 1, and records it in a
// ledger of its own (kTopicReviewLedger), so a listing marks it released and a second release
// skips it. At-least-once, like a replay: embed and index are idempotent.
//
// Ownership: the functions borrow the Queue for the call. Thread-safety: free functions; a
// HeldDocument is plain data. Nothing here prints: errors are Status values.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "pipeline/dead_letters.h"
#include "pipeline/stages.h"
#include "queue/queue.h"

namespace sluice::pipeline {

// The ledger of released documents.
inline constexpr const char* kTopicReviewLedger = "sluice.review.released";

struct HeldDocument {
  DeadLetter message;        // on doc_review; replayed_at is when it was released
  std::optional<Work> work;  // its envelope, when readable: source, pages, OCR confidence
  std::string reason;        // why the gate held it
};

// Every document held on doc_review, oldest first, each marked when it was released. An absent
// doc_review is an empty one; a backend without offsets is kUnsupported (saying how to read them).
[[nodiscard]] Result<std::vector<HeldDocument>> load_held_for_review(queue::Queue& q);

// Sends the chosen held messages on to doc_parsed, past the gate (see above).
[[nodiscard]] Result<ReplayResult> release_from_review(queue::Queue& q,
                                                       std::span<const DeadLetter* const> chosen);

}  // namespace sluice::pipeline
