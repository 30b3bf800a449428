// The conformance fixture of the `redis` backend: one real redis-server per test process (Debian's,
// on a free loopback port, AOF on; tests/support/redis_server.h), and a key prefix of its own for
// every test, so nothing one test wrote is seen by another. The session timeout is lowered through
// the URI, as a person would set it, so a member that vanished without leaving is replaced quickly.
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "conformance/backend.h"
#include "support/redis_server.h"

namespace sluice::conformance {
namespace {

Result<testing::RedisServer*> shared_server() {
  static testing::RedisServer* server = nullptr;
  static Status started;
  static bool tried = false;
  if (!tried) {
    tried = true;
    static testing::RedisServer instance;
    started = instance.start();
    if (started.is_ok()) server = &instance;
  }
  if (server == nullptr) return started;
  return server;
}

class RedisBackend : public BackendFixture {
 public:
  Status set_up() override {
    SLUICE_ASSIGN_OR_RETURN(testing::RedisServer * s, shared_server());
    static std::atomic<int> counter{0};
    uri_ = s->uri("prefix=t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
                  "&session_timeout_ms=3000&max_message_bytes=1MiB");
    return {};
  }
  Result<std::unique_ptr<queue::Queue>> open() override { return queue::open_queue(uri_); }
  void tear_down() override {}

 private:
  std::string uri_;
};

[[maybe_unused]] const bool kRegistered =
    register_backend("redis", [] { return std::make_unique<RedisBackend>(); });

}  // namespace
}  // namespace sluice::conformance
