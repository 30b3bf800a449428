// Blob garbage collection (`sluice gc`): removes the claim-check payloads ("parsed/", "embedded/")
// and uploads ("uploads/") that nothing will read any more. The stages remove a document's blobs
// once it is indexed, so what is left are orphans: a worker died between writing a blob and
// sending the message naming it, a stage stopped before its cleanup ran, or an upload's task was
// never queued.
//
// A blob is removed only when both hold:
// - it is older than the TTL (last_modified before now - older_than), which covers blobs whose
//   message is about to be sent, and
// - no live message names its key: every message on a retry or dead-letter topic (a replay needs
//   its blobs), and on a stage's input topic every message at or after the stage group's committed
//   offset (work not done yet). Messages are matched by the blob's key appearing in their value.
// When the topics cannot be read the collection stops with that error: never remove blindly.
// Thread-safety: a free function; it reads the queue with its own ephemeral consumers.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "pipeline/settings.h"
#include "queue/queue.h"
#include "store/blob_store.h"

namespace sluice::pipeline {

struct GcOptions {
  std::chrono::milliseconds older_than{std::chrono::hours(24)};
  bool dry_run = false;  // report what would be removed, remove nothing
  std::vector<std::string> prefixes = {"parsed/", "embedded/", "uploads/"};
};

struct GcReport {
  uint64_t listed = 0;      // blobs under the prefixes
  uint64_t young = 0;       // kept: younger than the TTL
  uint64_t referenced = 0;  // kept: a live message names it
  uint64_t removed = 0;     // removed (or, with dry_run, would be)
  uint64_t removed_bytes = 0;
  std::vector<std::string> removed_uris;  // the first 1,000
  std::vector<std::string> errors;        // removals that failed (the rest went on)
};

[[nodiscard]] Result<GcReport> collect_garbage(queue::Queue& q, store::BlobStore& store,
                                               const PipelineSettings& settings, const GcOptions& opts);

}  // namespace sluice::pipeline
