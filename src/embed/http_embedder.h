// Remote embedders: an embedding service reached over HTTP, in one of two dialects.
//   ollama://HOST[:11434]/MODEL[?settings]      → POST /api/embed {"model","input":[...]}
//   openai://HOST[:PORT][/PREFIX]?model=M[&...] → POST PREFIX/embeddings (PREFIX defaults to /v1),
//   openais://... (or tls=true)                    the OpenAI API that vLLM, text-embeddings-inference,
//                                                  llama.cpp's server and LM Studio also speak
// Both share everything but the body of a request and the shape of an answer: an embed() call is
// cut into batches (at most `batch` texts and `max_request_bytes` of body each), the batches are
// sent concurrently through one AdaptiveLimiter, and every answer is checked (count, dimension,
// finite numbers) and L2-normalised before it reaches the caller.
//
// AdaptiveLimiter is AIMD congestion control for requests, as TCP does for packets: it starts with
// a few requests in flight, adds one after a window's worth of successes while the service keeps
// up (its latency has not grown past twice the best seen), and halves on throttling (429, 503) or
// a timeout. A cut counts once per window: answers to requests sent before the last cut are old
// news and do not cut again, so a burst of 429s from one window halves once, not to 1 at once.
//
// The dimension is learnt on open by one probe request, or given (`dimensions=N`, also sent to the
// service, which may shorten its vectors); name() is "ollama:MODEL:DIM" / "openai:MODEL:DIM", so an
// index built with another model or dimension refuses this embedder. An answer of another
// dimension later is an error (bad_input), never a silent mix in the index.
//
// Ownership: an HttpEmbedder owns its HttpClient (pooled connections) and its limiter; embed()
// borrows the texts for the duration of the call.
// Thread-safety: embed() may be called from several threads at once (the embed stage's workers);
// they share the limiter, so the service sees at most limit() requests from this process.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/property.h"
#include "embed/embedder.h"

namespace sluice::store {
class HttpClient;
struct HttpAttempt;
}  // namespace sluice::store

namespace sluice::embed {

// AIMD limit on requests in flight, shared by every thread of one embedder.
// Thread-safety: every method may be called from any thread.
class AdaptiveLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    size_t initial = 4;
    size_t max = 8;
    // A success counts toward a raise only while the smoothed latency stays within
    // latency_factor × the best smoothed latency seen + latency_slack_ms (the slack keeps
    // millisecond jitter of a fast local service from freezing the limit).
    double latency_factor = 2.0;
    double latency_slack_ms = 25.0;
  };
  struct Stats {
    size_t limit = 0;
    size_t in_flight = 0;
    size_t min_limit = 0;  // lowest and highest limit so far
    size_t max_limit = 0;
    size_t peak_in_flight = 0;
    uint64_t raises = 0;
    uint64_t cuts = 0;
  };
  // Called with the new limit and why ("throttled", "timeout", "keeping up") after each change.
  using OnChange = std::function<void(size_t limit, std::string_view reason)>;

  explicit AdaptiveLimiter(Options opts, OnChange on_change = {});

  // Blocks until fewer than limit() requests are in flight, then counts one more.
  void acquire();
  void release();
  // A request answered well in latency_ms. Raises the limit by one after limit() such successes
  // in a row while the service keeps up and the callers want more than the limit (a limit nobody
  // uses is not raised: it would let a later burst through untested).
  void on_success(double latency_ms);
  // The service throttled (429/503) or timed out a request that started at `started`. Halves the
  // limit (never below 1) unless the request started before the last cut.
  void on_congestion(Clock::time_point started, std::string_view reason);

  size_t limit() const;
  Stats stats() const;

 private:
  const Options opts_;
  const OnChange on_change_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_;
  size_t in_flight_ = 0;
  size_t waiting_ = 0;
  size_t successes_ = 0;     // in a row since the last change
  double latency_ewma_ = 0;  // smoothed latency of successes, ms (0: none yet)
  double latency_best_ = 0;  // best smoothed latency seen, ms (0: none yet)
  Clock::time_point last_cut_{};
  Stats stats_;
};

