#include "queue/log/partition.h"

#include <algorithm>
#include <cinttypes>

#include "base/crc32c.h"
#include "base/log.h"

namespace sluice::queue::log {
namespace {

constexpr size_t kReadChunk = 1u << 20;
constexpr int64_t kHeadCheckIntervalNs = 1'000'000;  // look at other processes' appends every 1 ms

void encode_head(const HeadRecord& h, char* out) {
  put_u32(out, kHeadMagic);
  put_u32(out + 4, kFormatVersion);
  put_u64(out + 8, static_cast<uint64_t>(h.active_base));
  put_u64(out + 16, static_cast<uint64_t>(h.next_offset));
  put_u64(out + 24, h.active_size);
  put_u64(out + 32, static_cast<uint64_t>(h.durable_offset));
  put_u32(out + 40, h.durable_position);
  put_u32(out + 44, crc32c::value(out, 44));
}

bool decode_head(const char* p, HeadRecord* h) {
  if (get_u32(p) != kHeadMagic || get_u32(p + 4) != kFormatVersion) return false;
  if (get_u32(p + 44) != crc32c::value(p, 44)) return false;
  h->active_base = static_cast<int64_t>(get_u64(p + 8));
  h->next_offset = static_cast<int64_t>(get_u64(p + 16));
  h->active_size = get_u64(p + 24);
  h->durable_offset = static_cast<int64_t>(get_u64(p + 32));
  h->durable_position = get_u32(p + 40);
  return h->next_offset >= h->active_base && h->durable_offset <= h->next_offset;
}

std::string where(const std::string& path, uint64_t pos) {
  return "segment '" + path + "' at byte " + std::to_string(pos);
}

// Unlocks the head file on every exit path.
struct HeadLock {
  File* f;
  ~HeadLock() {
    if (f) (void)f->unlock();
  }
};

}  // namespace

PartitionLog::PartitionLog(Env* env, const LogOptions& opts, std::string dir, std::string topic,
                           PartitionId partition)
    : env_(env), opts_(opts), dir_(std::move(dir)), topic_(std::move(topic)), partition_(partition) {}

PartitionLog::~PartitionLog() = default;

std::string PartitionLog::segment_path(int64_t base, std::string_view suffix) const {
  return dir_ + "/" + segment_name(base, suffix);
}

Result<std::unique_ptr<PartitionLog>> PartitionLog::open(Env* env, const LogOptions& opts, std::string dir,
                                                         std::string topic, PartitionId partition) {
  std::unique_ptr<PartitionLog> p(new PartitionLog(env, opts, std::move(dir), std::move(topic), partition));
  SLUICE_RETURN_IF_ERROR(p->init());
  return p;
}

Status PartitionLog::init() {
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(dir_));
  SLUICE_ASSIGN_OR_RETURN(head_file_, env_->open(dir_ + "/head", {.create = true}));
  SLUICE_RETURN_IF_ERROR(head_file_->lock(true));
  HeadLock guard{head_file_.get()};
  std::lock_guard<std::mutex> l(mu_);
  SLUICE_RETURN_IF_ERROR(list_segments_locked(&segments_));
  HeadRecord disk;
  bool valid = false;
  SLUICE_RETURN_IF_ERROR(read_head(&disk, &valid));
  if (segments_.empty()) {
    // A new partition (or one whose files were all removed): start at the head's offset if any.
    int64_t base = valid ? disk.next_offset : 0;
    segments_.push_back(base);
    SLUICE_RETURN_IF_ERROR(open_active_locked(base));
    head_ = HeadRecord{base, base, 0, base, 0};
    SLUICE_RETURN_IF_ERROR(env_->sync_dir(dir_));
  } else {
    int64_t base = segments_.back();
    SLUICE_RETURN_IF_ERROR(open_active_locked(base));
    // CRCs are checked past the recovery point; with no trustworthy head, everywhere.
    uint64_t from = 0;
    if (valid && disk.active_base == base && disk.durable_offset >= base) from = disk.durable_position;
    SLUICE_RETURN_IF_ERROR(recover_active_locked(from, 0, base));
  }
  // Everything recovered is now made durable, so the recovery point is the end.
  SLUICE_RETURN_IF_ERROR(active_log_->sync());
  head_.durable_offset = head_.next_offset;
  head_.durable_position = static_cast<uint32_t>(head_.active_size);
  SLUICE_RETURN_IF_ERROR(write_head());
  publish_locked();
  return {};
}

