// Dead letters: the messages a stage gave up on, waiting on `<topic>.dlq` with the error in their
// headers (StageRunner writes them). This module lists them and sends chosen ones back to the
// topic they failed on; `sluice dlq` and the server's dead-letter view are both built on it.
//
// Reading never disturbs a consumer group: every read is an ephemeral consumer that reads each
// partition from its first stored offset up to the end offset seen when the read started
// (read_to_end). What was replayed is recorded in a topic of its own (the ledger,
// kTopicDlqLedger), one message per replayed dead letter naming its DLQ topic, partition and
// offset, so a listing marks it and a second replay skips it on every queue backend. A replay is
// at-least-once like the rest of the pipeline: the messages are acknowledged before their ledger
// entries are written, so a crash between the two sends them again next time (the stages' sinks
// are idempotent).
//
// The same machinery serves every kind of held message: load_held() and send_held_on() take the
// topics the messages wait on and the ledger that records which were sent on; the documents the
// quality gate holds on doc_review (review.h) use them with a ledger of their own.
//
// Ownership: the functions borrow the Queue for the call; a ReplayResult points into the caller's
// dead letters, which must outlive it. Thread-safety: free functions, each call with its own
// consumer or producer; DeadLetter is plain data. Nothing here prints: errors are Status values.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::pipeline {

// Set on a replayed message: the dead letter it came from ("<dlq topic>/<partition>/<offset>").
inline constexpr const char* kHeaderReplayedFrom = "replayed_from";

// The dead-letter topic of topic T: "T.dlq" (T itself when it already ends in ".dlq").
std::string dlq_topic_name(std::string_view topic);

// Where a message lives; for a dead letter, what the ledger names.
struct Coordinates {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  auto operator<=>(const Coordinates&) const = default;
  // "<topic>/<partition>/<offset>", the form of the replayed_from header.
  std::string to_string() const;
};

// A held message: a dead letter, or a document held for review (review.h).
struct DeadLetter {
  Coordinates at;  // on its DLQ topic (or doc_review)
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;  // the doc id
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> replayed_at;  // ISO-8601 UTC; set when the ledger names this message

  // The first header with this name.
  std::optional<std::string_view> header(std::string_view name) const;
  // The topic it failed on: its original_topic header, else the DLQ topic's name without ".dlq".
  std::string original_topic() const;
  // Its attempt header, when that is a decimal integer.
  std::optional<int64_t> attempts() const;
};

// Every dead letter of every `<topic>.dlq` (or only of `topic`'s, given as T or T.dlq, when it is
// not empty), oldest first, each marked when the ledger names it. Unsupported, saying how to read
// them instead, on a backend without offsets; NotFound (with context) when `topic` has no DLQ topic.
[[nodiscard]] Result<std::vector<DeadLetter>> load_dead_letters(queue::Queue& q,
                                                                const std::string& topic = "");

// One dead letter the queue acknowledged on its original topic.
struct Replayed {
  const DeadLetter* letter = nullptr;  // one of the chosen
  Coordinates to;                      // where it went: original topic, partition, offset
  bool recorded = false;               // the ledger names it (else a second replay sends it again)
};

struct ReplayResult {
  // The chosen dead letters that went back, acknowledged, in the order they were chosen.
  std::vector<Replayed> replayed;
  // Why the other chosen dead letters did not go back: the first send refused or not
  // acknowledged. OK when every one went back.
  Status send_error;
  // Why some of `replayed` are not recorded in the ledger: the first ledger write refused or not
  // acknowledged. OK when every one is recorded.
  Status ledger_error;

  size_t recorded() const;
};

// Sends the chosen dead letters (the caller picks them, normally ones not yet replayed) back to
// their original topics with the same key, value and trace_id, at attempt 1 and with a
// replayed_from header; waits for the acknowledgements; then records each acknowledged one in the
// ledger. An error means nothing was sent: a destination topic is missing (all or nothing), or the
// ledger topic or a producer could not be made. Nothing chosen: nothing is done.
[[nodiscard]] Result<ReplayResult> replay_dead_letters(queue::Queue& q,
                                                       std::span<const DeadLetter* const> chosen);

// The general forms of the two above. load_held: every message of `topics` (described with their
// offsets), oldest first, each marked when `ledger_topic` names it. send_held_on: replay_dead_letters
// recording in `ledger_topic`.
[[nodiscard]] Result<std::vector<DeadLetter>> load_held(queue::Queue& q,
                                                        const std::vector<queue::TopicInfo>& topics,
                                                        const std::string& ledger_topic);
[[nodiscard]] Result<ReplayResult> send_held_on(queue::Queue& q, std::span<const DeadLetter* const> chosen,
                                                const std::string& ledger_topic);

}  // namespace sluice::pipeline
