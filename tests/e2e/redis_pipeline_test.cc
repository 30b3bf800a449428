// The pipeline on Redis Streams: `sluice ingest --no-workers` feeding two `sluice worker` processes
// through a real redis-server (AOF on), with faults: the server restarted mid-run (shut down, away
// for a second, started again on the same port and AOF) and a worker killed with SIGKILL holding
// work. Each run ends with every document indexed once, with the chunk counts of a clean run on the
// embedded log.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "e2e/scale_out_fixture.h"
#include "support/redis_server.h"
#include "support/require_server.h"

namespace {

using namespace sluice::test;

class RedisPipelineTest : public ScaleOutTest {
 protected:
  // Enough documents that a worker slowed down to one in flight is still busy when it is killed.
  RedisPipelineTest() { notes_ = 300; }
  void SetUp() override {
    ScaleOutTest::SetUp();
    sluice::Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  // A short session timeout, so that a killed worker's partitions move within seconds.
  std::string uri() const { return server_.uri("session_timeout_ms=3000"); }

  sluice::testing::RedisServer server_;
};

TEST_F(RedisPipelineTest, TwoWorkersShareTheWork) {
  two_workers_share_the_work(uri(), [&] { return wait_for_owners(uri(), "sluice-parse", "doc_upload", 2); });
}

// Worker b starts alone, slowed down (one thread, one document in flight), and is killed with
// SIGKILL once a few results are out: it dies holding delivered, unacknowledged tasks. Then the
// server is shut down while the ingest waits for results, and started again a second later; only
// then does worker a start, take b's partitions over when their leases run out, claim b's pending
// tasks and finish the run.
TEST_F(RedisPipelineTest, ServerRestartAndAWorkerKilledLoseNothing) {
  const std::string data = dir_.path() + "/data";
  Worker a, b;
  start_worker(b, uri(), data, SIGKILL, {"--workers", "1", "--max-in-flight", "1"});
  ASSERT_TRUE(wait_for_owners(uri(), "sluice-parse", "doc_upload", 1));
  int64_t results_at_kill = -1;
  std::thread chaos([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (stored(uri(), "doc_results") < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.stop = true;
    b.thread.join();
    results_at_kill = stored(uri(), "doc_results");
    server_.stop();  // SIGTERM: Redis writes its AOF and exits
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
  EXPECT_GE(results_at_kill, 3);
  EXPECT_LT(results_at_kill, 305)
      << "worker b finished everything before it was killed: the fault hit nothing";
  expect_clean_run_equivalent(r, data);
  EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
}

}  // namespace