Status PartitionLog::read_head(HeadRecord* out, bool* valid) {
  char buf[kHeadRecordSize];
  SLUICE_ASSIGN_OR_RETURN(size_t n, head_file_->read_at(0, kHeadRecordSize, buf));
  *valid = n == kHeadRecordSize && decode_head(buf, out);
  return {};
}

Status PartitionLog::write_head() {
  char buf[kHeadRecordSize];
  encode_head(head_, buf);
  return head_file_->write_at(0, buf, kHeadRecordSize);
}

Status PartitionLog::list_segments_locked(std::vector<int64_t>* out) {
  SLUICE_ASSIGN_OR_RETURN(auto names, env_->list_dir(dir_));
  out->clear();
  for (const auto& n : names) {
    if (n.size() != kSegmentNameDigits + 4 || !n.ends_with(".log")) continue;
    int64_t base = 0;
    bool digits = true;
    for (int i = 0; i < kSegmentNameDigits; ++i) {
      if (n[i] < '0' || n[i] > '9') {
        digits = false;
        break;
      }
      base = base * 10 + (n[i] - '0');
    }
    if (digits) out->push_back(base);
  }
  std::sort(out->begin(), out->end());
  return {};
}

Status PartitionLog::open_active_locked(int64_t base) {
  SLUICE_ASSIGN_OR_RETURN(active_log_, env_->open(segment_path(base, ".log"), {.create = true}));
  SLUICE_ASSIGN_OR_RETURN(active_index_, env_->open(segment_path(base, ".index"), {.create = true}));
  SLUICE_ASSIGN_OR_RETURN(active_timeindex_, env_->open(segment_path(base, ".timeindex"), {.create = true}));
  active_file_base_ = base;
  return {};
}

Status PartitionLog::recover_active_locked(uint64_t from, uint64_t walk_from, int64_t walk_offset) {
  const int64_t base = active_file_base_;
  const std::string path = segment_path(base, ".log");
  SLUICE_ASSIGN_OR_RETURN(uint64_t file_size, active_log_->size());
  if (walk_from == 0) {
    active_index_entries_.clear();
    active_time_entries_.clear();
    bytes_since_index_ = 0;
    max_ts_so_far_ = INT64_MIN;
    walk_offset = base;
  }
  const size_t index_before = active_index_entries_.size();
  const size_t time_before = active_time_entries_.size();
  // Walk the batch headers from walk_from to extend the indexes; check CRCs from `from` on.
  std::string buf;
  uint64_t pos = walk_from;
  int64_t expect = walk_offset;
  std::string why;
  while (pos < file_size) {
    char hdr[kBatchHeaderSize];
    SLUICE_ASSIGN_OR_RETURN(size_t n, active_log_->read_at(pos, kBatchHeaderSize, hdr));
    if (n < kBatchHeaderSize) {
      why = "torn batch header";
      break;
    }
    BatchHeader h = decode_batch_header(hdr);
    if (h.base_offset != expect) {
      why = "unexpected base offset " + std::to_string(h.base_offset) + " (expected " +
            std::to_string(expect) + ")";
      break;
    }
    if (h.length < kBatchHeaderSize - kBatchLengthFieldEnd || pos + h.total_size() > file_size) {
      why = "torn batch (length " + std::to_string(h.length) + " runs past the end of the file)";
      break;
    }
    if (pos >= from) {
      buf.resize(h.total_size());
      SLUICE_ASSIGN_OR_RETURN(size_t m, active_log_->read_at(pos, buf.size(), buf.data()));
      if (m != buf.size()) {
        why = "short read";
        break;
      }
      why = verify_batch(h, buf);
      if (!why.empty()) break;
    } else if (h.magic != kBatchMagic || h.record_count == 0) {
      // Damage before the recovery point is not cut away; readers will report it.
      sluice::log::error("log segment damaged before its recovery point; readers will stop there",
                         {{"file", path}, {"position", pos}});
      break;
    }
    note_batch_locked(h.base_offset, h.max_timestamp, pos, h.total_size());
    expect = h.next_offset();
    pos += h.total_size();
  }
  if (pos < file_size) {
    if (pos >= from) {
      sluice::log::warn(
          "log recovery: truncated a torn or corrupt tail",
          {{"file", path}, {"position", pos}, {"bytes_dropped", file_size - pos}, {"reason", why}});
      SLUICE_RETURN_IF_ERROR(active_log_->truncate(pos));
    } else {
      pos = file_size;  // keep the damaged segment as it is; offsets past the damage are unknown
    }
  }
  // Bring the index files in line with what was found: the new entries, and nothing after them.
  SLUICE_RETURN_IF_ERROR(write_indexes_locked(index_before, time_before));
  head_.active_base = base;
  head_.next_offset = expect;
  head_.active_size = pos;
  if (head_.durable_offset > expect) head_.durable_offset = expect;
  return {};
}

