// The HTTP service of `sluice serve` (docs/http_api.md): uploads go to the blob store and become
// tasks on doc_upload before the answer; status comes from the StatusStore that a StatusFollower
// keeps up to date from the topics; search uses the pipeline's index and embedder; /metrics shows
// the stages, the queue and the HTTP layer in Prometheus' text format; `/` is the dashboard.
//
// Errors never leave as exceptions: each handler returns a Status, which becomes a JSON error with
// its class and an HTTP status (bad input 400/404/413, resource limit 429 with Retry-After,
// retriable 503, fatal 500); the HTTP library's own refusals (413, malformed requests) get the same
// JSON shape.
//
// Ownership: the Server borrows the queue and the pipeline (both must outlive it) and owns the HTTP
// listener, the status store and follower, the uploads' producer and the metrics.
// Thread-safety: open/start/stop from one thread; requests are served on the HTTP thread pool.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/property.h"
#include "pipeline/pipeline.h"
#include "queue/queue.h"

namespace sluice::server {

// The server's settings (one table: flags, environment, --help and docs/CONFIGURATION.md).
std::span<const config::Property> server_properties();

struct ServerSettings {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> tokens;  // bearer tokens; empty: no authentication (loopback only)
  size_t http_threads = 128;
  uint64_t max_body_bytes = 1ull << 30;
  size_t max_uploads_in_progress = 256;
  std::chrono::milliseconds upload_timeout{10000};
  std::chrono::milliseconds stuck_after{600000};
  int worker_nice = 10;  // the in-process stages' nice value (base/priority.h)
};

// Layers flags > environment > defaults and reads the token file. A public listener without
// tokens is kBadInput saying how to add them.
[[nodiscard]] Result<ServerSettings> resolve_server_settings(
    const config::Values& flags, const std::function<const char*(const char*)>& getenv);

struct ServerOptions {
  ServerSettings settings;
  std::string data_dir;  // the status store lives at <data>/status.db
  bool workers = true;   // the stages run in this process (their stats are exact)
};

class Server {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Server>> open(queue::Queue& q, pipeline::Pipeline& p,
                                                            ServerOptions opts);
  ~Server();
  // Binds the listener (errors name the address) and serves on a thread of its own.
  [[nodiscard]] Status start();
  // Stops accepting, finishes the requests in progress, stops the follower.
  void stop();
  int port() const;  // the bound port (useful with port 0)
  // The first error of a part that cannot go on (the follower), OK while all run.
  Status failure() const;

 private:
  Server() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::server
