// A first round trip through the log backend.
#include <gtest/gtest.h>

#include <filesystem>

#include "queue/log/log_queue.h"

namespace sluice::queue::log {
namespace {

TEST(LogQueue, RoundTrip) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-smoke-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto q = open_queue("log:" + dir.string());
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  ASSERT_TRUE((*q)->admin().create_topic("t", {.partitions = 2}).is_ok());
  std::atomic<int> delivered{0};
  auto p = (*q)->make_producer({.on_delivery = [&](const DeliveryReport& r) {
    EXPECT_TRUE(r.status.is_ok()) << r.status.to_string();
    delivered++;
  }});
  ASSERT_TRUE(p.is_ok());
  for (int i = 0; i < 1000; ++i) {
    std::string v = "value-" + std::to_string(i);
    std::string k = "k" + std::to_string(i % 7);
    ASSERT_TRUE((*p)->send({.topic = "t", .key = k, .value = v}).is_ok());
  }
  ASSERT_TRUE((*p)->flush(Millis(10000)).is_ok());
  EXPECT_EQ(delivered.load(), 1000);
  auto c = (*q)->make_consumer({.group = "g", .topics = {"t"}});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  std::vector<Message> got;
  for (int i = 0; i < 100 && got.size() < 1000; ++i) {
    ASSERT_TRUE((*c)->poll(got, 4096, Millis(100)).is_ok());
  }
  ASSERT_EQ(got.size(), 1000u);
  for (auto& m : got) ASSERT_TRUE((*c)->ack(m).is_ok());
  ASSERT_TRUE((*c)->commit().is_ok());
  auto g = (*q)->admin().describe_group("g");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  int64_t lag = 0;
  for (auto& gp : g->partitions) lag += gp.lag;
  EXPECT_EQ(lag, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::queue::log

namespace sluice::queue::log {
namespace {

TEST(LogQueue, EphemeralGroupLeavesNoTrace) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-eph-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto q = open_queue("log:" + dir.string());
  ASSERT_TRUE(q.is_ok());
  ASSERT_TRUE((*q)->admin().create_topic("t", {}).is_ok());
  auto p = (*q)->make_producer({});
  ASSERT_TRUE((*p)->send({.topic = "t", .value = "x"}).is_ok());
  ASSERT_TRUE((*p)->flush(Millis(5000)).is_ok());
  {
    auto c = (*q)->make_consumer({.group = "peek", .topics = {"t"}, .ephemeral = true});
    ASSERT_TRUE(c.is_ok());
    std::vector<Message> ms;
    for (int i = 0; i < 50 && ms.empty(); ++i) ASSERT_TRUE((*c)->poll(ms, 10, Millis(20)).is_ok());
    ASSERT_EQ(ms.size(), 1u);
    ASSERT_TRUE((*c)->ack(ms[0]).is_ok());
    ASSERT_TRUE((*c)->commit().is_ok());
    // A stored group of the same name cannot join while the ephemeral one lives.
    auto clash = (*q)->make_consumer({.group = "peek", .topics = {"t"}});
    EXPECT_FALSE(clash.is_ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "groups/peek"));
  auto groups = (*q)->admin().list_groups();
  ASSERT_TRUE(groups.is_ok());
  EXPECT_TRUE(groups->empty());
  std::filesystem::remove_all(dir);
}

TEST(LogQueue, OpenWithoutCreateReportsAMissingLog) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-nocreate-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto q = open_queue("log:" + dir.string(), {.create_if_missing = false});
  ASSERT_FALSE(q.is_ok());
  EXPECT_EQ(q.status().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace sluice::queue::log

namespace sluice::queue::log {
namespace {

// Batches compressed with lz4 or zstd read back byte for byte and take less disk.
class LogCompression : public ::testing::TestWithParam<const char*> {};

TEST_P(LogCompression, RoundTripsAndShrinks) {
  auto dir = std::filesystem::temp_directory_path() /
             ("sluice-comp-" + std::string(GetParam()) + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto q = open_queue("log:" + dir.string() + "?compression=" + GetParam());
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  ASSERT_TRUE((*q)->admin().create_topic("t", {}).is_ok());
  auto p = (*q)->make_producer({});
  std::vector<std::string> values;
  std::vector<Header> hs = {{"trace_id", "abc"}, {"schema", "1"}};
  size_t raw = 0;
  for (int i = 0; i < 2000; ++i) {
    values.push_back("文档 " + std::to_string(i) + " the same words again and again and again");
    raw += values.back().size();
    ASSERT_TRUE((*p)->send({.topic = "t", .key = "doc", .value = values.back(), .headers = hs}).is_ok());
  }
  ASSERT_TRUE((*p)->flush(Millis(10000)).is_ok());
  auto seg = dir / "topics/t/0/00000000000000000000.log";
  EXPECT_LT(std::filesystem::file_size(seg), raw / 2) << "compression did not shrink the segment";
  auto c = (*q)->make_consumer({.group = "g", .topics = {"t"}});
  std::vector<Message> got;
  for (int i = 0; i < 100 && got.size() < values.size(); ++i)
    ASSERT_TRUE((*c)->poll(got, 5000, Millis(50)).is_ok());
  ASSERT_EQ(got.size(), values.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].value, values[i]);
    ASSERT_EQ(got[i].header("trace_id").value_or(""), "abc");
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Codecs, LogCompression, ::testing::Values("lz4", "zstd"));

}  // namespace
}  // namespace sluice::queue::log
