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
#include "support/child_server.h"

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

  explicit S3rver(std::string bucket = "sluice-test")
      : bucket_(std::move(bucket)),
        server_({.name = "s3rver",
                 .program = program(),
                 .args =
                     [this](const std::string& data, int port) {
                       return std::vector<std::string>{
                           "--directory",        data,       "--address",          "127.0.0.1", "--port",
                           std::to_string(port), "--silent", "--configure-bucket", bucket_};
                     },
                 // s3rver's ListObjectsV2 continuation tokens are DES-encrypted, which Node's OpenSSL
                 // 3 has only in its legacy provider; without it every truncated listing is a 500.
                 .env = {{"NODE_OPTIONS", "--openssl-legacy-provider"}},
                 // Ready when it answers an HTTP request (it makes the bucket before it listens).
                 .ready = [](int port) { return http_answers(port); }}) {}
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  // The s3rver program that `npm ci` installs in the source tree (scripts/setup.sh runs it).
  static std::string program() { return std::string(SLUICE_SOURCE_DIR) + "/node_modules/.bin/s3rver"; }
  static bool installed() { return ::access(program().c_str(), X_OK) == 0; }

  // Starts the server. Code::kUnsupported when s3rver is not installed.
  [[nodiscard]] Status start() { return server_.start(); }

  int port() const { return server_.port(); }
  const std::string& bucket() const { return bucket_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // "s3://BUCKET/PREFIX?endpoint=..." (plus more query parameters when given).
  std::string uri(const std::string& prefix, const std::string& query = "") const {
    return "s3://" + bucket_ + (prefix.empty() ? "" : "/" + prefix) + "?endpoint=" + endpoint() +
           (query.empty() ? "" : "&" + query);
  }
  const std::string& dir() const { return server_.dir(); }
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
  const std::string bucket_;  // before server_, whose arguments name it
  ChildServer server_;
};

inline Result<std::unique_ptr<store::BlobStore>> S3rver::open_store(const std::string& prefix) const {
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", kAccessKey}, {"AWS_SECRET_ACCESS_KEY", kSecretKey}});
  return store::open_blob_store(uri(prefix));
}

}  // namespace sluice::testing
