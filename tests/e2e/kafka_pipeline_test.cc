// The pipeline on Kafka: `sluice ingest --no-workers` feeding two `sluice worker` processes
// through a 3-broker cluster (sluice-kafka-mock, librdkafka's mock cluster), with faults: a broker
// taken down and brought back while the tasks are produced and while they are consumed, partition
// leaders moved mid-run, retriable errors injected into produce, fetch and commit requests, and a
// worker killed with SIGKILL mid-batch. Each run ends with every document indexed once, with the
// chunk counts of a clean run on the embedded log.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/sluice_runner.h"
#include "pipeline/stages.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
namespace pipeline = sluice::pipeline;
using nlohmann::json;

// sluice-kafka-mock as a child: its first stdout line is the bootstrap list; commands go to its
// stdin, answers come back on stdout; closing stdin stops it.
class MockCluster {
 public:
  MockCluster() {
    int in[2], out[2];
    EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::execl(SLUICE_KAFKA_MOCK, SLUICE_KAFKA_MOCK, "--brokers", "3", "--pipeline-topics", "4:3",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = ::fdopen(out[0], "r");
    bootstrap_ = read_line();
  }
  ~MockCluster() {
    ::close(to_);
    std::fclose(from_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  const std::string& bootstrap() const { return bootstrap_; }
  // Sends one command; returns the answer line ("ok" or "error: ...").
  std::string command(const std::string& line) {
    std::string l = line + "\n";
    EXPECT_EQ(::write(to_, l.data(), l.size()), static_cast<ssize_t>(l.size()));
    return read_line();
  }

 private:
  std::string read_line() {
    char buf[4096];
    if (std::fgets(buf, sizeof buf, from_) == nullptr) return {};
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  pid_t pid_ = -1;
  int to_ = -1;
  FILE* from_ = nullptr;
  std::string bootstrap_;
};

// doc source -> chunk count, from the local index's SQLite file.
std::map<std::string, int> chunks_by_source(const std::string& data) {
  std::map<std::string, int> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((data + "/index/index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(
      db,
      "SELECT d.source, COUNT(c.id) FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id "
      "GROUP BY d.doc_id",
      -1, &s, nullptr);
  while (sqlite3_step(s) == SQLITE_ROW) {
    out[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] = sqlite3_column_int(s, 1);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

int duplicate_chunks(const std::string& data) {
  sqlite3* db = nullptr;
  sqlite3_open_v2((data + "/index/index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) - COUNT(DISTINCT chunk_id) FROM chunks", -1, &s, nullptr);
  int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

class KafkaPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = dir_.path() + "/docs";
    fs::create_directories(docs_);
    for (const char* f : {"english.pdf", "guide.md", "page.html", "people.csv", "chinese_gbk.txt"}) {
      fs::copy_file(std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/" + f, docs_ + "/" + f);
    }
    for (int i = 0; i < 40; ++i) {
      std::string text = "# Note " + std::to_string(i) + "\n\n";
      for (int j = 0; j <= i % 5; ++j) {
        text += "Paragraph " + std::to_string(j) + " of note " + std::to_string(i) +
                " about partitions, consumer groups and rebalancing in a Kafka cluster.\n\n";
      }
      write_file(docs_ + "/note" + std::to_string(i) + ".md", text);
    }
    // The clean run: the same folder on the embedded log.
    RunResult clean = run_sluice({"ingest", docs_, "--data", dir_.path() + "/clean", "--progress", "none"});
    ASSERT_EQ(clean.exit_code, 0) << describe(clean);
    clean_ = chunks_by_source(dir_.path() + "/clean");
    ASSERT_EQ(clean_.size(), 45u);
  }
  static void write_file(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  std::string uri(const MockCluster& mc) const {
    // Short session timeouts so that a killed worker's partitions move within seconds.
    return "kafka://" + mc.bootstrap() + "?session.timeout.ms=6000&heartbeat.interval.ms=300";
  }
  // A worker on a thread of its own; stop it with its flag (SIGTERM) or kill its process group.
  struct Worker {
    std::atomic<bool> stop{false};
    RunResult result;
    std::thread thread;
  };
  void start_worker(Worker& w, const MockCluster& mc, const std::string& data, int stop_signal = SIGTERM) {
    w.thread = std::thread([&w, this, &mc, data, stop_signal] {
      RunOptions o;
      o.terminate = &w.stop;
      o.terminate_signal = stop_signal;
      o.kill_after = std::chrono::milliseconds(240000);
      w.result = run_sluice({"worker", "--queue", uri(mc), "--data", data}, o);
    });
  }
  RunResult ingest(const MockCluster& mc, const std::string& data) {
    RunOptions o;
    o.kill_after = std::chrono::milliseconds(240000);
    return run_sluice(
        {"ingest", docs_, "--no-workers", "--queue", uri(mc), "--data", data, "--progress", "none", "--json"},
        o);
  }

  // The ingest ended well and the index equals the clean run's: every document once, its chunk
  // count the same, no chunk twice.
  void expect_clean_run_equivalent(const RunResult& r, const std::string& data) {
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    json s = json::parse(split_lines(r.out).back());
    EXPECT_EQ(s["ok"], 45) << s.dump();
    EXPECT_EQ(chunks_by_source(data), clean_);
    EXPECT_EQ(duplicate_chunks(data), 0);
  }

  TempDir dir_{"sluice-kafka-e2e"};
  std::string docs_;
  std::map<std::string, int> clean_;
};

TEST_F(KafkaPipelineTest, TwoWorkersShareTheWork) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  const std::string data = dir_.path() + "/data";
  Worker a, b;
  start_worker(a, mc, data);
  start_worker(b, mc, data);
  RunResult r = ingest(mc, data);
  a.stop = b.stop = true;
  a.thread.join();
  b.thread.join();
  expect_clean_run_equivalent(r, data);
  EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
  EXPECT_EQ(b.result.exit_code, 0) << describe(b.result);
  // Both did some of it.
  for (const Worker* w : {&a, &b}) {
    EXPECT_NE(w->result.err.find("\"document done\""), std::string::npos) << w->result.err.substr(0, 3000);
  }
}

TEST_F(KafkaPipelineTest, BrokerDownAndAWorkerKilledLoseNothing) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  const std::string data = dir_.path() + "/data";
  Worker a, b;
  start_worker(a, mc, data);
  start_worker(b, mc, data, SIGKILL);  // b dies with SIGKILL, mid-run, holding work
  std::thread chaos([&] {
    std::this_thread::sleep_for(std::chrono::seconds(4));
    EXPECT_EQ(mc.command("broker-down 2"), "ok");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    b.stop = true;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(mc.command("broker-up 2"), "ok");
    // Retriable errors injected into produce, fetch and commit requests.
    EXPECT_EQ(mc.command("errors Produce NOT_LEADER_FOR_PARTITION 3"), "ok");
    EXPECT_EQ(mc.command("errors Fetch NOT_LEADER_FOR_PARTITION 3"), "ok");
    EXPECT_EQ(mc.command("errors OffsetCommit COORDINATOR_NOT_AVAILABLE 2"), "ok");
  });
  RunResult r = ingest(mc, data);
  chaos.join();
  a.stop = true;
  a.thread.join();
  b.thread.join();
  EXPECT_EQ(b.result.signal, SIGKILL) << describe(b.result);
  expect_clean_run_equivalent(r, data);
}

TEST_F(KafkaPipelineTest, LeadersMovedAndABrokerDownDuringProduceLoseNothing) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  const std::string data = dir_.path() + "/data";
  // Broker 1 is down before the first task is produced: a third of the partitions have no leader
  // until it returns, so the producer must hold and retry those tasks.
  ASSERT_EQ(mc.command("broker-down 1"), "ok");
  Worker a, b;
  start_worker(a, mc, data);
  start_worker(b, mc, data);
  std::thread chaos([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(mc.command("broker-up 1"), "ok");
    // Then every partition of the stages' topics changes leader twice while the workers consume.
    for (int round = 1; round <= 2; ++round) {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      for (const char* topic : {pipeline::kTopicUpload, pipeline::kTopicParsed, pipeline::kTopicEmbedded,
                                pipeline::kTopicResults}) {
        for (int p = 0; p < 4; ++p) {
          EXPECT_EQ(mc.command("leader " + std::string(topic) + " " + std::to_string(p) + " " +
                               std::to_string((p + round) % 3 + 1)),
                    "ok");
        }
      }
    }
  });
  RunResult r = ingest(mc, data);
  chaos.join();
  a.stop = b.stop = true;
  a.thread.join();
  b.thread.join();
  expect_clean_run_equivalent(r, data);
  EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
  EXPECT_EQ(b.result.exit_code, 0) << describe(b.result);
}

}  // namespace