Status PartitionLog::write_indexes_locked(size_t index_from, size_t time_from, bool cut) {
  std::string ib((active_index_entries_.size() - index_from) * kIndexEntrySize, '\0');
  for (size_t i = index_from; i < active_index_entries_.size(); ++i) {
    char* e = ib.data() + (i - index_from) * kIndexEntrySize;
    put_u32(e, active_index_entries_[i].first);
    put_u32(e + 4, active_index_entries_[i].second);
  }
  SLUICE_RETURN_IF_ERROR(active_index_->write_at(index_from * kIndexEntrySize, ib.data(), ib.size()));
  if (cut) SLUICE_RETURN_IF_ERROR(active_index_->truncate(active_index_entries_.size() * kIndexEntrySize));
  std::string tb((active_time_entries_.size() - time_from) * kTimeIndexEntrySize, '\0');
  for (size_t i = time_from; i < active_time_entries_.size(); ++i) {
    char* e = tb.data() + (i - time_from) * kTimeIndexEntrySize;
    put_u64(e, static_cast<uint64_t>(active_time_entries_[i].first));
    put_u32(e + 8, active_time_entries_[i].second);
  }
  SLUICE_RETURN_IF_ERROR(active_timeindex_->write_at(time_from * kTimeIndexEntrySize, tb.data(), tb.size()));
  if (!cut) return {};
  return active_timeindex_->truncate(active_time_entries_.size() * kTimeIndexEntrySize);
}

void PartitionLog::note_batch_locked(int64_t base_offset, int64_t max_ts, uint64_t position, uint64_t size) {
  if (active_index_entries_.empty() || bytes_since_index_ >= opts_.index_interval_bytes) {
    auto rel = static_cast<uint32_t>(base_offset - active_file_base_);
    active_index_entries_.emplace_back(rel, static_cast<uint32_t>(position));
    bytes_since_index_ = 0;
    if (max_ts > max_ts_so_far_) {
      max_ts_so_far_ = max_ts;
      active_time_entries_.emplace_back(max_ts, rel);
    }
  }
  bytes_since_index_ += size;
}

void PartitionLog::publish_locked() {
  visible_end_.store(opts_.fsync == FsyncMode::kBatch ? head_.durable_offset : head_.next_offset,
                     std::memory_order_release);
}

