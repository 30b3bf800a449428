#include "pipeline/process_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "base/clock.h"
#include "base/log.h"

namespace sluice::pipeline {
namespace {

// Frame: u32 length (little-endian), then a one-byte kind (0 ok, else an ErrorClass), then bytes.
constexpr uint32_t kMaxFrame = 1u << 30;

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Reads exactly n bytes, waiting until deadline (steady clock ms; -1 = forever).
// Returns 1 on success, 0 on EOF, -1 on error, -2 on timeout.
int read_exact(int fd, char* buf, size_t n, int64_t deadline_ms) {
  while (n) {
    if (deadline_ms >= 0) {
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count();
      if (now >= deadline_ms) return -2;
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(deadline_ms - now, 1000)));
      if (r < 0 && errno != EINTR) return -1;
      if (r <= 0) continue;
    }
    ssize_t r = ::read(fd, buf, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return 0;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return 1;
}

bool write_frame(int fd, uint8_t kind, std::string_view body) {
  char hdr[5];
  uint32_t len = static_cast<uint32_t>(body.size());
  std::memcpy(hdr, &len, 4);
  hdr[4] = static_cast<char>(kind);
  return write_all(fd, hdr, 5) && write_all(fd, body.data(), body.size());
}

int64_t steady_ms_after(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch() + d)
      .count();
}

// "was killed by signal 11 (Segmentation fault)" or "exited with status 3", from waitpid's status.
std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           std::string(strsignal(WTERMSIG(status))) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

struct ProcessPool::Child {
  pid_t pid = -1;
  int to_child = -1;
  int from_child = -1;
  bool ready = false;  // its ready frame has been read
  ~Child() {
    if (to_child >= 0) ::close(to_child);
    if (from_child >= 0) ::close(from_child);
    if (pid > 0) {
      // Closing stdin lets a healthy child exit; one that does not is killed.
      int status;
      for (int i = 0; i < 50; ++i) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return;
        ::usleep(2000);
      }
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  // Waits for the ready frame a new child sends before its first request.
  Status wait_ready(std::chrono::milliseconds start_timeout) {
    char hdr[5];
    const int r = read_exact(from_child, hdr, 5, steady_ms_after(start_timeout));
    if (r == -2) {
      kill_and_reap();
      return Status::timeout("the worker process did not start within " + format_duration(start_timeout) +
                             " (the machine may be overloaded)");
    }
    if (r != 1) {
      const int status = kill_and_reap();
      return Status::internal("the worker process " + how_it_ended(status) + " before it was ready");
    }
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    if (len != 0 || hdr[4] != 0) {
      kill_and_reap();
      return Status::internal(
          "the worker process sent something else than its ready frame (is it a "
          "serve_child program?)");
    }
    ready = true;
    return Status::ok();
  }
  // Kills the child now and returns how it ended.
  int kill_and_reap() {
    int status = 0;
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      pid = -1;
    }
    return status;
  }
};

ProcessPool::ProcessPool(ProcessPoolOptions opts) : opts_(std::move(opts)) {}

ProcessPool::~ProcessPool() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return busy_ == 0; });
  idle_.clear();
}

Result<std::unique_ptr<ProcessPool>> ProcessPool::start(ProcessPoolOptions opts) {
  if (opts.size == 0) return Status::invalid_argument("a process pool needs at least one child");
  if (::access(opts.program.c_str(), X_OK) != 0) {
    return Status::invalid_argument("process pool program '" + opts.program + "' is not executable");
  }
  // A child that died while idle must show up as a failed write (EPIPE), not kill the parent.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<ProcessPool> pool(new ProcessPool(std::move(opts)));
  for (size_t i = 0; i < pool->opts_.size; ++i) {
    SLUICE_ASSIGN_OR_RETURN(auto c, pool->spawn());
    pool->idle_.push_back(std::move(c));
  }
  return pool;
}

uint64_t ProcessPool::spawned() const {
  std::lock_guard<std::mutex> l(mu_);
  return spawned_;
}

