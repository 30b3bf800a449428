// An HTTP server on a loopback port for tests of sluice's HTTP clients (tests/store/http_client,
// the embedders, ...): cpp-httplib's Server in a thread of its own. Register handlers on server()
// before start(); the port is the kernel's choice (bind_to_any_port), so tests never collide.
// Thread-safety: handlers run on the server's threads; give them atomics or a mutex.
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace sluice::testing {

class HttpTestServer {
 public:
  HttpTestServer() = default;
  ~HttpTestServer() { stop(); }
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  httplib::Server& server() { return server_; }

  // Binds 127.0.0.1 on a free port and serves until stop(). False when binding failed.
  bool start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
    // The socket listens from bind on; stop() only works once the accept loop runs, so wait for it.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace sluice::testing
