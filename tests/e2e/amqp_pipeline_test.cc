// The pipeline on RabbitMQ: `sluice ingest --no-workers` feeding two `sluice worker` processes
// through a real broker (durable queues, persistent messages, publisher confirms), with faults: a
// worker killed with SIGKILL while it holds delivered, unacknowledged tasks (RabbitMQ puts them back
// when its connection dies), and the broker stopped mid-run and started again on the same port and
// directory. Each run ends with every document indexed once, with the chunk counts of a clean run on
// the embedded log.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "e2e/scale_out_fixture.h"
#include "support/rabbitmq_server.h"
#include "support/require_server.h"

namespace {

using namespace sluice::test;

class AmqpPipelineTest : public ScaleOutTest {
 protected:
  // Enough documents that a worker slowed down to one in flight is still busy when it is killed.
  AmqpPipelineTest() { notes_ = 300; }
  void SetUp() override {
    ScaleOutTest::SetUp();
    sluice::Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  std::string uri() const { return server_.uri(); }
  // Documents in the worker-side index so far.
  size_t indexed(const std::string& data) { return chunks_by_source(data).size(); }

  sluice::testing::RabbitMqServer server_;
};

TEST_F(AmqpPipelineTest, TwoWorkersShareTheWork) {
  two_workers_share_the_work(uri(), [&] { return wait_for_members(uri(), "sluice-parse", 2); });
}

// Worker b starts alone, slowed down (one thread, one document in flight; its prefetch still
// takes 256 tasks off the queue) and is killed with SIGKILL once a few documents are indexed: it
// dies holding delivered, unacknowledged tasks. Then the broker is stopped while the ingest waits
// for results, and started again a second later; only then does worker a start and finish the run
// with what RabbitMQ gave back.
TEST_F(AmqpPipelineTest, BrokerRestartAndAWorkerKilledLoseNothing) {
  const std::string data = dir_.path() + "/data";
  Worker a, b;
  start_worker(b, uri(), data, SIGKILL, {"--workers", "1", "--max-in-flight", "1"});
  ASSERT_TRUE(wait_for_members(uri(), "sluice-parse", 1));
  size_t indexed_at_kill = 0;
  std::thread chaos([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (indexed(data) < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.stop = true;
    b.thread.join();
    indexed_at_kill = indexed(data);
    server_.stop();  // SIGTERM: the broker syncs its durable queues and exits
    std::this_thread::sleep_for(std::chrono::seconds(1));
    sluice::Status st = server_.start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    start_worker(a, uri(), data);
  });
  RunResult r = ingest(uri(), data);
  chaos.join();
  a.stop = true;
  a.thread.join();
  EXPECT_EQ(b.result.signal, SIGKILL) << describe(b.result);
  EXPECT_GE(indexed_at_kill, 3u);
  EXPECT_LT(indexed_at_kill, 305u)
      << "worker b finished everything before it was killed: the fault hit nothing";
  expect_clean_run_equivalent(r, data);
  EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
}

}  // namespace