Result<std::unique_ptr<ProcessPool::Child>> ProcessPool::spawn() {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0)
    return Status::resource_limit(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return Status::resource_limit(std::string("pipe: ") + std::strerror(errno));
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argv_s;
  argv_s.push_back(opts_.program);
  for (const auto& a : opts_.args) argv_s.push_back(a);
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  rlimit lim{opts_.memory_limit, opts_.memory_limit};
  const bool limit = opts_.memory_limit > 0;
  const int nice = opts_.nice;
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return Status::resource_limit(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    // A process group of its own: Ctrl-C on the terminal reaches the parent, which stops cleanly,
    // and not the children in the middle of a document (they end when their stdin closes).
    ::setpgid(0, 0);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    if (limit) ::setrlimit(RLIMIT_AS, &lim);
    if (nice > 0) ::setpriority(PRIO_PROCESS, 0, nice);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  auto c = std::make_unique<Child>();
  c->pid = pid;
  c->to_child = in[1];
  c->from_child = out[0];
  std::lock_guard<std::mutex> l(mu_);
  ++spawned_;
  return c;
}

void ProcessPool::release(std::unique_ptr<Child> c) {
  std::lock_guard<std::mutex> l(mu_);
  if (c) idle_.push_back(std::move(c));
  --busy_;
  cv_.notify_all();
}

Result<std::string> ProcessPool::call(std::string_view request, std::string_view context) {
  std::unique_ptr<Child> c;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !idle_.empty() || busy_ + idle_.size() < opts_.size; });
    ++busy_;
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!c) {
    auto s = spawn();
    if (!s.is_ok()) {
      release(nullptr);
      return context.empty() ? s.status() : s.status().with_context(std::string(context));
    }
    c = std::move(s).value();
  }
  // The child is replaced after anything but a clean answer.
  auto replace = [&](Status st) -> Result<std::string> {
    if (!context.empty()) st = st.with_context(std::string(context));
    c.reset();
    auto fresh = spawn();
    if (!fresh.is_ok())
      sluice::log::error("process pool cannot replace a child", {{"error", fresh.status().to_string()}});
    release(fresh.is_ok() ? std::move(fresh).value() : nullptr);
    return st;
  };
  if (!c->ready) {
    Status st = c->wait_ready(opts_.start_timeout);
    if (!st.is_ok()) return replace(std::move(st));
  }
  if (!write_frame(c->to_child, 0, request)) {
    int status = c->kill_and_reap();
    return replace(Status::internal("child process exited before taking the request (status " +
                                    std::to_string(status) + ")"));
  }
  const int64_t deadline = steady_ms_after(opts_.timeout);
  char hdr[5];
  int r = read_exact(c->from_child, hdr, 5, deadline);
  std::string body;
  if (r == 1) {
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    if (len > kMaxFrame) {
      c->kill_and_reap();
      return replace(Status::internal("child process sent a frame of " + std::to_string(len) + " bytes"));
    }
    body.resize(len);
    r = read_exact(c->from_child, body.data(), len, deadline);
  }
  if (r == -2) {
    c->kill_and_reap();
    return replace(Status::resource_limit("took longer than the time budget of " +
                                          format_duration(opts_.timeout) +
                                          "; the worker process was stopped"));
  }
  if (r != 1) {
    const int status = c->kill_and_reap();
    return replace(Status(ErrorClass::kFatal, Code::kInternal,
                          "the worker process " + how_it_ended(status) + " on this input"));
  }
  release(std::move(c));
  auto kind = static_cast<uint8_t>(hdr[4]);
  if (kind == 0) return body;
  auto cls = static_cast<ErrorClass>(kind);
  if (cls < ErrorClass::kRetriable || cls > ErrorClass::kFatal) cls = ErrorClass::kFatal;
  return Status(cls, cls == ErrorClass::kResourceLimit ? Code::kTooLarge : Code::kInternal, body);
}

int serve_child(const std::function<Result<std::string>(std::string_view)>& handler) {
  if (!write_frame(1, 0, {})) return 1;  // ready: the parent starts the first request's budget now
  std::string req;
  for (;;) {
    char hdr[5];
    int r = read_exact(0, hdr, 5, -1);
    if (r != 1) return r == 0 ? 0 : 1;
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    if (len > kMaxFrame) return 1;
    req.resize(len);
    if (read_exact(0, req.data(), len, -1) != 1) return 1;
    Result<std::string> res = Status::internal("no answer");
    try {
      res = handler(req);
    } catch (const std::bad_alloc&) {
      res = Status::resource_limit("ran out of memory (the worker process's memory budget)");
    } catch (const std::exception& e) {
      res = Status::internal(std::string("unexpected error: ") + e.what());
    }
    bool ok = res.is_ok()
                  ? write_frame(1, 0, *res)
                  : write_frame(1, static_cast<uint8_t>(res.status().error_class()), res.status().message());
    if (!ok) return 1;
  }
}

}  // namespace sluice::pipeline
