// The conformance fixture of the `amqp` backend: one real RabbitMQ broker per test process
// (Debian's rabbitmq-server on free loopback ports with a temporary directory;
// tests/support/rabbitmq_server.h), and an object-name prefix of its own for every test, so nothing
// one test declared is seen by another. The suite polls up to 6000 messages before it acks them,
// so the prefetch limit is raised above that (a worker acks as it goes and keeps the default 256).
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
  Status set_up() override {
    SLUICE_ASSIGN_OR_RETURN(testing::RabbitMqServer * s, shared_server());
    static std::atomic<int> counter{0};
    uri_ = s->uri("prefix=t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
                  "&max_message_bytes=1MiB&prefetch=10000");
    return {};
  }
  Result<std::unique_ptr<queue::Queue>> open() override { return queue::open_queue(uri_); }
  void tear_down() override {}

 private:
  std::string uri_;
};

[[maybe_unused]] const bool kRegistered =
    register_backend("amqp", [] { return std::make_unique<AmqpBackend>(); });

}  // namespace
}  // namespace sluice::conformance
