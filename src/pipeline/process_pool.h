// ProcessPool: runs work in child processes so that a crash, a hang or a memory blow-up on one
// document kills one child, not the worker (the parse stage runs its parsers here).
//
// The children are fresh programs (fork + exec of `program args...`, usually `sluice
// __parse-worker`), not forks of a threaded parent, so they start from a clean state. Parent and
// child speak length-prefixed frames over pipes: a new child first says it is ready (an empty
// frame), then for each request the parent writes the child answers with one response. The time
// budget starts when the request is written to a ready child, so a slow start (exec, the dynamic
// linker, an AddressSanitizer runtime, a loaded machine) is never charged to a document; a child
// that is not ready within `start_timeout` fails that call (retriable). A call that takes longer than
// `timeout` kills that child
// (ErrorClass::kResourceLimit); a child that dies mid-call (a crash) fails the call with kFatal naming
// the signal; either way the pool starts a replacement. Memory: each child runs under RLIMIT_AS =
// memory_limit, so an allocation past it fails inside the child, which answers kResourceLimit.
//
// Ownership: the pool owns its children and reaps them on destruction. Starting a pool sets SIGPIPE
// to ignored for the process, so a dead child's pipe is an error rather than a fatal signal.
// Thread-safety: call() is thread-safe; at most `size` calls run at once, others wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::pipeline {

struct ProcessPoolOptions {
  std::string program;            // absolute path of the child program
  std::vector<std::string> args;  // its arguments (argv[1..])
  size_t size = 2;
  std::chrono::milliseconds timeout{120000};       // per call, from the request on
  std::chrono::milliseconds start_timeout{60000};  // for a new child to say it is ready
  uint64_t memory_limit = 1ull << 30;              // bytes of address space per child; 0: no limit
  int nice = 0;  // the children's nice value (base/priority.h); 0: as the parent
};

class ProcessPool {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ProcessPool>> start(ProcessPoolOptions opts);
  ~ProcessPool();

  // Sends request to a free child and returns its response, or the child's reported error as it
  // reported it. The pool's own errors (no child, a timeout, a crash) are prefixed with context,
  // e.g. "parsing 'a.pdf'", since only the caller knows what the request was about.
  [[nodiscard]] Result<std::string> call(std::string_view request, std::string_view context = {});
  // Children started so far, replacements included (for tests and metrics).
  uint64_t spawned() const;

 private:
  struct Child;
  explicit ProcessPool(ProcessPoolOptions opts);
  Result<std::unique_ptr<Child>> spawn();
  void release(std::unique_ptr<Child> c);

  ProcessPoolOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Child>> idle_;
  size_t busy_ = 0;
  uint64_t spawned_ = 0;
};

// The child's side: says it is ready on stdout, then reads requests from stdin and answers each
// with handler's result on stdout, until stdin closes. An error result travels back as a Status with its
// class. Returns the exit code.
int serve_child(const std::function<Result<std::string>(std::string_view request)>& handler);

}  // namespace sluice::pipeline