Status PartitionLog::refresh_locked() {
  HeadRecord disk;
  bool valid = false;
  SLUICE_RETURN_IF_ERROR(read_head(&disk, &valid));
  if (valid && disk == head_ && active_file_base_ == disk.active_base) {
    SLUICE_ASSIGN_OR_RETURN(uint64_t sz, active_log_->size());
    if (sz == head_.active_size) return {};
  }
  // Another process appended, rolled or died mid-write: catch up from disk. When the segment is
  // the one this process knows, only what was added since is walked.
  const HeadRecord known = head_;
  SLUICE_RETURN_IF_ERROR(list_segments_locked(&segments_));
  if (segments_.empty()) return Status::corruption("partition '" + dir_ + "' lost all its segments");
  int64_t base = segments_.back();
  bool same_segment = active_file_base_ == base;
  if (!same_segment) SLUICE_RETURN_IF_ERROR(open_active_locked(base));
  uint64_t from = 0;
  if (valid && disk.active_base == base) {
    head_ = disk;
    from = disk.durable_position;
  }
  SLUICE_ASSIGN_OR_RETURN(uint64_t file_size, active_log_->size());
  const bool incremental = same_segment && known.active_base == base && known.active_size <= file_size &&
                           (!valid || disk.active_base != base || disk.active_size >= known.active_size);
  if (incremental) {
    SLUICE_RETURN_IF_ERROR(recover_active_locked(std::max<uint64_t>(from, known.active_size),
                                                 known.active_size, known.next_offset));
  } else {
    SLUICE_RETURN_IF_ERROR(recover_active_locked(from, 0, base));
  }
  if (valid && disk.active_base == base) {
    head_.durable_offset = std::min(disk.durable_offset, head_.next_offset);
  }
  return {};
}

Status PartitionLog::roll_locked() {
  // Seal the old segment: data and indexes reach the disk before the new segment exists.
  SLUICE_RETURN_IF_ERROR(active_log_->sync());
  SLUICE_RETURN_IF_ERROR(write_indexes_locked(0, 0));
  SLUICE_RETURN_IF_ERROR(active_index_->sync());
  SLUICE_RETURN_IF_ERROR(active_timeindex_->sync());
  int64_t base = head_.next_offset;
  SLUICE_RETURN_IF_ERROR(open_active_locked(base));
  SLUICE_RETURN_IF_ERROR(env_->sync_dir(dir_));
  segments_.push_back(base);
  active_index_entries_.clear();
  active_time_entries_.clear();
  bytes_since_index_ = 0;
  head_.active_base = base;
  head_.active_size = 0;
  head_.durable_offset = base;
  head_.durable_position = 0;
  return write_head();
}

Status PartitionLog::append(std::vector<BatchBuilder*>& batches, std::vector<int64_t>* base_offsets) {
  SLUICE_RETURN_IF_ERROR(head_file_->lock(true));
  HeadLock guard{head_file_.get()};
  std::lock_guard<std::mutex> l(mu_);
  SLUICE_RETURN_IF_ERROR(refresh_locked());
  base_offsets->clear();
  // Where this round started, to take everything back if a write or an fsync fails: a batch the
  // producer was told failed must not turn up later (it would be sent again).
  const HeadRecord start = head_;
  const int64_t start_base = active_file_base_;
  const size_t start_index = active_index_entries_.size();
  const size_t start_time_index = active_time_entries_.size();
  const uint64_t start_bytes_since_index = bytes_since_index_;
  const int64_t start_max_ts = max_ts_so_far_;
  Status st = append_locked(batches, base_offsets);
  if (st.is_ok()) return {};
  base_offsets->clear();
  if (active_file_base_ == start_base) {
    (void)active_log_->truncate(start.active_size);
    active_index_entries_.resize(start_index);
    active_time_entries_.resize(start_time_index);
    (void)active_index_->truncate(start_index * kIndexEntrySize);
    (void)active_timeindex_->truncate(start_time_index * kTimeIndexEntrySize);
    bytes_since_index_ = start_bytes_since_index;
    max_ts_so_far_ = start_max_ts;
    head_ = start;
  } else {
    // The round rolled: the older segments are sealed and synced; the new one is emptied.
    (void)active_log_->truncate(0);
    (void)active_index_->truncate(0);
    (void)active_timeindex_->truncate(0);
    active_index_entries_.clear();
    active_time_entries_.clear();
    bytes_since_index_ = 0;
    head_.next_offset = head_.durable_offset = active_file_base_;
    head_.active_size = 0;
    head_.durable_position = 0;
  }
  (void)write_head();
  publish_locked();
  return st.with_context("appending to partition " + topic_ + "/" + std::to_string(partition_.value()));
}

