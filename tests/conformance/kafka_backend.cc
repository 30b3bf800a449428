// The conformance fixture of the `kafka` backend: one librdkafka mock cluster (3 brokers on
// loopback, in this process) shared by every test, each test keeping to topics and groups of its
// own through name_suffix(). The mock lacks CreateTopics, so the fixture registers a topic creator
// for its bootstrap servers (kafka_queue.h). Timeouts are lowered through the URI, as a person
// would pass librdkafka properties. The session timeout is the one that counts: after a member
// leaves, the 2.0.2 mock holds the next rebalance for a whole session timeout, but it must stay
// above the mock's fixed 3 s first-join delay, or members expire while they wait to join.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conformance/backend.h"
#include "queue/kafka/kafka_queue.h"

namespace sluice::conformance {
namespace {

constexpr int kBrokers = 3;
constexpr const char* kParams =
    "?session.timeout.ms=4500&heartbeat.interval.ms=100&fetch.wait.max.ms=20&fetch.error.backoff.ms=20"
    "&reconnect.backoff.ms=20&retry.backoff.ms=20";

// The cluster lives as long as the test program: starting three brokers per test would cost more
// than the tests. A gtest environment destroys it after the last test (before static destructors,
// so librdkafka's globals are still there).
struct MockCluster {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* mcluster = nullptr;
  std::string bootstrap;
};

std::mutex mu;
MockCluster* cluster = nullptr;
pid_t cluster_pid = 0;  // the process that runs the cluster (a forked test child does not)

class MockClusterEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard lock(mu);
    if (cluster == nullptr || cluster_pid != ::getpid()) return;
    queue::kafka::register_topic_creator(cluster->bootstrap, nullptr);
    rd_kafka_mock_cluster_destroy(cluster->mcluster);
    rd_kafka_destroy(cluster->rk);
    delete cluster;
    cluster = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new MockClusterEnvironment);

// In a child forked by a multi-process test, under AddressSanitizer: glibc hands the stacks of the
// parent's threads (which do not exist in the child) to new threads, and librdkafka starts its
// threads with C11 thrd_create, which ASan does not intercept, so nothing clears the stale stack
// poisoning those stacks carry (the parent's watchdog thread was blocked in a frame with redzones):
// ASan then reports a stack-buffer-overflow inside clock_gettime in librdkafka's first thread.
// Starting and joining threads through pthread_create (which ASan intercepts and which clears the
// shadow of the stack it gets) first cleans the cached stacks. Not needed, and not done, otherwise.
void scrub_inherited_thread_stacks() {
#if defined(__SANITIZE_ADDRESS__)
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < 64; ++i)
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
    });
  go.store(true);
  for (auto& t : threads) t.join();
#endif
}

Result<MockCluster*> mock_cluster() {
  std::lock_guard lock(mu);
  if (cluster != nullptr) return cluster;
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);  // the dummy client has nothing to say
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) return Status::unsupported(std::string("cannot create librdkafka client: ") + err);
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, kBrokers);
  if (mc == nullptr) return Status::unsupported("librdkafka's mock cluster did not start");
  auto* c = new MockCluster{rk, mc, rd_kafka_mock_cluster_bootstraps(mc)};
  queue::kafka::register_topic_creator(
      c->bootstrap, [mc](std::string_view topic, int32_t partitions, int16_t replication) -> Status {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, std::string(topic).c_str(), partitions,
                                                           std::min<int>(replication, kBrokers));
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
          return Status::internal("mock cluster refused topic " + std::string(topic) + ": " +
                                  rd_kafka_err2str(e));
        return {};
      });
  cluster = c;
  cluster_pid = ::getpid();
  return cluster;
}

class KafkaBackend : public BackendFixture {
 public:
  Status set_up() override {
    SLUICE_ASSIGN_OR_RETURN(MockCluster * c, mock_cluster());
    static std::atomic<int> counter{0};
    suffix_ = "-k" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    uri_ = "kafka://" + c->bootstrap + kParams;
    return {};
  }
  Result<std::unique_ptr<queue::Queue>> open() override {
    if (::getpid() != cluster_pid) scrub_inherited_thread_stacks();
    return queue::open_queue(uri_);
  }
  void tear_down() override {}
  std::string name_suffix() const override { return suffix_; }

 private:
  std::string suffix_;
  std::string uri_;
};

[[maybe_unused]] const bool kRegistered =
    register_backend("kafka", [] { return std::make_unique<KafkaBackend>(); });

}  // namespace
}  // namespace sluice::conformance
