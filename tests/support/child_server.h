// What the tests' server helpers (redis_server.h, s3rver.h, chroma_server.h) share: a free
// loopback port, whether an HTTP server answers on one, and waiting for a child server process to
// be ready (or to die trying).
// Thread-safety: free functions without shared state.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

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

// Whether GET `path` on 127.0.0.1:port gets an HTTP status line back (any status).
inline bool http_answers(int port, const std::string& path = "/") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[16] = {0};
    ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()) &&
         ::recv(fd, buf, 8, MSG_WAITALL) == 8 && std::string(buf, 5) == "HTTP/";
  }
  ::close(fd);
  return ok;
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

}  // namespace sluice::testing
