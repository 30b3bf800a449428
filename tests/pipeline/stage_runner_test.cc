// StageRunner on the log queue: outputs before acks, per-key order, retries with backoff through
// `.retry`, bad input and exhausted retries to `.dlq` with the error, lag 0 at the end.
#include "pipeline/stage_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

std::vector<queue::Message> read_all(queue::Queue& q, const std::string& topic) {
  auto c = q.make_consumer({.group = "reader-" + topic, .topics = {topic}, .ephemeral = true});
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  std::vector<queue::Message> out;
  for (int empty = 0; empty < 4;) {
    size_t before = out.size();
    EXPECT_TRUE((*c)->poll(out, 1000, queue::Millis(50)).is_ok());
    empty = out.size() == before ? empty + 1 : 0;
  }
  return out;
}

TEST(StageRunner, ProducesRetriesAndDeadLetters) {
  fs::path dir = fs::temp_directory_path() / ("sluice-stage-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto qr = queue::open_queue("log:" + dir.string());
  ASSERT_TRUE(qr.is_ok());
  queue::Queue& q = **qr;
  ASSERT_TRUE(q.admin().create_topic("in", {.partitions = 2}).is_ok());
  ASSERT_TRUE(q.admin().create_topic("out", {.partitions = 2}).is_ok());
  {
    auto p = q.make_producer({});
    for (int i = 0; i < 30; ++i) {
      std::string key = "doc" + std::to_string(i % 5);
      std::string v = key + ":" + std::to_string(i);
      ASSERT_TRUE((*p)->send({.topic = "in", .key = key, .value = v}).is_ok());
    }
    for (const char* k : {"flaky", "bad", "always"}) {
      ASSERT_TRUE((*p)->send({.topic = "in", .key = std::string_view(k), .value = k}).is_ok());
    }
    ASSERT_TRUE((*p)->flush(queue::Millis(5000)).is_ok());
  }
  std::mutex mu;
  std::map<std::string, int> calls;
  ProcessFn fn = [&](const queue::Message& m) -> Outcome {
    std::string key(m.key.value_or(""));
    int n;
    {
      std::lock_guard<std::mutex> l(mu);
      n = ++calls[key];
    }
    if (key == "bad") return {Status::invalid_argument("not a document"), {}};
    if (key == "always") return {Status::timeout("service away"), {}};
    if (key == "flaky" && n < 3) return {Status::busy("try later"), {}};
    return {Status(),
            {Output{"out",
                    key,
                    "done " + std::string(m.value),
                    {{"attempt", std::string(m.header("attempt").value_or("1"))}}}}};
  };
  DeadLetterFn dead = [](const queue::Message& m, const Status& st, int attempts) {
    return std::vector<Output>{{"results",
                                std::string(m.key.value_or("")),
                                "failed " + st.to_string() + " after " + std::to_string(attempts),
                                {}}};
  };
  ASSERT_TRUE(q.admin().create_topic("results", {}).is_ok());
  StageConfig cfg{
      .name = "test", .input_topic = "in", .workers = 3, .max_in_flight = 8, .backoff = queue::Millis(20)};
  StageRunner runner(q, cfg, fn, dead);
  std::atomic<bool> stop{false};
  Status run_status;
  std::thread t([&] { run_status = runner.run(stop); });
  // 31 outputs expected: 30 plain + flaky after two retries.
  for (int i = 0; i < 200 && runner.stats().processed.load() < 30 + 1 + 2 + 1 + 2 + 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  stop = true;
  t.join();
  ASSERT_TRUE(run_status.is_ok()) << run_status.to_string();

  auto out = read_all(q, "out");
  ASSERT_EQ(out.size(), 31u);
  std::map<std::string, std::vector<int>> per_key;
  for (auto& m : out) {
    std::string v(m.value);
    if (m.key == std::optional<std::string_view>("flaky")) {
      EXPECT_EQ(m.header("attempt").value_or(""), "3") << "flaky succeeds on its third attempt";
      continue;
    }
    per_key[std::string(*m.key)].push_back(std::stoi(v.substr(v.find(':') + 1)));
  }
  for (auto& [k, seq] : per_key) {
    EXPECT_TRUE(std::is_sorted(seq.begin(), seq.end())) << "order broken for " << k;
    EXPECT_EQ(seq.size(), 6u);
  }
  auto dlq = read_all(q, "in.dlq");
  ASSERT_EQ(dlq.size(), 2u);
  std::map<std::string, const queue::Message*> by_key;
  for (auto& m : dlq) by_key[std::string(*m.key)] = &m;
  ASSERT_TRUE(by_key.count("bad") && by_key.count("always"));
  EXPECT_EQ(by_key["bad"]->header("error_class").value_or(""), "bad_input");
  EXPECT_EQ(by_key["bad"]->header("attempt").value_or(""), "1") << "bad input is never retried";
  EXPECT_EQ(by_key["bad"]->header("error_message").value_or(""), "not a document");
  EXPECT_EQ(by_key["always"]->header("error_class").value_or(""), "retriable");
  EXPECT_EQ(by_key["always"]->header("attempt").value_or(""), "3");
  EXPECT_EQ(by_key["always"]->header("failed_stage").value_or(""), "test");
  EXPECT_EQ(calls["always"], 3);
  EXPECT_EQ(calls["flaky"], 3);
  auto retries = read_all(q, "in.retry");
  EXPECT_EQ(retries.size(), 4u);  // flaky twice, always twice
  auto results = read_all(q, "results");
  ASSERT_EQ(results.size(), 2u);
  // Every input (and retry) was acked: the group has no lag.
  auto g = q.admin().describe_group("sluice-test");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (auto& gp : g->partitions) EXPECT_EQ(gp.lag, 0) << gp.topic << "/" << gp.partition.value();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::pipeline
