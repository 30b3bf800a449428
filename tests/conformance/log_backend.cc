// The conformance fixture of the embedded `log` backend: every test gets a fresh temp directory
// and opens it as "log:DIR", the way `sluice --queue log:DIR` does.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "base/env.h"
#include "conformance/backend.h"

namespace sluice::conformance {
namespace {

class LogBackend : public BackendFixture {
 public:
  Status set_up() override {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-conformance-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) return errno_status("mkdtemp", pattern, errno);
    dir_ = pattern;
    return {};
  }

  Result<std::unique_ptr<queue::Queue>> open() override { return queue::open_queue("log:" + dir_); }

  void tear_down() override {
    // SLUICE_KEEP_TEST_DIRS keeps the data for a post-mortem of a failed run.
    if (dir_.empty() || std::getenv("SLUICE_KEEP_TEST_DIRS") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  std::string dir_;
};

[[maybe_unused]] const bool kRegistered =
    register_backend("log", [] { return std::make_unique<LogBackend>(); });

}  // namespace
}  // namespace sluice::conformance
