// The conformance suite's test fixture and helpers: a QueueConformance test gets a fresh backend
// from the BackendFixture registered under its parameter, a watchdog that ends a hung test, and
// helpers to produce owned messages and to poll with deadlines. Nothing here names a backend.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "conformance/backend.h"
#include "queue/queue.h"

// Status assertions; a failure prints the expression and the status a person can read.
#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    const ::sluice::Status _st = (expr);                                 \
    ASSERT_TRUE(_st.is_ok()) << #expr << " failed: " << _st.to_string(); \
  } while (0)
#define EXPECT_OK(expr)                                                  \
  do {                                                                   \
    const ::sluice::Status _st = (expr);                                 \
    EXPECT_TRUE(_st.is_ok()) << #expr << " failed: " << _st.to_string(); \
  } while (0)
#define SLUICE_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                        \
  auto tmp = (expr);                                                            \
  ASSERT_TRUE(tmp.is_ok()) << #expr << " failed: " << tmp.status().to_string(); \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  SLUICE_ASSERT_OK_AND_ASSIGN_IMPL(SLUICE_CONCAT(_res_, __LINE__), lhs, expr)

namespace sluice::conformance {

using namespace std::chrono_literals;
using queue::Millis;

// How long a test waits for something that must happen; generous, because a loaded CI machine is
// slow and a too-short wait is a flaky test, while a hang is caught by the watchdog anyway.
inline constexpr Millis kWait{15000};
// How long a test watches for something that must NOT happen (a duplicate, a stray message).
inline constexpr Millis kQuiet{400};

// A message to send, owning its bytes (OutMessage only views them).
struct Out {
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<int32_t> partition;
  int64_t timestamp_ms = 0;
};

// n messages with key `key` and values prefix0, prefix1, ...: the usual payload of a test.
inline std::vector<Out> numbered(const std::string& topic, int n, const std::string& prefix = "m",
                                 const std::string& key = "k") {
  std::vector<Out> out;
  for (int i = 0; i < n; ++i) out.push_back(Out{topic, key, prefix + std::to_string(i), {}, {}, 0});
  return out;
}

// A delivery report with owned fields, as the producer callback saw it.
struct Report {
  uint64_t ticket = 0;
  void* opaque = nullptr;
  Status status;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// What a consumer received, copied out of the message (for printing and comparing).
struct Seen {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};
Seen seen(const queue::Message& m);

// Sends one owned message; the views handed to the backend live for the duration of the call.
Result<uint64_t> send(queue::Producer& p, const Out& out, void* opaque = nullptr);

// A producer whose delivery reports are collected, for tests that look at them.
class RecordingProducer {
 public:
  RecordingProducer() = default;
  Status init(queue::Queue& q);
  queue::Producer& get() { return *producer_; }
  // Reports so far, in the order the callback ran.
  std::vector<Report> reports() const;
  // Waits until n reports arrived; false on timeout.
  bool wait_reports(size_t n, Millis timeout) const;
  void reset() { producer_.reset(); }

 private:
  struct State {
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::vector<Report> reports;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::unique_ptr<queue::Producer> producer_;
};

// Polls until `want` messages arrived in total (counting duplicates) or timeout; returns what came.
// A poll error is recorded in *error (when given) and ends the wait.
std::vector<queue::Message> poll_n(queue::Consumer& c, size_t want, Millis timeout, Status* error = nullptr);
// Polls for the whole duration and returns whatever arrived (tests expect it to be empty).
std::vector<queue::Message> poll_for(queue::Consumer& c, Millis duration);
// Polls every consumer in turn with a short timeout, appending to got[i], until done() or the
// deadline. Returns done()'s last answer. Used where one thread drives several group members so
// that each gets to take part in rebalances.
bool poll_round_robin(const std::vector<queue::Consumer*>& consumers,
                      std::vector<std::vector<queue::Message>>& got, const std::function<bool()>& done,
                      Millis timeout);
// True when every consumer owns at least one partition, no partition is owned twice, and together
// they own all `partitions` partitions of topic.
bool assignments_settled(const std::vector<queue::Consumer*>& consumers, const std::string& topic,
                         int32_t partitions);

// Offsets received per partition, sorted; duplicates kept (tests look for them).
std::map<int32_t, std::vector<int64_t>> offsets_by_partition(const std::vector<queue::Message>& msgs);

std::string str(std::string_view v);
// Readable form of bytes for failure messages: printable ASCII as is, the rest as \xNN.
std::string printable(std::string_view bytes);

// Ends the process when a test runs past its time, naming the test: a hung backend call must fail
// the suite, not stall CI until an outer timeout with no clue where it stuck.
class Watchdog {
 public:
  Watchdog(std::string test_name, std::chrono::seconds limit);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The suite's fixture; the parameter is a registered backend name.
class QueueConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  queue::Queue& q() { return *queue_; }
  queue::Admin& admin() { return queue_->admin(); }
  const queue::Capabilities& caps() const { return caps_; }
  BackendFixture& backend() { return *backend_; }

  // A topic or group name made unique for backends that share a server between tests.
  std::string name(std::string_view base) const { return std::string(base) + backend_->name_suffix(); }
  // Destroys the Queue handle (every producer and consumer of it must be gone) and opens a new one.
  void reopen();
  // Destroys the Queue handle without opening a new one (for tests that fork).
  void close_queue() { queue_.reset(); }
  void open_queue();

  // Creates a topic with `partitions` partitions (fails the test when refused).
  void create_topic(const std::string& topic, int32_t partitions);
  // Declares group on topics (Admin::declare_group; fails the test when refused). A test that
  // produces before a group's first consumer exists calls it first: without late_groups a group
  // receives only what is sent after it was declared. A no-op on the other backends.
  void declare_group(const std::string& group, const std::vector<std::string>& topics);
  // create_topic, then declare_group(group, {topic}): the start of most tests.
  void create_topic(const std::string& topic, int32_t partitions, const std::string& group);
  // Sends every message, flushes, and checks that every delivery succeeded.
  void produce(const std::vector<Out>& msgs, std::vector<Report>* reports = nullptr);
  // A consumer in group for topics; fails the test (returns nullptr) when refused.
  std::unique_ptr<queue::Consumer> consumer(const std::string& group, std::vector<std::string> topics,
                                            queue::StartFrom start_from = queue::StartFrom::kEarliest);
  // The committed offset of group on topic/partition as describe_group reports it.
  std::optional<int64_t> committed(const std::string& group, const std::string& topic, int32_t partition);
  // describe_group's row for topic/partition; ADD_FAILUREs and returns nullopt when absent.
  std::optional<queue::GroupPartition> group_partition(const std::string& group, const std::string& topic,
                                                       int32_t partition);

 private:
  std::unique_ptr<BackendFixture> backend_;
  std::unique_ptr<queue::Queue> queue_;
  queue::Capabilities caps_;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace sluice::conformance