Status PartitionLog::append_locked(std::vector<BatchBuilder*>& batches, std::vector<int64_t>* base_offsets) {
  const uint64_t seg_limit = std::min<uint64_t>(opts_.segment_bytes, kMaxSegmentBytes);
  for (BatchBuilder* b : batches) {
    if (head_.active_size > 0 && head_.active_size + b->size() > seg_limit) {
      SLUICE_RETURN_IF_ERROR(roll_locked());
    }
    int64_t base = head_.next_offset;
    std::string_view bytes = b->finish(base, static_cast<uint8_t>(opts_.compression));
    SLUICE_RETURN_IF_ERROR(active_log_->write_at(head_.active_size, bytes.data(), bytes.size()));
    uint64_t pos = head_.active_size;
    BatchHeader h = decode_batch_header(bytes.data());
    size_t idx_before = active_index_entries_.size();
    size_t tidx_before = active_time_entries_.size();
    note_batch_locked(base, h.max_timestamp, pos, bytes.size());
    if (active_index_entries_.size() > idx_before || active_time_entries_.size() > tidx_before) {
      SLUICE_RETURN_IF_ERROR(write_indexes_locked(idx_before, tidx_before, /*cut=*/false));
    }
    head_.active_size += bytes.size();
    head_.next_offset = base + b->count();
    base_offsets->push_back(base);
  }
  int64_t now = env_->monotonic_ns();
  bool do_sync =
      opts_.fsync == FsyncMode::kBatch ||
      (opts_.fsync == FsyncMode::kInterval && now - last_sync_ns_ >= opts_.fsync_interval_ms * 1'000'000);
  if (do_sync) {
    SLUICE_RETURN_IF_ERROR(active_log_->sync());
    last_sync_ns_ = now;
    head_.durable_offset = head_.next_offset;
    head_.durable_position = static_cast<uint32_t>(head_.active_size);
  }
  SLUICE_RETURN_IF_ERROR(write_head());
  publish_locked();
  return {};
}

Status PartitionLog::sync() {
  SLUICE_RETURN_IF_ERROR(head_file_->lock(true));
  HeadLock guard{head_file_.get()};
  std::lock_guard<std::mutex> l(mu_);
  SLUICE_RETURN_IF_ERROR(refresh_locked());
  SLUICE_RETURN_IF_ERROR(active_log_->sync());
  last_sync_ns_ = env_->monotonic_ns();
  head_.durable_offset = head_.next_offset;
  head_.durable_position = static_cast<uint32_t>(head_.active_size);
  SLUICE_RETURN_IF_ERROR(write_head());
  publish_locked();
  return {};
}

int64_t PartitionLog::visible_end() {
  int64_t now = env_->monotonic_ns();
  int64_t last = last_head_check_ns_.load(std::memory_order_relaxed);
  if (now - last >= kHeadCheckIntervalNs &&
      last_head_check_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    // Another process may have appended: its head record tells, without taking the lock.
    HeadRecord disk;
    bool valid = false;
    if (read_head(&disk, &valid).is_ok() && valid) {
      std::lock_guard<std::mutex> l(mu_);
      if (disk.next_offset > head_.next_offset || disk.durable_offset > head_.durable_offset) {
        if (disk.active_base != head_.active_base) (void)list_segments_locked(&segments_);
        head_.next_offset = std::max(head_.next_offset, disk.next_offset);
        head_.durable_offset = std::max(head_.durable_offset, disk.durable_offset);
        publish_locked();
      }
    }
  }
  return visible_end_.load(std::memory_order_acquire);
}

void PartitionLog::reload_segments() {
  std::lock_guard<std::mutex> l(mu_);
  (void)list_segments_locked(&segments_);
}

int64_t PartitionLog::start_offset() {
  std::lock_guard<std::mutex> l(mu_);
  return segments_.empty() ? head_.next_offset : segments_.front();
}

int64_t PartitionLog::end_offset() {
  (void)visible_end();
  std::lock_guard<std::mutex> l(mu_);
  return head_.next_offset;
}

