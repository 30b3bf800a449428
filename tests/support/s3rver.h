// S3rver: the npm package s3rver (an S3 REST server keeping objects on the local disk) for a test,
// on a free loopback port with a temporary directory and one bucket made at start. It accepts the
// access key S3RVER (secret S3RVER). The destructor kills it and removes the directory.
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
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/blob_store.h"
#include "support/ports.h"

namespace sluice::testing {

// Sets environment variables for a scope (nullptr unsets one) and puts the old values back.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
      if (value == nullptr) {
        ::unsetenv(name);
      } else {
        ::setenv(name, value, 1);
      }
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class S3rver {
 public:
  static constexpr const char* kAccessKey = "S3RVER";
  static constexpr const char* kSecretKey = "S3RVER";

  explicit S3rver(std::string bucket = "sluice-test") : bucket_(std::move(bucket)) {}
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;
  ~S3rver() {
    if (::getpid() != owner_) return;  // a forked child exiting: the server is its parent's
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (!dir_.empty() && std::getenv("SLUICE_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // The s3rver program that `npm ci` installs in the source tree (scripts/setup.sh runs it).
  static std::string program() { return std::string(SLUICE_SOURCE_DIR) + "/node_modules/.bin/s3rver"; }
  static bool installed() { return ::access(program().c_str(), X_OK) == 0; }

  // Starts the server. Code::kUnsupported when s3rver is not installed.
  [[nodiscard]] Status start() {
    if (!installed()) return Status::unsupported(program() + " is missing (run npm ci in the source tree)");
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-s3rver-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return Status::io_error("mkdtemp " + pattern);
    dir_ = pattern;
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/data", ec);
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      pid_ = ::fork();
      if (pid_ < 0) return Status::io_error("fork for s3rver");
      if (pid_ == 0) {
        int log = ::open((dir_ + "/s3rver.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
          ::dup2(log, 1);
          ::dup2(log, 2);
        }
        std::vector<std::string> args = {
            program(), "--directory",         dir_ + "/data", "--address",          "127.0.0.1",
            "--port",  std::to_string(port_), "--silent",     "--configure-bucket", bucket_};
        // s3rver's ListObjectsV2 continuation tokens are DES-encrypted, which Node's OpenSSL 3
        // has only in its legacy provider; without it every truncated listing is a 500.
        ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
      }
      if (wait_ready()) return {};
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
      }
    }
    return Status::unavailable("s3rver did not answer on 127.0.0.1:" + std::to_string(port_) + " (log in " +
                               dir_ + "/s3rver.log)");
  }

  int port() const { return port_; }
  const std::string& bucket() const { return bucket_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // "s3://BUCKET/PREFIX?endpoint=..." (plus more query parameters when given).
  std::string uri(const std::string& prefix, const std::string& query = "") const {
    return "s3://" + bucket_ + (prefix.empty() ? "" : "/" + prefix) + "?endpoint=" + endpoint() +
           (query.empty() ? "" : "&" + query);
  }
  const std::string& dir() const { return dir_; }
  // What a `sluice` child needs to reach the server: its credentials and endpoint.
  std::vector<std::pair<std::string, std::string>> sluice_env() const {
    return {{"AWS_ACCESS_KEY_ID", kAccessKey},
            {"AWS_SECRET_ACCESS_KEY", kSecretKey},
            {"SLUICE_S3_ENDPOINT", endpoint()}};
  }
  // The test's own store on the bucket (under prefix), for putting and checking objects.
  [[nodiscard]] Result<std::unique_ptr<store::BlobStore>> open_store(const std::string& prefix = "") const;

  // One started server for all the tests of a process (each test uses a key prefix of its own);
  // killed at exit. Code::kUnsupported when s3rver is not installed.
  static Result<S3rver*> shared() {
    static std::unique_ptr<S3rver> server;
    if (server == nullptr) {
      auto s = std::make_unique<S3rver>();
      SLUICE_RETURN_IF_ERROR(s->start());
      server = std::move(s);
    }
    return server.get();
  }

 private:
  // Ready when it answers an HTTP request (it makes the bucket before it listens).
  bool wait_ready() {
    return wait_child_ready(&pid_, std::chrono::seconds(30), [this] { return http_answers(port_); });
  }

  std::string bucket_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t owner_ = ::getpid();
};

inline Result<std::unique_ptr<store::BlobStore>> S3rver::open_store(const std::string& prefix) const {
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", kSecretKey}});
  return store::open_blob_store(uri(prefix));
}

}  // namespace sluice::testing
