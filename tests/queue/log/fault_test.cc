// The log backend when the disk fails: an fsync that answers EIO and a write that answers ENOSPC
// fail the messages of that round with a classed error, are taken back from the segment, and
// leave every other message intact.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "base/fault_env.h"
#include "queue/log/log_queue.h"

namespace sluice::queue::log {
namespace {

namespace fs = std::filesystem;

struct Sent {
  std::mutex mu;
  std::vector<std::pair<std::string, Status>> reports;
};

class LogFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice-fault-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    LogOptions o;
    o.dir = dir_.string();
    o.env = &env_;
    auto q = open_log_queue(o);
    ASSERT_TRUE(q.is_ok()) << q.status().to_string();
    q_ = std::move(q).value();
    ASSERT_TRUE(q_->admin().create_topic("t", {.partitions = 1}).is_ok());
    auto p = q_->make_producer({.on_delivery = [this](const DeliveryReport& r) {
      std::lock_guard<std::mutex> l(sent_.mu);
      sent_.reports.emplace_back(*static_cast<std::string*>(r.opaque), r.status);
    }});
    ASSERT_TRUE(p.is_ok());
    p_ = std::move(p).value();
  }
  void TearDown() override {
    p_.reset();
    q_.reset();
    fs::remove_all(dir_);
  }

  // Sends the values and waits for their reports; returns the flush status.
  Status send_all(std::vector<std::string>& values) {
    for (auto& v : values) {
      auto t = p_->send({.topic = "t", .key = "k", .value = v}, &v);
      if (!t.is_ok()) return t.status();
    }
    return p_->flush(Millis(10000));
  }

  std::vector<std::string> consume_all() {
    auto c = q_->make_consumer({.group = "reader", .topics = {"t"}});
    EXPECT_TRUE(c.is_ok());
    std::vector<std::string> out;
    for (int empty = 0; empty < 3;) {
      std::vector<Message> ms;
      Status st = (*c)->poll(ms, 1000, Millis(50));
      EXPECT_TRUE(st.is_ok()) << st.to_string();
      if (!st.is_ok()) break;
      empty = ms.empty() ? empty + 1 : 0;
      for (auto& m : ms) out.emplace_back(m.value);
    }
    return out;
  }

  test::FaultEnv env_;
  fs::path dir_;
  std::unique_ptr<Queue> q_;
  std::unique_ptr<Producer> p_;
  Sent sent_;
};

TEST_F(LogFaultTest, FailedFsyncFailsThatRoundAndTakesItBack) {
  std::vector<std::string> before = {"a1", "a2", "a3"}, during = {"b1", "b2"}, after = {"c1", "c2"};
  ASSERT_TRUE(send_all(before).is_ok());
  env_.fail_sync = true;
  Status st = send_all(during);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kFatal);
  EXPECT_NE(st.message().find("fsync"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(".log"), std::string::npos) << st.message();
  EXPECT_GT(env_.syncs_failed.load(), 0);
  env_.fail_sync = false;
  ASSERT_TRUE(send_all(after).is_ok());
  {
    std::lock_guard<std::mutex> l(sent_.mu);
    ASSERT_EQ(sent_.reports.size(), 7u);
    for (auto& [v, s] : sent_.reports) EXPECT_EQ(s.is_ok(), v[0] != 'b') << v << " " << s.to_string();
  }
  // What the producer was told failed is not in the log; everything else is, in order.
  EXPECT_EQ(consume_all(), (std::vector<std::string>{"a1", "a2", "a3", "c1", "c2"}));
}

TEST_F(LogFaultTest, DiskFullIsAResourceLimitAndLosesNothingElse) {
  std::vector<std::string> before = {"a1"}, during = {"b1", "b2"}, after = {"c1"};
  ASSERT_TRUE(send_all(before).is_ok());
  env_.fail_write = true;
  Status st = send_all(during);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kResourceLimit) << st.to_string();
  EXPECT_NE(st.message().find("No space left"), std::string::npos) << st.message();
  env_.fail_write = false;
  ASSERT_TRUE(send_all(after).is_ok());
  EXPECT_EQ(consume_all(), (std::vector<std::string>{"a1", "c1"}));
  // And after a restart the log holds the same.
  p_.reset();
  q_.reset();
  auto q = open_queue("log:" + dir_.string());
  ASSERT_TRUE(q.is_ok());
  q_ = std::move(q).value();
  EXPECT_EQ(consume_all(), (std::vector<std::string>{"a1", "c1"}));
}

}  // namespace
}  // namespace sluice::queue::log