int64_t PartitionLog::next_segment(int64_t base) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), base);
  if (it == segments_.end()) {
    (void)list_segments_locked(&segments_);
    it = std::upper_bound(segments_.begin(), segments_.end(), base);
    if (it == segments_.end()) return -1;
  }
  return *it;
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> PartitionLog::load_index(int64_t base) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (base == active_file_base_) return active_index_entries_;
  }
  std::vector<std::pair<uint32_t, uint32_t>> out;
  auto data = env_->read_file(segment_path(base, ".index"));
  auto size = env_->open(segment_path(base, ".log"), {.read_only = true});
  if (!data.is_ok() || !size.is_ok()) return out;  // a missing index only costs a scan
  auto fsz = (*size)->size();
  if (!fsz.is_ok()) return out;
  const std::string& d = *data;
  for (size_t i = 0; i + kIndexEntrySize <= d.size(); i += kIndexEntrySize) {
    uint32_t rel = get_u32(d.data() + i), pos = get_u32(d.data() + i + 4);
    // An entry that does not increase or points outside the segment ends the trusted part.
    if (!out.empty() && (rel <= out.back().first || pos <= out.back().second)) break;
    if (pos >= *fsz) break;
    out.emplace_back(rel, pos);
  }
  return out;
}

std::vector<std::pair<int64_t, uint32_t>> PartitionLog::load_time_index(int64_t base) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (base == active_file_base_) return active_time_entries_;
  }
  std::vector<std::pair<int64_t, uint32_t>> out;
  auto data = env_->read_file(segment_path(base, ".timeindex"));
  if (!data.is_ok()) return out;  // a missing time index only costs a longer scan
  const std::string& d = *data;
  for (size_t i = 0; i + kTimeIndexEntrySize <= d.size(); i += kTimeIndexEntrySize) {
    auto ts = static_cast<int64_t>(get_u64(d.data() + i));
    uint32_t rel = get_u32(d.data() + i + 8);
    if (!out.empty() && (ts <= out.back().first || rel <= out.back().second)) break;  // untrusted from here
    out.emplace_back(ts, rel);
  }
  return out;
}

Result<SegmentPosition> PartitionLog::find(int64_t offset) {
  int64_t base;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (segments_.empty()) return Status::not_found("partition has no segments");
    auto it = std::upper_bound(segments_.begin(), segments_.end(), offset);
    base = it == segments_.begin() ? segments_.front() : *std::prev(it);
  }
  SLUICE_ASSIGN_OR_RETURN(auto idx, load_index(base));
  SegmentPosition sp{base, 0};
  auto rel = offset - base;
  for (auto it = std::upper_bound(
           idx.begin(), idx.end(),
           std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(std::max<int64_t>(rel, 0)), UINT32_MAX));
       it != idx.begin();) {
    --it;
    sp.position = it->second;
    break;
  }
  return sp;
}

Result<int64_t> PartitionLog::offset_for_timestamp(int64_t ts_ms) {
  std::vector<int64_t> segs;
  {
    std::lock_guard<std::mutex> l(mu_);
    segs = segments_;
  }
  std::string buf;
  for (int64_t base : segs) {
    auto file = env_->open(segment_path(base, ".log"), {.read_only = true});
    if (!file.is_ok()) continue;  // deleted by retention meanwhile
    SLUICE_ASSIGN_OR_RETURN(uint64_t size, (*file)->size());
    // The time index says where records older than ts_ms certainly end: start scanning there.
    uint64_t pos = 0;
    auto times = load_time_index(base);
    auto idx = load_index(base);
    if (idx.is_ok()) {
      for (const auto& [ts, rel] : times) {
        if (ts >= ts_ms) break;
        for (const auto& [irel, ipos] : *idx) {
          if (irel == rel) pos = ipos;
        }
      }
    }
    while (pos + kBatchHeaderSize <= size) {
      char hdr[kBatchHeaderSize];
      SLUICE_ASSIGN_OR_RETURN(size_t n, (*file)->read_at(pos, kBatchHeaderSize, hdr));
      if (n < kBatchHeaderSize) break;
      BatchHeader h = decode_batch_header(hdr);
      if (h.length < kBatchHeaderSize - kBatchLengthFieldEnd || pos + h.total_size() > size) break;
      if (h.max_timestamp >= ts_ms) {
        buf.resize(h.total_size());
        SLUICE_ASSIGN_OR_RETURN(size_t m, (*file)->read_at(pos, buf.size(), buf.data()));
        std::string why = m == buf.size() ? verify_batch(h, buf) : "short read";
        if (!why.empty()) return Status::corruption(where((*file)->path(), pos) + ": " + why);
        DecodedBatchStorage st;
        std::vector<Message> msgs;
        SLUICE_RETURN_IF_ERROR(
            decode_records(h, buf, 0, topic_, partition_, &st, &msgs, where((*file)->path(), pos)));
        for (const auto& m2 : msgs)
          if (m2.timestamp_ms >= ts_ms) return m2.offset.value();
      }
      pos += h.total_size();
    }
  }
  return end_offset();
}

