// The log backend against damaged files: one test per kind of corruption (docs/log_format.md,
// "Recovery"), plus the bad inputs the issue names: foreign and unreadable directories, a marker
// of another version, oversized messages, bad partition counts.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "base/crc32c.h"
#include "base/fault_env.h"
#include "queue/log/log_format.h"
#include "queue/log/log_queue.h"

namespace sluice::queue::log {
namespace {

namespace fs = std::filesystem;

class LogRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice-recovery-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0755);
    fs::remove_all(dir_);
  }

  std::unique_ptr<Queue> open(std::string_view query = "") {
    auto q = open_queue("log:" + dir_.string() + std::string(query));
    EXPECT_TRUE(q.is_ok()) << q.status().to_string();
    return q.is_ok() ? std::move(q).value() : nullptr;
  }

  // Sends n messages "v<i>" to partition 0 of topic t, each flushed alone so each is one batch.
  void produce(Queue* q, int from, int n, bool batch_each = true) {
    auto p = q->make_producer({});
    ASSERT_TRUE(p.is_ok());
    for (int i = from; i < from + n; ++i) {
      std::string v = "v" + std::to_string(i);
      ASSERT_TRUE((*p)->send({.topic = "t", .key = "k", .value = v}).is_ok());
      if (batch_each) {
        ASSERT_TRUE((*p)->flush(Millis(10000)).is_ok());
      }
    }
    ASSERT_TRUE((*p)->flush(Millis(10000)).is_ok());
  }

  // Reads everything group g can see; returns values, or stops at the first error.
  std::vector<std::string> consume(Queue* q, const std::string& g, Status* err = nullptr) {
    auto c = q->make_consumer({.group = g, .topics = {"t"}});
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    std::vector<std::string> vals;
    for (int empty = 0; empty < 3;) {
      std::vector<Message> ms;
      Status st = (*c)->poll(ms, 1000, Millis(50));
      empty = ms.empty() ? empty + 1 : 0;
      for (auto& m : ms) {
        vals.emplace_back(m.value);
        EXPECT_TRUE((*c)->ack(m).is_ok());
      }
      if (!st.is_ok()) {
        if (err) *err = st;
        break;
      }
    }
    return vals;
  }

  fs::path segment() { return dir_ / "topics/t/0" / segment_name(0, ".log"); }

  fs::path dir_;
};

TEST_F(LogRecoveryTest, TornTailIsTruncatedOnOpen) {
  uintmax_t size_after_3;
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 3);
    size_after_3 = fs::file_size(segment());
    produce(q.get(), 3, 1);
  }
  // Cut the last batch in half, as a crash in the middle of a write would; the head record still
  // claims the old durable point, so this is the unsynced tail.
  uintmax_t full = fs::file_size(segment());
  fs::resize_file(segment(), size_after_3 + (full - size_after_3) / 2);
  {
    // Rewind the head's recovery point to the end of message 3 so the damage is past it.
    std::fstream h(dir_ / "topics/t/0/head", std::ios::in | std::ios::out | std::ios::binary);
    char buf[kHeadRecordSize];
    h.read(buf, sizeof buf);
    put_u64(buf + 16, 3);
    put_u64(buf + 24, size_after_3);
    put_u64(buf + 32, 3);
    put_u32(buf + 40, static_cast<uint32_t>(size_after_3));
    h.seekp(0);
    put_u32(buf + 44, crc32c::value(buf, 44));
    h.write(buf, sizeof buf);
  }
  auto q = open();
  EXPECT_EQ(consume(q.get(), "g"), (std::vector<std::string>{"v0", "v1", "v2"}));
  EXPECT_EQ(fs::file_size(segment()), size_after_3);
  produce(q.get(), 3, 1);  // appends continue at the right offset
  EXPECT_EQ(consume(q.get(), "g2").size(), 4u);
}

