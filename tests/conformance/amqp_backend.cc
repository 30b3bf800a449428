// The conformance fixture of the `amqp` backend: one real RabbitMQ broker per test process
// (Debian's rabbitmq-server on free loopback ports with a temporary directory;
// tests/support/rabbitmq_server.h), and an object-name prefix of its own for every test, so nothing
// one test declared is seen by another. The suite polls up to 6000 messages before it acks them,
// so the prefetch limit is raised above that (a worker acks as it goes and keeps the default 256);
// on quorum queues it is shared out among a consumer's queues, so there it is the most it can be.
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "conformance/backend.h"
#include "support/rabbitmq_server.h"

namespace sluice::conformance {
namespace {

Result<testing::RabbitMqServer*> shared_server() {
  static testing::RabbitMqServer* server = nullptr;
  static Status started;
  static bool tried = false;
  if (!tried) {
    tried = true;
    static testing::RabbitMqServer instance;
    started = instance.start();
    if (started.is_ok()) server = &instance;
  }
  if (server == nullptr) return started;
  return server;
}

class AmqpBackend : public BackendFixture {
 public:
  explicit AmqpBackend(std::string settings) : settings_(std::move(settings)) {}
  Status set_up() override {
    SLUICE_ASSIGN_OR_RETURN(testing::RabbitMqServer * s, shared_server());
    static std::atomic<int> counter{0};
    uri_ = s->uri("prefix=t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
                  "&max_message_bytes=1MiB" + settings_);
    return {};
  }
  Result<std::unique_ptr<queue::Queue>> open() override { return queue::open_queue(uri_); }
  void tear_down() override {}

 private:
  const std::string settings_;
  std::string uri_;
};

[[maybe_unused]] const bool kRegistered =
    register_backend("amqp", [] { return std::make_unique<AmqpBackend>("&prefetch=10000"); });
// The same on quorum queues (Raft-replicated, the type RabbitMQ recommends for durable work queues).
[[maybe_unused]] const bool kRegisteredQuorum = register_backend(
    "amqp_quorum", [] { return std::make_unique<AmqpBackend>("&queue_type=quorum&prefetch=65535"); });

}  // namespace
}  // namespace sluice::conformance
