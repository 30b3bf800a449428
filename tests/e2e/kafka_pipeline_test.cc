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

#include "e2e/scale_out_fixture.h"
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

class KafkaPipelineTest : public ScaleOutTest {
 protected:
  // Short session timeouts so that a killed worker's partitions move within seconds.
  std::string uri(const MockCluster& mc, const std::string& extra = {}) const {
    return "kafka://" + mc.bootstrap() + "?session.timeout.ms=6000&heartbeat.interval.ms=300" + extra;
  }
};

TEST_F(KafkaPipelineTest, TwoWorkersShareTheWork) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  two_workers_share_the_work(uri(mc));
}

TEST_F(KafkaPipelineTest, BrokerDownAndAWorkerKilledLoseNothing) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  const std::string data = dir_.path() + "/data";
  // One Produce request in flight per connection: the mock does not check idempotent sequence
  // numbers, so an error injected into the first of two pipelined requests would drop its batch
  // while the second lands, and librdkafka would rightly count the first as delivered
  // (docs/kafka.md, "when injecting faults").
  const std::string queue = uri(mc, "&max.in.flight.requests.per.connection=1");
  Worker a, b;
  start_worker(a, queue, data);
  start_worker(b, queue, data, SIGKILL);  // b dies with SIGKILL, mid-run, holding work
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
  RunResult r = ingest(queue, data);
  chaos.join();
  a.stop = true;
  a.thread.join();
  b.thread.join();
  EXPECT_EQ(b.result.signal, SIGKILL) << describe(b.result);
  // When the ingest waits in vain, the end of what worker a (which takes over b's partitions) said
  // is the clue.
  const std::string said = describe(a.result);
  expect_clean_run_equivalent(r, data,
                              "\nworker a, its last 20000 bytes:\n" +
                                  (said.size() > 20000 ? said.substr(said.size() - 20000) : said));
}

TEST_F(KafkaPipelineTest, LeadersMovedAndABrokerDownDuringProduceLoseNothing) {
  MockCluster mc;
  ASSERT_FALSE(mc.bootstrap().empty());
  const std::string data = dir_.path() + "/data";
  // Broker 1 is down before the first task is produced: a third of the partitions have no leader
  // until it returns, so the producer must hold and retry those tasks.
  ASSERT_EQ(mc.command("broker-down 1"), "ok");
  Worker a, b;
  start_worker(a, uri(mc), data);
  start_worker(b, uri(mc), data);
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
  RunResult r = ingest(uri(mc), data);
  chaos.join();
  a.stop = b.stop = true;
  a.thread.join();
  b.thread.join();
  expect_clean_run_equivalent(r, data);
  EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
  EXPECT_EQ(b.result.exit_code, 0) << describe(b.result);
}

}  // namespace
