// ChromaServer: a real Chroma server (the npm package chromadb's `chroma run`, the Rust server of
// Chroma 1.0.x through its native bindings) for a test or a benchmark, on a free loopback port
// with a temporary persistence directory. start() waits until /api/v2/heartbeat answers 200;
// stop() and the destructor kill it (SIGKILL: a test server holds nothing worth a clean shutdown)
// and the destructor removes the directory. The server checks no token: Chroma 1.0 leaves
// authentication to a proxy in front of it.
// Thread-safety: one owner thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "base/status.h"

namespace sluice::testing {

class ChromaServer {
 public:
  ChromaServer() = default;
  ChromaServer(const ChromaServer&) = delete;
  ChromaServer& operator=(const ChromaServer&) = delete;
  ~ChromaServer() {
    if (::getpid() != owner_) return;  // a forked child exiting: the server is its parent's
    stop();
    if (!dir_.empty() && std::getenv("SLUICE_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // The `chroma` program that `npm ci` installs in the source tree (scripts/setup.sh runs it).
  static std::string program() { return std::string(SLUICE_SOURCE_DIR) + "/node_modules/.bin/chroma"; }
  static bool installed() { return ::access(program().c_str(), X_OK) == 0; }

  // Starts the server. Code::kUnsupported when chroma is not installed.
  [[nodiscard]] Status start() {
    if (!installed()) return Status::unsupported(program() + " is missing (run npm ci in the source tree)");
    if (dir_.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern =
          std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-chroma-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) return Status::io_error("mkdtemp " + pattern);
      dir_ = pattern;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      pid_ = ::fork();
      if (pid_ < 0) return Status::io_error("fork for chroma");
      if (pid_ == 0) {
        int log = ::open((dir_ + "/chroma.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
          ::dup2(log, 1);
          ::dup2(log, 2);
        }
        std::vector<std::string> args = {program(), "run",       "--path", dir_ + "/data",
                                         "--host",  "127.0.0.1", "--port", std::to_string(port_)};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
      }
      if (wait_ready()) return {};
      stop();
    }
    return Status::unavailable("chroma did not answer on 127.0.0.1:" + std::to_string(port_) + " (log in " +
                               dir_ + "/chroma.log)");
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
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // "chroma://127.0.0.1:PORT/COLLECTION[?query]".
  std::string uri(const std::string& collection, const std::string& query = "") const {
    return "chroma://127.0.0.1:" + std::to_string(port_) + "/" + collection +
           (query.empty() ? "" : "?" + query);
  }
  const std::string& dir() const { return dir_; }

  // A loopback port that was free a moment ago (nothing listens there once this returns).
  static int free_port() {
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

 private:
  // Ready when GET /api/v2/heartbeat answers 200 (the server has opened its database by then).
  bool wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // exited: the port was taken, say
      }
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = false;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const std::string req =
            "GET /api/v2/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        char buf[16] = {0};
        ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()) &&
             ::recv(fd, buf, 12, MSG_WAITALL) == 12 && std::strncmp(buf + 9, "200", 3) == 0;
      }
      ::close(fd);
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t owner_ = ::getpid();
};

}  // namespace sluice::testing
