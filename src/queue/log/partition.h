// PartitionLog: one partition of one topic on disk — its segments, indexes and head record — and
// PartitionReader, a consumer's cursor into it.
//
// Ownership: LogQueue owns one PartitionLog per partition it has touched. In one process the
// flusher thread is the only writer; other processes may write too, serialised by the flock on the
// partition's `head` file (docs/log_format.md). Thread-safety: PartitionLog is thread-safe (its
// state sits behind mu_; file writes happen only on the flusher thread); a PartitionReader is used
// by one thread at a time.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/env.h"
#include "queue/log/log_format.h"
#include "queue/log/log_queue.h"

namespace sluice::queue::log {

struct HeadRecord {
  int64_t active_base = 0;
  int64_t next_offset = 0;
  uint64_t active_size = 0;
  int64_t durable_offset = 0;
  uint32_t durable_position = 0;
  bool operator==(const HeadRecord&) const = default;
};

struct SegmentPosition {
  int64_t segment_base = 0;
  uint64_t position = 0;
};

class PartitionLog {
 public:
  // Opens (creating when create is set) the partition directory and recovers its active segment.
  [[nodiscard]] static Result<std::unique_ptr<PartitionLog>> open(Env* env, const LogOptions& opts,
                                                                  std::string dir, std::string topic,
                                                                  PartitionId partition);
  ~PartitionLog();

  const std::string& topic() const { return topic_; }
  PartitionId partition() const { return partition_; }
  const std::string& dir() const { return dir_; }
  Env* env() const { return env_; }

  // Writes the batches (flusher thread only). base_offsets receives each batch's first offset.
  // In batch fsync mode the data is synced before this returns.
  [[nodiscard]] Status append(std::vector<BatchBuilder*>& batches, std::vector<int64_t>* base_offsets);
  // Syncs what was written and advances the durable offset (interval mode, close).
  [[nodiscard]] Status sync();

  // The end consumers may read to: durable offset in batch mode, written end otherwise. Looks at
  // the head file now and then to see appends made by other processes.
  int64_t visible_end();
  int64_t start_offset();
  int64_t end_offset();
  // Where the batch holding offset starts (or the first batch after it).
  [[nodiscard]] Result<SegmentPosition> find(int64_t offset);
  // The segment after base, or -1.
  int64_t next_segment(int64_t base);
  std::string segment_path(int64_t base, std::string_view suffix) const;
  // First offset whose timestamp is >= ts_ms (end_offset() when none).
  [[nodiscard]] Result<int64_t> offset_for_timestamp(int64_t ts_ms);
  // Deletes old segments as the retention settings and min_committed allow; returns bytes freed.
  [[nodiscard]] Result<uint64_t> enforce_retention(int64_t retention_ms, int64_t retention_bytes,
                                                   int64_t min_committed);
  // Forgets cached state so the next visible_end() reloads the head (used after other processes act).
  void reload_segments();

 private:
  PartitionLog(Env* env, const LogOptions& opts, std::string dir, std::string topic, PartitionId partition);
  Status init();
  Status read_head(HeadRecord* out, bool* valid);
  Status write_head();
  // With the head lock held: brings state in line with what other processes wrote.
  Status refresh_locked();
  Status list_segments_locked(std::vector<int64_t>* out);
  Status open_active_locked(int64_t base);
  // Walks the active segment's batches from walk_from (where offset walk_offset starts; 0 means
  // from scratch) to the end of the file, extending the indexes; checks CRCs from `from` on and
  // truncates at the first bad batch there.
  Status recover_active_locked(uint64_t from, uint64_t walk_from, int64_t walk_offset);
  Status roll_locked();
  Status append_locked(std::vector<BatchBuilder*>& batches, std::vector<int64_t>* base_offsets);
  // Writes index entries from these positions on to the files (and, with cut, ends the files
  // after the last entry, dropping stale ones another writer may have left).
  Status write_indexes_locked(size_t index_from, size_t time_from, bool cut = true);
  // Adds index entries for a batch when the sparse interval says so.
  void note_batch_locked(int64_t base_offset, int64_t max_ts, uint64_t position, uint64_t size);
  Result<std::vector<std::pair<uint32_t, uint32_t>>> load_index(int64_t base);
  // (max timestamp so far, relative offset) entries of a segment; empty when unknown.
  std::vector<std::pair<int64_t, uint32_t>> load_time_index(int64_t base);
  void publish_locked();

  Env* env_;
  LogOptions opts_;
  std::string dir_;
  std::string topic_;
  PartitionId partition_;

  std::unique_ptr<File> head_file_;  // also the cross-process writer lock

  std::mutex mu_;
  std::vector<int64_t> segments_;  // bases, ascending
  HeadRecord head_;                // what this process last wrote or read
  std::unique_ptr<File> active_log_, active_index_, active_timeindex_;
  int64_t active_file_base_ = -1;
  std::vector<std::pair<uint32_t, uint32_t>> active_index_entries_;  // relative offset, position
  std::vector<std::pair<int64_t, uint32_t>> active_time_entries_;    // max ts so far, relative offset
  uint64_t bytes_since_index_ = 0;
  int64_t max_ts_so_far_ = INT64_MIN;
  int64_t last_sync_ns_ = 0;
  std::atomic<int64_t> visible_end_{0};
  std::atomic<int64_t> last_head_check_ns_{0};
};

// A consumer's cursor on one partition: reads batches sequentially from the current position.
class PartitionReader {
 public:
  PartitionReader(PartitionLog* log, int64_t next_offset) : log_(log), next_offset_(next_offset) {}
  int64_t next_offset() const { return next_offset_; }
  void seek(int64_t offset) {
    next_offset_ = offset;
    positioned_ = false;
  }
  // Appends up to max messages (offsets >= next_offset, < visible end) to out.
  [[nodiscard]] Status read(size_t max, std::vector<Message>* out);
  bool has_data() { return next_offset_ < log_->visible_end(); }
  PartitionLog* log() const { return log_; }

 private:
  Status position();
  PartitionLog* log_;
  int64_t next_offset_;
  bool positioned_ = false;
  int64_t segment_base_ = -1;
  uint64_t pos_ = 0;
  std::unique_ptr<File> file_;
  std::shared_ptr<std::string> buffer_;  // the chunk that messages handed out point into
};

}  // namespace sluice::queue::log