TEST_F(LogRecoveryTest, GarbageAfterTheLastBatchIsTruncated) {
  uintmax_t good;
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 5);
    good = fs::file_size(segment());
  }
  {
    std::ofstream f(segment(), std::ios::app | std::ios::binary);
    std::string junk(1000, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto q = open();
  EXPECT_EQ(consume(q.get(), "g").size(), 5u);
  EXPECT_EQ(fs::file_size(segment()), good);
}

TEST_F(LogRecoveryTest, ZeroFilledTailIsTruncated) {
  uintmax_t good;
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 2);
    good = fs::file_size(segment());
  }
  fs::resize_file(segment(), good + 4096);  // a preallocated or half-flushed page of zeros
  auto q = open();
  EXPECT_EQ(consume(q.get(), "g").size(), 2u);
  EXPECT_EQ(fs::file_size(segment()), good);
}

TEST_F(LogRecoveryTest, CorruptionInsideTheSegmentIsAnErrorNamingFileAndPosition) {
  uintmax_t first_batch_end, total;
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 1);
    first_batch_end = fs::file_size(segment());
    produce(q.get(), 1, 4);
    total = fs::file_size(segment());
  }
  {
    // Flip one byte in the value of the second batch (before the recovery point).
    std::fstream f(segment(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(first_batch_end + kBatchHeaderSize + 6));
    char c;
    f.read(&c, 1);
    c ^= 0x40;
    f.seekp(static_cast<std::streamoff>(first_batch_end + kBatchHeaderSize + 6));
    f.write(&c, 1);
  }
  auto q = open();
  Status err;
  auto vals = consume(q.get(), "g", &err);
  EXPECT_EQ(fs::file_size(segment()), total) << "damage before the recovery point is never cut";
  EXPECT_EQ(vals, (std::vector<std::string>{"v0"}));  // what came before the damage
  ASSERT_FALSE(err.is_ok());
  EXPECT_EQ(err.code(), Code::kCorruption);
  EXPECT_NE(err.message().find(segment().string()), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("at byte " + std::to_string(first_batch_end)), std::string::npos)
      << err.message();
  EXPECT_NE(err.message().find("CRC mismatch"), std::string::npos) << err.message();
  // The operator can move the group past the damage and go on.
  auto moved = q->admin().reset_offsets("g", "t", {.kind = ResetSpec::Kind::kOffset, .value = 2});
  ASSERT_TRUE(moved.is_ok()) << moved.status().to_string();
  EXPECT_EQ(consume(q.get(), "g"), (std::vector<std::string>{"v2", "v3", "v4"}));
}

TEST_F(LogRecoveryTest, DamagedIndexIsIgnoredAndRebuilt) {
  {
    auto q = open("?index_interval_bytes=1&segment_bytes=4KiB");
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 200);
  }
  // Scribble over every index file.
  for (auto& e : fs::directory_iterator(dir_ / "topics/t/0")) {
    if (e.path().extension() == ".index") {
      std::ofstream f(e.path(), std::ios::binary | std::ios::trunc);
      std::string junk(64, '\xee');
      f.write(junk.data(), 64);
    }
  }
  auto q = open();
  auto moved = q->admin().reset_offsets("g", "t", {.kind = ResetSpec::Kind::kOffset, .value = 150});
  ASSERT_TRUE(moved.is_ok());
  auto vals = consume(q.get(), "g");
  ASSERT_EQ(vals.size(), 50u);
  EXPECT_EQ(vals.front(), "v150");
  EXPECT_EQ(vals.back(), "v199");
}

TEST_F(LogRecoveryTest, MissingHeadIsRecoveredByScanning) {
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 3);
  }
  fs::remove(dir_ / "topics/t/0/head");
  auto q = open();
  EXPECT_EQ(consume(q.get(), "g").size(), 3u);
  produce(q.get(), 3, 2);
  EXPECT_EQ(consume(q.get(), "g2").size(), 5u);
}

