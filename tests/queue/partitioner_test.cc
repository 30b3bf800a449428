// Kafka's murmur2 partitioner: the values Kafka's own UtilsTest and librdkafka check.
#include "queue/partitioner.h"

#include <gtest/gtest.h>

namespace sluice::queue {
namespace {

TEST(Murmur2, MatchesKafka) {
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
  EXPECT_EQ(murmur2("1"), -1993445489);
  EXPECT_EQ(murmur2("12"), 126087238);
  EXPECT_EQ(murmur2("123"), -267702483);
  EXPECT_EQ(murmur2("kafka"), -798503068);
}

TEST(Murmur2, PartitionIsPositiveModulo) {
  // Kafka: toPositive(murmur2(key)) % numPartitions.
  EXPECT_EQ(partition_for_key("foobar", 10).value(),
            static_cast<int32_t>((static_cast<uint32_t>(-790332482) & 0x7fffffffu) % 10));
  for (int n : {1, 3, 16, 100}) {
    for (const char* k : {"a", "doc-1", "文档"}) {
      auto p = partition_for_key(k, n).value();
      EXPECT_GE(p, 0);
      EXPECT_LT(p, n);
    }
  }
}

}  // namespace
}  // namespace sluice::queue
