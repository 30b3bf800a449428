// A fake embedding service for tests of the HTTP embedders: one loopback server (HttpTestServer)
// that answers both Ollama's POST /api/embed and the OpenAI-compatible POST /v1/embeddings in
// their documented formats, with deterministic vectors hashed from each text (deliberately NOT
// unit length, so the client's normalisation shows). Tests tell it to misbehave — throttle (429
// with Retry-After), throttle above a number of requests in flight, fail with a status, stall past
// the client's timeout, answer too few vectors, numbers no float holds, shuffled `data`, another dimension —
// and read back what it saw (requests, inputs, body sizes, peak concurrency, headers).
//
// Ownership: the test owns the server; destroy the embedders that talk to it first (their
// kept-alive connections hold server threads), then the server. Stalled handlers wake on stop().
// Thread-safety: the knobs are atomics or mutex-guarded and may be changed while it serves;
// handlers run on the server's threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "support/http_test_server.h"

namespace sluice::testing {

class FakeEmbedServer {
 public:
  struct Request {
    std::string path;
    std::string model;
    std::string authorization;
    size_t inputs = 0;
    size_t body_bytes = 0;
    long status = 0;  // what it answered
    nlohmann::json body;
  };

  // Misbehaviour. "next" counters apply to the next N requests (after authentication).
  std::atomic<int> throttle_next{0};    // answer 429 with Retry-After
  std::atomic<int> throttle_above{0};   // > 0: 429 when more than this many requests are in flight
  std::atomic<int> retry_after_ms{50};  // sent as seconds ("0.05"); 0: no header
  std::atomic<int> fail_next{0};        // answer fail_status
  std::atomic<int> fail_status{500};
  std::atomic<int> stall_next{0};  // sleep stall_ms before answering
  std::atomic<int> stall_ms{5000};
  std::atomic<int> short_next{0};             // answer one vector too few
  std::atomic<int> huge_next{0};              // put 1e300 (no float holds it) in the first vector
  std::atomic<int> latency_ms{0};             // every answer takes this long (so concurrent requests overlap)
  std::atomic<bool> shuffle{false};           // OpenAI: `data` in reverse order
  std::atomic<bool> honour_dimensions{true};  // use a request's "dimensions"

  FakeEmbedServer() {
    set_model("test-model", 16);
    // Enough threads that a kept-alive connection per client handle never starves another.
    srv_.server().new_task_queue = [] { return new httplib::ThreadPool(64); };
    srv_.server().set_keep_alive_timeout(2);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    srv_.server().Post("/api/embed", handler);
    srv_.server().Post("/v1/embeddings", handler);
  }
  ~FakeEmbedServer() { stop(); }
  FakeEmbedServer(const FakeEmbedServer&) = delete;
  FakeEmbedServer& operator=(const FakeEmbedServer&) = delete;

  bool start() { return srv_.start(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    srv_.stop();
  }
  int port() const { return srv_.port(); }
  std::string hostport() const { return "127.0.0.1:" + std::to_string(srv_.port()); }

  // A model the server knows, with its native dimension (another model is a 404).
  void set_model(const std::string& name, size_t dim) {
    std::lock_guard<std::mutex> lock(mu_);
    models_[name] = dim;
  }
  // Requests need "Authorization: Bearer KEY" (empty: no key needed).
  void require_key(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    key_ = key;
  }

  int requests() const { return requests_.load(); }
  int throttled() const { return throttled_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  std::vector<Request> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  // Every input text answered with vectors, in arrival order.
  std::vector<std::string> inputs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return inputs_;
  }

  // The vector the server answers for text (not normalised: entries in [-3, 3)).
  static std::vector<float> vector_for(std::string_view text, size_t dim) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    std::vector<float> v(dim);
    for (size_t i = 0; i < dim; ++i) {
      uint64_t x = h + 0x9E3779B97F4A7C15ull * (i + 1);  // splitmix64
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      x ^= x >> 31;
      v[i] = static_cast<float>((static_cast<double>(x >> 11) / 9007199254740992.0) * 6.0 - 3.0);
    }
    return v;
  }
  static std::vector<float> unit_vector_for(std::string_view text, size_t dim) {
    std::vector<float> v = vector_for(text, dim);
    double n = 0;
    for (float x : v) n += static_cast<double>(x) * x;
    for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
    return v;
  }

 private:
  static bool take(std::atomic<int>& counter) {
    int n = counter.load();
    while (n > 0) {
      if (counter.compare_exchange_weak(n, n - 1)) return true;
    }
    return false;
  }

