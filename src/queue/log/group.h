// Consumer groups of the `log` backend: which member owns which partition, what each member has
// acknowledged, and the committed offsets on disk (groups/<group>/offsets, docs/log_format.md).
//
// Ownership: a GroupCoordinator exists in an instance while it has members (LogConsumers) of that
// group; each member holds a shared_ptr to it. The coordinator owns one PartitionProgress per
// partition it has seen; they are never freed before the coordinator, so indexes into progress_
// stay valid. Across processes the coordinator serves the group only while it holds
// groups/<group>/lock; otherwise it is a standby and assigns nothing.
// Thread-safety: all methods are thread-safe (mu_ for membership, each progress's own mutex for
// acks, so acks from many threads do not contend on one lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/env.h"
#include "queue/queue.h"

namespace sluice::queue::log {

class PartitionLog;

// Tracks out-of-order acks; base() is the end of the contiguous acknowledged prefix.
class AckTracker {
 public:
  void reset(int64_t start) {
    base_ = start;
    acked_.clear();
  }
  int64_t base() const { return base_; }
  void ack(int64_t offset) {
    if (offset == base_ && acked_.empty()) {  // the common, in-order case
      ++base_;
      return;
    }
    if (offset < base_) return;
    auto idx = static_cast<size_t>(offset - base_);
    if (idx >= acked_.size()) acked_.resize(idx + 1, false);
    acked_[idx] = true;
    while (!acked_.empty() && acked_.front()) {
      acked_.pop_front();
      ++base_;
    }
  }

 private:
  int64_t base_ = 0;
  std::deque<bool> acked_;  // acked_[i] is offset base_ + i
};

struct PartitionProgress {
  std::string topic;
  PartitionId partition{0};
  PartitionLog* log = nullptr;
  std::mutex mu;
  AckTracker tracker;                     // under mu
  int64_t committed = -1;                 // on disk; -1: never committed (under the coordinator's mu_)
  bool initialized = false;               // tracker holds a real position (under mu)
  std::atomic<int64_t> delivered_end{0};  // acks at or past this are not for delivered messages
  const void* owner = nullptr;            // the member that owns it (under the coordinator's mu_)
  uint64_t epoch = 0;                     // bumps when ownership changes (under mu)
};

class GroupHost;  // what the coordinator needs from its queue instance

class GroupCoordinator {
 public:
  // An ephemeral coordinator keeps everything in memory: no lock, no offsets, no members file.
  GroupCoordinator(Env* env, GroupHost* host, std::string dir, std::string group, bool ephemeral = false);
  ~GroupCoordinator();

  const std::string& group() const { return group_; }
  uint64_t id() const { return id_; }
  bool ephemeral() const { return ephemeral_; }

  [[nodiscard]] Status join(const void* member, std::string name, const std::vector<std::string>& topics,
                            StartFrom start_from);
  // Commits what the member acked, then hands its partitions to the others.
  void leave(const void* member);
  // Tries to become the serving instance (standby); cheap when already serving.
  [[nodiscard]] Status try_serve();
  bool serving() const { return serving_.load(std::memory_order_acquire); }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // The partitions the member owns now, with their progress indexes.
  std::vector<size_t> assigned(const void* member);
  PartitionProgress* progress(size_t index);
  // Writes acknowledged positions that moved since the last commit.
  [[nodiscard]] Status commit();

 private:
  Status load_offsets_locked();
  Status write_offsets_locked();
  void rebalance_locked();
  Status write_members_locked();

  Env* env_;
  GroupHost* host_;
  std::string dir_;  // DIR/groups/<group>
  std::string group_;
  uint64_t id_;
  bool ephemeral_;

  std::mutex mu_;
  std::unique_ptr<File> lock_file_;
  std::atomic<bool> serving_{false};
  int64_t last_try_ns_ = 0;
  struct Member {
    const void* id;
    std::string name;
    std::vector<std::string> topics;
    StartFrom start_from;
  };
  std::vector<Member> members_;  // in join order
  std::vector<std::unique_ptr<PartitionProgress>> progress_;
  std::map<std::pair<std::string, int32_t>, size_t> by_tp_;
  std::map<std::pair<std::string, int32_t>, int64_t> loaded_;  // offsets file contents
  std::atomic<uint64_t> version_{0};
};

// Implemented by LogQueue: topic lookups for the coordinator.
class GroupHost {
 public:
  virtual ~GroupHost() = default;
  [[nodiscard]] virtual Result<int32_t> partition_count(std::string_view topic) = 0;
  [[nodiscard]] virtual Result<PartitionLog*> partition_log(std::string_view topic, PartitionId p) = 0;
};

using OffsetMap = std::map<std::pair<std::string, int32_t>, int64_t>;

// The offsets file codec (also used by the Admin).
std::string encode_offsets(const OffsetMap& offsets);
[[nodiscard]] Status decode_offsets(std::string_view data, const std::string& path, OffsetMap* out);
// Reads groups/<group>/offsets; a group that never committed has none (an empty map).
[[nodiscard]] Status read_offsets_file(Env* env, const std::string& group_dir, OffsetMap* out);

// What groups/<group>/members.json says. The file is informational, so a missing or damaged one
// reads as empty rather than failing the caller.
struct MembersFile {
  std::vector<std::string> names;
  std::set<std::string> topics;  // what the members subscribe to
  std::map<std::pair<std::string, int32_t>, std::string> owners;
};
MembersFile read_members_file(Env* env, const std::string& group_dir);

}  // namespace sluice::queue::log
