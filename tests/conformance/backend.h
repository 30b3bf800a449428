// BackendFixture: how the conformance suite gets a queue backend to test. One fixture per backend
// (log_backend.cc today; kafka, redis and amqp later), registered by name at static-init time; the
// suite in conformance_test.cc runs once per registered name and never mentions a backend itself.
//
// Life of a fixture in one test: set_up() prepares an empty backend (a temp dir, a fresh server
// namespace), open() hands out Queue handles on it -- called again after the previous handle is
// destroyed for restart tests, or in a forked child for multi-process tests -- and tear_down()
// removes what set_up() made.
// Thread-safety: one fixture belongs to one test; open() may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::conformance {

class BackendFixture {
 public:
  virtual ~BackendFixture() = default;

  // Prepares an empty backend for one test. Code::kUnsupported means "cannot run here" (a server
  // binary is missing, say): the suite skips the test with the message instead of failing it.
  [[nodiscard]] virtual Status set_up() = 0;
  // A new Queue handle on the backend set_up() prepared; what earlier handles stored (and
  // committed) is visible through it when the backend is persistent.
  [[nodiscard]] virtual Result<std::unique_ptr<queue::Queue>> open() = 0;
  // Removes what set_up() made. Every Queue handle is destroyed before this is called.
  virtual void tear_down() = 0;
  // Appended to every topic and group name a test uses, so backends whose tests share one server
  // (a Kafka cluster, say) keep the tests apart. Empty when every test has a backend of its own.
  virtual std::string name_suffix() const { return {}; }
};

using BackendFactory = std::function<std::unique_ptr<BackendFixture>()>;

// Registers a backend under name; returns true so it can initialise a namespace-scope constant.
bool register_backend(std::string name, BackendFactory factory);
// The registered names, sorted (the suite's parameter values).
std::vector<std::string> registered_backends();
// A new fixture for a registered name; nullptr when the name is unknown.
std::unique_ptr<BackendFixture> make_backend(std::string_view name);

}  // namespace sluice::conformance