  void record(Request r) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(std::move(r));
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    using nlohmann::json;
    const int now = ++in_flight_;
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { --n; }
    } leave{in_flight_};
    for (int m = max_in_flight_.load(); now > m && !max_in_flight_.compare_exchange_weak(m, now);) {
    }
    ++requests_;
    const bool ollama = req.path == "/api/embed";
    Request rec;
    rec.path = req.path;
    rec.authorization = req.get_header_value("Authorization");
    rec.body_bytes = req.body.size();
    auto answer = [&](long status, const json& body) {
      res.status = static_cast<int>(status);
      res.set_content(body.dump(), "application/json");
      rec.status = status;
      record(rec);
    };
    auto error_body = [&](const std::string& msg, const char* code) {
      if (ollama) return json{{"error", msg}};
      return json{
          {"error",
           {{"message", msg}, {"type", "invalid_request_error"}, {"param", nullptr}, {"code", code}}}};
    };

    std::string key;
    std::map<std::string, size_t> models;
    {
      std::lock_guard<std::mutex> lock(mu_);
      key = key_;
      models = models_;
    }
    if (!key.empty() && rec.authorization != "Bearer " + key) {
      return answer(401, error_body("Incorrect API key provided", "invalid_api_key"));
    }
    if (take(throttle_next) || (throttle_above.load() > 0 && now > throttle_above.load())) {
      ++throttled_;
      if (int ms = retry_after_ms.load(); ms > 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", ms / 1000.0);
        res.set_header("Retry-After", buf);
      }
      return answer(429, error_body("Rate limit reached; slow down", "rate_limit_exceeded"));
    }
    if (take(fail_next)) {
      return answer(fail_status.load(), error_body("the fake server was told to fail", "server_error"));
    }
    if (take(stall_next)) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(stall_ms.load()), [&] { return stopping_; });
    }
    if (int ms = latency_ms.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));

    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("model") || !body["model"].is_string() ||
        !body.contains("input")) {
      return answer(400, error_body("expected {\"model\": ..., \"input\": ...}", "invalid_request"));
    }
    rec.model = body["model"].get<std::string>();
    rec.body = body;
    std::string model = rec.model;
    if (ollama && model.ends_with(":latest")) model.resize(model.size() - 7);
    auto m = models.find(model);
    if (m == models.end()) {
      return answer(404, ollama
                             ? error_body("model \"" + rec.model + "\" not found, try pulling it first", "")
                             : error_body("The model `" + rec.model + "` does not exist", "model_not_found"));
    }
    size_t dim = m->second;
    if (honour_dimensions.load() && body.contains("dimensions") && body["dimensions"].is_number_unsigned())
      dim = body["dimensions"].get<size_t>();
    std::vector<std::string> texts;
    if (body["input"].is_string()) {
      texts.push_back(body["input"].get<std::string>());
    } else if (body["input"].is_array()) {
      for (const json& t : body["input"]) {
        if (!t.is_string()) return answer(400, error_body("input must be strings", "invalid_request"));
        texts.push_back(t.get<std::string>());
      }
    } else {
      return answer(400, error_body("input must be a string or a list of strings", "invalid_request"));
    }
    rec.inputs = texts.size();
    json vectors = json::array();
    for (const std::string& t : texts) vectors.push_back(vector_for(t, dim));
    if (take(huge_next) && !vectors.empty()) vectors[0][0] = 1e300;
    if (take(short_next) && !vectors.empty()) vectors.erase(vectors.size() - 1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      inputs_.insert(inputs_.end(), texts.begin(), texts.end());
    }
    if (ollama) {
      return answer(200, json{{"model", rec.model},
                              {"embeddings", std::move(vectors)},
                              {"total_duration", 1000},
                              {"load_duration", 0},
                              {"prompt_eval_count", texts.size()}});
    }
    json data = json::array();
    for (size_t i = 0; i < vectors.size(); ++i)
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(vectors[i])}});
    if (shuffle.load()) std::reverse(data.begin(), data.end());
    answer(200, json{{"object", "list"},
                     {"data", std::move(data)},
                     {"model", rec.model},
                     {"usage", {{"prompt_tokens", texts.size()}, {"total_tokens", texts.size()}}}});
  }

  HttpTestServer srv_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, size_t> models_;
  std::string key_;
  std::vector<Request> log_;
  std::vector<std::string> inputs_;
  std::atomic<int> requests_{0}, throttled_{0}, in_flight_{0}, max_in_flight_{0};
};

}  // namespace sluice::testing
