// ChromaServer: a real Chroma server (the npm package chromadb's `chroma run`, the Rust server of
// Chroma 1.0.x through its native bindings) for a test or a benchmark, on a free loopback port
// with a temporary persistence directory. start() waits until /api/v2/heartbeat answers 200;
// stop() and the destructor kill it (SIGKILL: a test server holds nothing worth a clean shutdown)
// and the destructor removes the directory. The server checks no token: Chroma 1.0 leaves
// authentication to a proxy in front of it.
// Thread-safety: one owner thread.
#pragma once

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/status.h"
#include "support/child_server.h"

namespace sluice::testing {

class ChromaServer {
 public:
  ChromaServer()
      : server_({.name = "chroma",
                 .program = program(),
                 .args =
                     [](const std::string& data, int port) {
                       return std::vector<std::string>{
                           "run", "--path", data, "--host", "127.0.0.1", "--port", std::to_string(port)};
                     },
                 // Ready when GET /api/v2/heartbeat answers 200 (the database is open by then).
                 .ready = [](int port) { return http_status(port, "/api/v2/heartbeat") == 200; },
                 .ready_timeout = std::chrono::seconds(60)}) {}
  ChromaServer(const ChromaServer&) = delete;
  ChromaServer& operator=(const ChromaServer&) = delete;

  // The `chroma` program that `npm ci` installs in the source tree (scripts/setup.sh runs it).
  static std::string program() { return std::string(SLUICE_SOURCE_DIR) + "/node_modules/.bin/chroma"; }
  static bool installed() { return ::access(program().c_str(), X_OK) == 0; }

  // Starts the server (again after stop(), on the same data). Code::kUnsupported when chroma is not
  // installed.
  [[nodiscard]] Status start() { return server_.start(); }
  void stop() { server_.stop(); }

  int port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // "chroma://127.0.0.1:PORT/COLLECTION[?query]".
  std::string uri(const std::string& collection, const std::string& query = "") const {
    return "chroma://127.0.0.1:" + std::to_string(port()) + "/" + collection +
           (query.empty() ? "" : "?" + query);
  }
  const std::string& dir() const { return server_.dir(); }

 private:
  ChildServer server_;
};

}  // namespace sluice::testing