TEST_F(LogRecoveryTest, DamagedGroupOffsetsFileIsAnError) {
  {
    auto q = open();
    ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
    produce(q.get(), 0, 3);
    auto vals = consume(q.get(), "g");
    ASSERT_EQ(vals.size(), 3u);
  }
  {
    std::fstream f(dir_ / "groups/g/offsets", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(14);
    f.write("\x01", 1);
  }
  auto q = open();
  auto info = q->admin().describe_group("g");
  ASSERT_FALSE(info.is_ok());
  EXPECT_EQ(info.status().code(), Code::kCorruption);
  EXPECT_NE(info.status().message().find("groups/g/offsets"), std::string::npos);
}

TEST_F(LogRecoveryTest, ForeignDirectoryIsRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "thesis.docx") << "not a log";
  auto q = open_queue("log:" + dir_.string());
  ASSERT_FALSE(q.is_ok());
  EXPECT_EQ(q.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(q.status().message().find("not a sluice log directory"), std::string::npos);
  EXPECT_NE(q.status().message().find("thesis.docx"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "thesis.docx"));  // nothing of the user's was touched
}

TEST_F(LogRecoveryTest, MarkerOfAnotherVersionIsRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / kMarkerFile) << "sluice-log 9\n";
  auto q = open_queue("log:" + dir_.string());
  ASSERT_FALSE(q.is_ok());
  EXPECT_NE(q.status().message().find("sluice-log 9"), std::string::npos) << q.status().message();
}

TEST_F(LogRecoveryTest, UnreadableDirectoryIsAClearError) {
  // Permissions do not stop root, so the Env plays the unreadable directory.
  test::FaultEnv env;
  env.fail_list = true;
  fs::create_directories(dir_);
  LogOptions o;
  o.dir = dir_.string();
  o.env = &env;
  auto q = open_log_queue(o);
  ASSERT_FALSE(q.is_ok());
  EXPECT_EQ(q.status().error_class(), ErrorClass::kBadInput) << q.status().to_string();
  EXPECT_NE(q.status().message().find("cannot read the log directory"), std::string::npos)
      << q.status().message();
  EXPECT_NE(q.status().message().find(dir_.string()), std::string::npos) << q.status().message();
  EXPECT_NE(q.status().message().find("Permission denied"), std::string::npos) << q.status().message();
}

TEST_F(LogRecoveryTest, PathThatIsAFileIsRefused) {
  fs::create_directories(dir_.parent_path());
  std::ofstream(dir_) << "x";
  auto q = open_queue("log:" + dir_.string());
  ASSERT_FALSE(q.is_ok());
  EXPECT_NE(q.status().message().find("not a directory"), std::string::npos);
  fs::remove(dir_);
}

TEST_F(LogRecoveryTest, BadUriOptionsAreRefused) {
  for (const char* bad :
       {"?fsync=sometimes", "?segment_bytes=lots", "?nosuch=1", "?compression=gzip", "?partitions=0"}) {
    auto q = open_queue("log:" + dir_.string() + bad);
    ASSERT_FALSE(q.is_ok()) << bad;
    EXPECT_EQ(q.status().error_class(), ErrorClass::kBadInput) << bad;
  }
}

TEST_F(LogRecoveryTest, SegmentsRollAndRetentionKeepsWhatGroupsNeed) {
  auto q = open("?segment_bytes=2KiB&retention_check_ms=20");
  ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1, .retention_bytes = 0}).is_ok());
  // Group g joins first, reads half and commits: retention may delete only what g has consumed.
  {
    auto c = q->make_consumer({.group = "g", .topics = {"t"}});
    std::vector<Message> none;
    ASSERT_TRUE((*c)->poll(none, 1, Millis(10)).is_ok());  // joins and takes its partitions
    produce(q.get(), 0, 100);
    size_t segs = 0;
    for (auto& e : fs::directory_iterator(dir_ / "topics/t/0")) segs += e.path().extension() == ".log";
    EXPECT_GT(segs, 2u);
    std::vector<Message> ms;
    for (int i = 0; i < 100 && ms.size() < 50; ++i)
      ASSERT_TRUE((*c)->poll(ms, 50 - ms.size(), Millis(100)).is_ok());
    ASSERT_EQ(ms.size(), 50u);
    for (auto& m : ms) ASSERT_TRUE((*c)->ack(m).is_ok());
    ASSERT_TRUE((*c)->close().is_ok());
  }
  int64_t start = 0;
  for (int i = 0; i < 100 && start == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto info = q->admin().describe_topic("t");
    ASSERT_TRUE(info.is_ok());
    start = info->partition_info[0].start.value();
  }
  EXPECT_GT(start, 0) << "retention deleted nothing";
  EXPECT_LE(start, 50) << "retention deleted messages group g has not consumed";
  auto vals = consume(q.get(), "g");
  ASSERT_EQ(vals.size(), 50u);
  EXPECT_EQ(vals.front(), "v50");
}

}  // namespace
}  // namespace sluice::queue::log

