// RedisServer: a real Debian redis-server for a test, on a free loopback port with a temporary
// directory, append-only file on (appendfsync everysec, as a deployment that wants its queue to
// survive a restart runs it). stop()/start() restart it on the same port and directory, for the
// server-restart fault tests. The destructor kills it and removes the directory.
// Thread-safety: one owner thread.
#pragma once

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "base/status.h"
#include "support/child_server.h"

namespace sluice::testing {

class RedisServer {
 public:
  RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() {
    if (::getpid() != owner_) return;  // a forked child exiting: the server is its parent's
    kill_now(SIGKILL);
    if (!dir_.empty() && std::getenv("SLUICE_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Starts the server (the first time: on a new port and directory). Code::kUnsupported when
  // redis-server is not installed.
  [[nodiscard]] Status start() {
    if (::access("/usr/bin/redis-server", X_OK) != 0)
      return Status::unsupported("redis-server is not installed (scripts/setup.sh installs it)");
    if (dir_.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern =
          std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-redis-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) return Status::io_error("mkdtemp " + pattern);
      dir_ = pattern;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (port_ == 0 || attempt > 0) port_ = free_loopback_port();
      pid_ = ::fork();
      if (pid_ < 0) return Status::io_error("fork for redis-server");
      if (pid_ == 0) {
        std::vector<std::string> args = {"redis-server",
                                         "--port",
                                         std::to_string(port_),
                                         "--bind",
                                         "127.0.0.1",
                                         "--dir",
                                         dir_,
                                         "--appendonly",
                                         "yes",
                                         "--appendfsync",
                                         "everysec",
                                         "--save",
                                         "",
                                         "--daemonize",
                                         "no",
                                         "--loglevel",
                                         "warning",
                                         "--logfile",
                                         dir_ + "/redis.log"};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv("/usr/bin/redis-server", argv.data());
        ::_exit(127);
      }
      if (wait_ready()) return {};
      kill_now(SIGKILL);
      if (restarting_) break;  // the port must stay the same; retrying elsewhere would not help
    }
    return Status::unavailable("redis-server did not answer on 127.0.0.1:" + std::to_string(port_) +
                               " (log in " + dir_ + "/redis.log)");
  }

  // Stops the server: SIGTERM (it writes its AOF and exits) or SIGKILL (a crash).
  void stop(bool crash = false) {
    kill_now(crash ? SIGKILL : SIGTERM);
    restarting_ = true;
  }

  // More redis-server arguments (e.g. {"--requirepass", "pw"}); set before start().
  std::vector<std::string> extra_args;

  int port() const { return port_; }
  std::string uri(const std::string& query = "") const {
    return "redis://127.0.0.1:" + std::to_string(port_) + (query.empty() ? "" : "?" + query);
  }
  const std::string& dir() const { return dir_; }

 private:
  bool wait_ready() {
    return wait_child_ready(
        &pid_, std::chrono::seconds(20),
        [this] {
          timeval tv{1, 0};
          redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
          bool ok = false;
          if (c != nullptr && c->err == 0) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
            // PONG, or NOAUTH from a server started with --requirepass: either way it answers
            // (not "LOADING": the AOF was read back).
            ok = r != nullptr &&
                 ((r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG") ||
                  (r->type == REDIS_REPLY_ERROR && std::string(r->str, r->len).starts_with("NOAUTH")));
            if (r != nullptr) freeReplyObject(r);
          }
          if (c != nullptr) redisFree(c);
          return ok;
        },
        std::chrono::milliseconds(20));
  }

  void kill_now(int sig) {
    if (pid_ <= 0 || ::getpid() != owner_) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool restarting_ = false;
  pid_t owner_ = ::getpid();
};

}  // namespace sluice::testing
