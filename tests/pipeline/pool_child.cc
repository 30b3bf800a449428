// The child program of the process-pool tests: answers "echo X" with X, and misbehaves on command
// ("hang", "crash", "alloc N" bytes, "fail" with a bad-input error, "exit"). Before it serves,
// POOL_CHILD_START_MS makes it slow to start and POOL_CHILD_EXIT_AT_START makes it exit with 4.
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/process_pool.h"

int main() {
  if (const char* ms = std::getenv("POOL_CHILD_START_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
  if (std::getenv("POOL_CHILD_EXIT_AT_START") != nullptr) return 4;
  return sluice::pipeline::serve_child([](std::string_view req) -> sluice::Result<std::string> {
    if (req.starts_with("echo ")) return std::string(req.substr(5));
    if (req == "hang") {
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (req == "crash") std::raise(SIGSEGV);
    if (req == "exit") std::exit(3);
    if (req == "fail") return sluice::Status::invalid_argument("this input is bad");
    if (req.starts_with("alloc ")) {
      size_t n = std::stoull(std::string(req.substr(6)));
      std::vector<char> big(n);  // throws std::bad_alloc past the memory budget
      std::memset(big.data(), 1, big.size());
      return std::to_string(big.size());
    }
    return sluice::Status::invalid_argument("unknown request");
  });
}