Result<uint64_t> PartitionLog::enforce_retention(int64_t retention_ms, int64_t retention_bytes,
                                                 int64_t min_committed) {
  if (retention_ms < 0 && retention_bytes < 0) return uint64_t{0};
  SLUICE_RETURN_IF_ERROR(head_file_->lock(true));
  HeadLock guard{head_file_.get()};
  std::lock_guard<std::mutex> l(mu_);
  SLUICE_RETURN_IF_ERROR(list_segments_locked(&segments_));
  uint64_t total = 0;
  std::vector<uint64_t> sizes;
  for (int64_t b : segments_) {
    auto f = env_->open(segment_path(b, ".log"), {.read_only = true});
    uint64_t s = 0;
    if (f.is_ok()) {
      auto sz = (*f)->size();
      if (sz.is_ok()) s = *sz;
    }
    sizes.push_back(s);
    total += s;
  }
  uint64_t freed = 0;
  int64_t now = env_->now_ms();
  size_t deleted = 0;
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {  // never the active segment
    int64_t seg_end = segments_[i + 1];
    if (min_committed < seg_end) break;  // a group still needs it
    bool too_old = false;
    if (retention_ms >= 0) {
      auto mt = env_->mtime_ms(segment_path(segments_[i], ".log"));
      too_old = mt.is_ok() && now - *mt > retention_ms;
    }
    bool too_big = retention_bytes >= 0 && total > static_cast<uint64_t>(retention_bytes);
    if (!too_old && !too_big) break;
    for (const char* suffix : {".log", ".index", ".timeindex"}) {
      (void)env_->remove_file(segment_path(segments_[i], suffix));
    }
    total -= sizes[i];
    freed += sizes[i];
    ++deleted;
  }
  if (deleted) {
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(deleted));
    SLUICE_RETURN_IF_ERROR(env_->sync_dir(dir_));
    sluice::log::info("log retention deleted segments",
                      {{"partition", dir_}, {"segments", deleted}, {"bytes", freed}});
  }
  return freed;
}

// ---------------------------------------------------------------------------------------------

Status PartitionReader::position() {
  int64_t start = log_->start_offset();
  if (next_offset_ < start) {
    sluice::log::warn("offset no longer in the log; continuing at the earliest offset",
                      {{"partition", log_->dir()}, {"offset", next_offset_}, {"earliest", start}});
    next_offset_ = start;
  }
  SLUICE_ASSIGN_OR_RETURN(SegmentPosition sp, log_->find(next_offset_));
  auto f = log_->env()->open(log_->segment_path(sp.segment_base, ".log"), {.read_only = true});
  if (!f.is_ok()) {
    if (f.status().code() == Code::kNotFound) {
      log_->reload_segments();  // removed by retention meanwhile: try again from the new start
    }
    return f.status();
  }
  file_ = std::move(f).value();
  segment_base_ = sp.segment_base;
  pos_ = sp.position;
  positioned_ = true;
  return {};
}

