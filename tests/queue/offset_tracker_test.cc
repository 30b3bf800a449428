// OffsetTracker: the committable position of a partition from out-of-order acks, with gaps in the
// offsets handed out (Kafka's control records, trimmed Redis entries) and rewinds.
#include "queue/offset_tracker.h"

#include <gtest/gtest.h>

namespace sluice::queue {
namespace {

TEST(OffsetTracker, NothingAckedIsNoPosition) {
  OffsetTracker t;
  EXPECT_EQ(t.position(), -1);
  t.hand_out(0);
  t.hand_out(1);
  EXPECT_EQ(t.position(), -1) << "handed out is not committable";
}

TEST(OffsetTracker, PositionIsTheFirstUnackedOffset) {
  OffsetTracker t;
  for (int64_t o = 0; o < 10; ++o) t.hand_out(o);
  for (int64_t o : {0, 1, 2, 5, 6}) t.ack(o);
  EXPECT_EQ(t.position(), 3);
  t.ack(4);
  EXPECT_EQ(t.position(), 3);
  t.ack(3);
  EXPECT_EQ(t.position(), 7) << "3 and 4 close the gap up to the acked 5 and 6";
  for (int64_t o : {9, 8, 7}) t.ack(o);
  EXPECT_EQ(t.position(), 10) << "everything acked: one past the last handed out";
}

TEST(OffsetTracker, GapsInTheOffsetsHandedOut) {
  OffsetTracker t;
  for (int64_t o : {100, 101, 105, 106, 110}) t.hand_out(o);
  t.ack(100);
  t.ack(101);
  EXPECT_EQ(t.position(), 105) << "the offsets never handed out are not waited for";
  t.ack(106);
  EXPECT_EQ(t.position(), 105);
  t.ack(105);
  EXPECT_EQ(t.position(), 110);
  t.ack(110);
  EXPECT_EQ(t.position(), 111);
}

TEST(OffsetTracker, RepeatedStaleAndUnknownAcksChangeNothing) {
  OffsetTracker t;
  for (int64_t o = 0; o < 4; ++o) t.hand_out(o);
  t.ack(0);
  t.ack(0);
  EXPECT_EQ(t.position(), 1);
  t.ack(7);  // never handed out
  EXPECT_EQ(t.position(), 1);
  t.ack(2);
  t.ack(2);
  EXPECT_EQ(t.position(), 1);
  t.ack(1);
  EXPECT_EQ(t.position(), 3);
}

TEST(OffsetTracker, ARewindIsNotTrackedTwice) {
  OffsetTracker t;
  for (int64_t o = 0; o < 3; ++o) t.hand_out(o);
  t.hand_out(1);  // delivered again (an offset reset): already tracked
  t.ack(0);
  t.ack(1);
  t.ack(2);
  EXPECT_EQ(t.position(), 3);
}

}  // namespace
}  // namespace sluice::queue
