// What the tests' server helpers (redis_server.h, s3rver.h, chroma_server.h) share: a free
// loopback port, what an HTTP server answers on one, waiting for a child server process to be
// ready (or to die trying), and ChildServer, which runs a server program on a free port with a
// temporary directory and its log there.
// Thread-safety: the free functions have no shared state; a ChildServer has one owner thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::testing {

// A loopback port that was free a moment ago (nothing listens there once this returns).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The HTTP status GET `path` on 127.0.0.1:port gets back, or 0 when nothing answers.
inline int http_status(int port, const std::string& path = "/") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[16] = {0};  // "HTTP/1.1 200 ..."
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()) &&
        ::recv(fd, buf, 12, MSG_WAITALL) == 12 && std::strncmp(buf, "HTTP/", 5) == 0) {
      status = std::atoi(buf + 9);
    }
  }
  ::close(fd);
  return status;
}

// Whether an HTTP server answers GET `path` on 127.0.0.1:port (any status).
inline bool http_answers(int port, const std::string& path = "/") {
  return http_status(port, path) != 0;
}

// Polls ready() until it is true (returns true), the child *pid exits (false, *pid = -1: the port
// was taken, say) or the timeout passes (false).
inline bool wait_child_ready(pid_t* pid, std::chrono::milliseconds timeout,
                             const std::function<bool()>& ready,
                             std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = -1;
      return false;
    }
    if (ready()) return true;
    std::this_thread::sleep_for(every);
  }
  return false;
}

// A server program run as a child of the test: a temporary directory (removed at the end unless
// SLUICE_KEEP_TEST_DIRS is set) holding its log and a data/ directory for its files, a free loopback port
// (another one tried when the first is taken), readiness by a probe, SIGKILL at stop (a test server holds
// nothing worth a clean shutdown). S3rver and ChromaServer are this with their program's arguments.
class ChildServer {
 public:
  struct Spec {
    std::string name;     // "s3rver": the temp directory's prefix, the log's name, messages
    std::string program;  // an absolute path
    // The program's arguments after its name, given the data directory and the port.
    std::function<std::vector<std::string>(const std::string& data_dir, int port)> args;
    std::vector<std::pair<std::string, std::string>> env;  // set in the child only
    std::function<bool(int port)> ready;
    std::chrono::milliseconds ready_timeout{30000};
  };

  explicit ChildServer(Spec spec) : spec_(std::move(spec)) {}
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;
  ~ChildServer() {
    if (::getpid() != owner_) return;  // a forked child exiting: the server is its parent's
    stop();
    if (!dir_.empty() && std::getenv("SLUICE_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  bool installed() const { return ::access(spec_.program.c_str(), X_OK) == 0; }

  // Starts the program and waits until it is ready. Code::kUnsupported when it is not installed.
  [[nodiscard]] Status start() {
    if (!installed())
      return Status::unsupported(spec_.program + " is missing (run npm ci in the source tree)");
    if (dir_.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern =
          std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-" + spec_.name + "-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) return Status::io_error("mkdtemp " + pattern);
      dir_ = pattern;
      std::error_code ec;
      std::filesystem::create_directories(data_dir(), ec);
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      std::vector<std::string> args = spec_.args(data_dir(), port_);
      args.insert(args.begin(), spec_.program);
      pid_ = ::fork();
      if (pid_ < 0) return Status::io_error("fork for " + spec_.name);
      if (pid_ == 0) {
        int log = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
          ::dup2(log, 1);
          ::dup2(log, 2);
        }
        for (const auto& [k, v] : spec_.env) ::setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
      }
      if (wait_child_ready(&pid_, spec_.ready_timeout, [this] { return spec_.ready(port_); })) return {};
      stop();
    }
    return Status::unavailable(spec_.name + " did not answer on 127.0.0.1:" + std::to_string(port_) +
                               " (log in " + log_path() + ")");
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // <dir>/data, made at start: where the program keeps its files.
  std::string data_dir() const { return dir_ + "/data"; }
  std::string log_path() const { return dir_ + "/" + spec_.name + ".log"; }

 private:
  const Spec spec_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t owner_ = ::getpid();
};

}  // namespace sluice::testing
