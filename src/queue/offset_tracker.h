// OffsetTracker: the acknowledgement state of one owned partition, shared by the backends whose
// consumers commit "the end of the contiguous acked prefix" themselves (kafka, redis): the offsets
// handed out and not yet committable, in order, each with whether it was acked. Offsets may have
// gaps (Kafka's control records and compaction, trimmed Redis entries), so the offsets themselves
// are kept, not a bitmap from a base.
// Thread-safety: none; the consumer guards it with its own mutex (acks come from any thread).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

namespace sluice::queue {

class OffsetTracker {
 public:
  void hand_out(int64_t offset) {
    if (offset < next_) return;  // a rewind (offset reset): already tracked or already committable
    out_.push_back({offset, false});
    next_ = offset + 1;
  }
  void ack(int64_t offset) {
    acked_ = true;
    if (out_.empty() || offset < out_.front().offset) return;  // committable already
    if (offset == out_.front().offset) {                       // the common, in-order case
      out_.pop_front();
    } else {
      auto it = std::lower_bound(out_.begin(), out_.end(), offset,
                                 [](const Slot& s, int64_t o) { return s.offset < o; });
      if (it != out_.end() && it->offset == offset) it->acked = true;
    }
    while (!out_.empty() && out_.front().acked) out_.pop_front();
  }
  // Where the group may resume: the first offset handed out and not acked, or one past the last
  // one handed out; -1 while nothing was acked since the assignment.
  int64_t position() const {
    if (!acked_) return -1;
    return out_.empty() ? next_ : out_.front().offset;
  }

 private:
  struct Slot {
    int64_t offset;
    bool acked;
  };
  std::deque<Slot> out_;
  int64_t next_ = -1;  // one past the last offset handed out
  bool acked_ = false;
};

}  // namespace sluice::queue