namespace sluice::queue::log {
namespace {

// Offsets by time across many segments: the time index narrows the scan, the answer stays exact.
TEST(LogTimeIndex, ResetToTimestampAcrossSegments) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("sluice-timeindex-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto q = open_queue("log:" + dir.string() + "?segment_bytes=1KiB&index_interval_bytes=256");
  ASSERT_TRUE(q.is_ok());
  ASSERT_TRUE((*q)->admin().create_topic("t", {}).is_ok());
  auto p = (*q)->make_producer({});
  const int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < 500; ++i) {
    std::string v = "record-" + std::to_string(i);
    ASSERT_TRUE((*p)->send({.topic = "t", .value = v, .timestamp_ms = t0 + i * 1000}).is_ok());
    if (i % 10 == 9) {
      ASSERT_TRUE((*p)->flush(Millis(5000)).is_ok());
    }
  }
  ASSERT_TRUE((*p)->flush(Millis(5000)).is_ok());
  size_t segs = 0;
  for (auto& e : fs::directory_iterator(dir / "topics/t/0")) segs += e.path().extension() == ".log";
  EXPECT_GT(segs, 3u);
  for (int64_t probe : {0, 1, 137, 250, 251, 499}) {
    auto r = (*q)->admin().reset_offsets("g", "t",
                                         {.kind = ResetSpec::Kind::kTimestamp, .value = t0 + probe * 1000});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)[0].offset.value(), probe);
    // Between two records: the next one.
    r = (*q)->admin().reset_offsets("g", "t",
                                    {.kind = ResetSpec::Kind::kTimestamp, .value = t0 + probe * 1000 - 1});
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ((*r)[0].offset.value(), probe);
  }
  auto after =
      (*q)->admin().reset_offsets("g", "t", {.kind = ResetSpec::Kind::kTimestamp, .value = t0 + 10'000'000});
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ((*after)[0].offset.value(), 500) << "a time after every record is the end";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::queue::log

namespace sluice::queue::log {
namespace {

// members.json is informational: a damaged one must not break describe_group (it once could throw).
TEST(LogGroups, DamagedMembersFileReadsAsNoMembers) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("sluice-members-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto q = open_queue("log:" + dir.string());
  ASSERT_TRUE(q.is_ok());
  ASSERT_TRUE((*q)->admin().create_topic("t", {}).is_ok());
  auto c = (*q)->make_consumer({.group = "g", .topics = {"t"}});
  ASSERT_TRUE(c.is_ok());
  std::vector<Message> none;
  ASSERT_TRUE((*c)->poll(none, 1, Millis(10)).is_ok());  // joins: the group is active
  for (const char* bad : {R"({"members":[{"name":1,"topics":[2],"partitions":["t/x",7,"nope"]}]})",
                          "not json", R"({"members":"x"})"}) {
    std::ofstream(dir / "groups/g/members.json") << bad;
    auto info = (*q)->admin().describe_group("g");
    ASSERT_TRUE(info.is_ok()) << bad << ": " << info.status().to_string();
    EXPECT_EQ(info->state, "active");
    for (const auto& gp : info->partitions) EXPECT_EQ(gp.member, "") << bad;
  }
  c->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::queue::log