Status PartitionReader::read(size_t max, std::vector<Message>* out) {
  int64_t end = log_->visible_end();
  size_t added = 0;
  int retries = 0;
  while (added < max && next_offset_ < end) {
    if (!positioned_) {
      Status st = position();
      if (!st.is_ok()) {
        if (st.code() == Code::kNotFound && ++retries < 3) continue;
        return st;
      }
    }
    // Reuse the chunk when no message handed out still points into it.
    if (!buffer_ || buffer_.use_count() > 1) buffer_ = std::make_shared<std::string>();
    std::string& buf = *buffer_;
    buf.resize(kReadChunk);
    const uint64_t chunk_pos = pos_;
    SLUICE_ASSIGN_OR_RETURN(size_t n, file_->read_at(chunk_pos, buf.size(), buf.data()));
    if (n < kBatchHeaderSize) {
      int64_t nxt = log_->next_segment(segment_base_);
      if (nxt >= 0 && nxt <= next_offset_) {
        positioned_ = false;  // this segment is done; the next one holds next_offset
        continue;
      }
      if (nxt >= 0 && log_->start_offset() > next_offset_) {
        positioned_ = false;  // retention removed what we were reading; position() jumps ahead
        continue;
      }
      if (nxt >= 0) {
        return Status::corruption(where(file_->path(), pos_) + ": segment ends at offset " +
                                  std::to_string(next_offset_) + " but the next segment starts at " +
                                  std::to_string(nxt));
      }
      break;  // the writer's data is not visible here yet
    }
    size_t off = 0;
    bool progressed = false;
    while (off + kBatchHeaderSize <= n && added < max) {
      BatchHeader h = decode_batch_header(buf.data() + off);
      if (h.base_offset >= end) break;
      if (h.length < kBatchHeaderSize - kBatchLengthFieldEnd) {
        return Status::corruption(where(file_->path(), chunk_pos + off) + ": bad batch length " +
                                  std::to_string(h.length));
      }
      if (off + h.total_size() > n) {
        if (off > 0) break;  // read again from this batch's start
        // A batch larger than the chunk: read it whole.
        buf.resize(h.total_size());
        SLUICE_ASSIGN_OR_RETURN(size_t m, file_->read_at(chunk_pos, buf.size(), buf.data()));
        if (m < buf.size()) {
          return Status::corruption(where(file_->path(), chunk_pos) + ": batch of " +
                                    std::to_string(h.total_size()) +
                                    " bytes runs past the end of the segment");
        }
        n = m;
      }
      std::string_view bytes(buf.data() + off, h.total_size());
      if (h.base_offset > next_offset_) {
        return Status::corruption(where(file_->path(), chunk_pos + off) + ": offsets jump from " +
                                  std::to_string(next_offset_) + " to " + std::to_string(h.base_offset));
      }
      if (h.next_offset() > next_offset_) {
        // Only batches that are delivered are checked: a seek may skip over damaged ones.
        std::string why = verify_batch(h, bytes);
        if (!why.empty()) return Status::corruption(where(file_->path(), chunk_pos + off) + ": " + why);
        auto storage = std::make_shared<DecodedBatchStorage>();
        size_t before = out->size();
        SLUICE_RETURN_IF_ERROR(decode_records(h, bytes, next_offset_, log_->topic(), log_->partition(),
                                              storage.get(), out, where(file_->path(), chunk_pos + off)));
        // Messages keep the chunk alive, and the decoded headers when there are any.
        std::shared_ptr<const void> keep;
        if (storage->headers.empty() && storage->decompressed.empty()) {
          keep = buffer_;
        } else {
          struct Both {
            std::shared_ptr<std::string> chunk;
            std::shared_ptr<DecodedBatchStorage> storage;
          };
          keep = std::make_shared<Both>(Both{buffer_, storage});
        }
        size_t got = out->size() - before;
        size_t room = max - added;
        if (got > room) {  // respect max: the rest of this batch comes next time
          out->resize(before + room);
          got = room;
        }
        for (size_t i = before; i < out->size(); ++i) (*out)[i].backing = keep;
        added += got;
        if (got > 0) next_offset_ = (*out)[out->size() - 1].offset.value() + 1;
        progressed = true;
        if (next_offset_ < h.next_offset()) {
          pos_ = chunk_pos + off;  // stay on this batch
          break;
        }
      }
      off += h.total_size();
      pos_ = chunk_pos + off;
      progressed = true;
    }
    if (!progressed) break;
  }
  return {};
}

}  // namespace sluice::queue::log