enum class HttpApi : unsigned char { kOllama, kOpenAi };

// Everything an HttpEmbedder needs, from parse_http_embedder_uri() (tests may adjust it).
struct HttpEmbedderOptions {
  HttpApi api = HttpApi::kOllama;
  std::string uri;       // as given, for messages (the API key is never in it)
  std::string base_url;  // "http://host:port" (ollama) or "https://host/v1" (openai)
  std::string model;
  size_t dimensions = 0;  // 0: learnt by a probe on open; else asked for and checked
  size_t batch = 64;
  size_t max_request_bytes = 1 << 20;
  AdaptiveLimiter::Options concurrency;
  std::chrono::milliseconds timeout{120000};
  std::chrono::milliseconds connect_timeout{5000};
  int max_attempts = 6;
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{10000};
  bool truncate = true;     // ollama: cut texts longer than the model's context instead of failing
  std::string keep_alive;   // ollama: how long the model stays loaded ("5m", "-1"); empty: server's
  std::string api_key;      // sent as "Authorization: Bearer"; never logged
  std::string api_key_var;  // where api_key came from (or where it should), for messages
};

// The settings an embedder URI's query accepts (docs/CONFIGURATION.md lists them).
std::span<const config::Property> http_embedder_properties();

// True for the schemes this file serves: ollama, openai, openais.
bool is_http_embedder_uri(std::string_view uri);

// Parses an ollama:// / openai:// / openais:// URI; the API key comes through getenv
// (api_key_env=NAME, else SLUICE_EMBEDDER_API_KEY, else — openai only — OPENAI_API_KEY). A URI
// without a model, with a bad port, an unknown setting or a bad value is bad_input.
[[nodiscard]] Result<HttpEmbedderOptions> parse_http_embedder_uri(
    std::string_view uri, const std::function<const char*(const char*)>& getenv);

class HttpEmbedder final : public Embedder {
 public:
  // Opens the client and, without `dimensions`, sends one probe to learn the dimension (and to
  // fail now, with the reason, when the service is away or the model missing).
  [[nodiscard]] static Result<std::unique_ptr<HttpEmbedder>> open(HttpEmbedderOptions opts);
  ~HttpEmbedder() override;

  size_t dimension() const override { return dimension_; }
  std::string name() const override;
  Status embed(std::span<const std::string_view> texts, std::vector<float>* out) override;

  // The limiter's figures: how many requests may be in flight now, and what it went through.
  size_t concurrency_limit() const { return limiter_.limit(); }
  AdaptiveLimiter::Stats concurrency_stats() const { return limiter_.stats(); }
  uint64_t requests_sent() const;
  const HttpEmbedderOptions& options() const { return opts_; }

 private:
  struct Batch {
    size_t first = 0;  // index of its first text in the call
    size_t count = 0;
    std::string body;
  };
  explicit HttpEmbedder(HttpEmbedderOptions opts);
  std::vector<Batch> make_batches(std::span<const std::string_view> texts) const;
  // POSTs one batch through the limiter and returns the 2xx answer's body; a failure says what to
  // change (the service not running, a timeout on a large batch, a refused model or key).
  Result<std::string> post_batch(const Batch& b);
  // Sends one batch and writes its count × dimension_ normalised floats to out.
  Status send_batch(const Batch& b, float* out);
  // Checks one answer (count, equal dimensions, finite numbers) and appends its count × dim
  // normalised floats to out in input order; dim 0 learns the dimension (the probe).
  Status parse_answer(const Batch& b, std::string_view body, size_t* dim, std::vector<float>* out) const;
  // The Status for a final non-2xx answer, in the words of this API (model missing, key refused).
  Status answer_error(long status, std::string_view body) const;
  Status learn_dimension();
  void on_attempt(const store::HttpAttempt& a);

  HttpEmbedderOptions opts_;
  std::string display_model_;  // the model as in name(): Ollama's ":latest" tag dropped
  std::unique_ptr<store::HttpClient> client_;
  AdaptiveLimiter limiter_;
  size_t dimension_ = 0;
  std::atomic<uint64_t> requests_{0};
};

}  // namespace sluice::embed
