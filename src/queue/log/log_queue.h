// The embedded `log` backend: sluice's own durable, partitioned, append-only log on the local disk.
// The on-disk format is specified in docs/log_format.md; constants live in log_format.h.
//
// Each open_log_queue() call is independent and behaves like a separate process: producers of
// several instances (or processes) may append to the same partitions, serialised by a per-partition
// file lock; a consumer group is served by one instance at a time, others wait as hot standbys.
// Thread-safety: as the Queue interface.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/env.h"
#include "config/property.h"
#include "queue/queue.h"

namespace sluice::queue::log {

enum class FsyncMode {
  kBatch,     // fsync every written batch before acknowledging it (group commit); the default
  kInterval,  // acknowledge after write; fsync every fsync_interval_ms
  kNever,     // acknowledge after write; leave flushing to the OS
};

struct LogOptions {
  std::string dir;  // the data directory (created when missing)
  FsyncMode fsync = FsyncMode::kBatch;
  int64_t fsync_interval_ms = 1000;
  uint64_t segment_bytes = 64ull << 20;     // roll to a new segment past this size
  uint64_t max_message_bytes = 8ull << 20;  // larger messages are refused
  uint64_t max_batch_bytes = 1ull << 20;    // upper bound of one written batch
  uint32_t index_interval_bytes = 4096;     // one sparse index entry per this many log bytes
  int compression = 0;                      // 0 none, 1 lz4, 2 zstd (per batch)
  bool auto_create_topics = false;          // create unknown topics on first use
  int32_t default_partitions = 1;           // partitions of auto-created topics
  int64_t retention_check_ms = 30000;       // how often retention runs
  bool create_if_missing = true;            // false: a missing directory is kNotFound
  Env* env = nullptr;                       // nullptr: Env::posix()
};

// The settings a log: URI takes (?name=value&...), with defaults and help: the one list.
std::span<const config::Property> log_properties();

// Parses "log:DIR?fsync=batch&segment_bytes=..." (also a bare DIR) into options.
[[nodiscard]] Result<LogOptions> parse_log_uri(std::string_view uri);

[[nodiscard]] Result<std::unique_ptr<Queue>> open_log_queue(const LogOptions& opts);

}  // namespace sluice::queue::log
