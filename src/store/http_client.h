// HttpClient: requests to the JSON services sluice talks to besides buckets (embedding servers —
// Ollama, OpenAI-compatible — and Chroma). libcurl easy handles are pooled so a request reuses a
// kept-alive connection; a request that meets a connection error, a timeout, 429 or 5xx is tried
// again with exponential backoff and jitter, honouring Retry-After; everything else comes back at
// once. Native errors (curl codes, HTTP statuses) are translated to a Status here, in one place.
//
// It lives in src/store (the module that speaks HTTP to remote services) so that embed/ and index/,
// below it, share one client.
// Thread-safety: every method may be called from several threads at once; each request takes its
// own handle from the pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::store {

class CurlHandlePool;  // store/curl_handles.h

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE, ...
  std::string path;            // appended to the base URL: "/api/embed", "/api/v2/heartbeat?x=1"
  std::string body;            // sent when non-empty (or when the method is POST/PUT)
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // in addition to the client's own
};

struct HttpResponse {
  long status = 0;                             // the HTTP status
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  double elapsed_ms = 0;
};

// What one attempt did, for callers that adapt to the service (an embedder lowers its concurrency
// on throttling and timeouts).
struct HttpAttempt {
  enum class Outcome : unsigned char { kOk, kThrottled, kServerError, kTimeout, kConnectError, kOther };
  Outcome outcome = Outcome::kOk;
  long status = 0;
  double elapsed_ms = 0;
};

struct HttpOptions {
  std::string service = "service";  // in messages: "ollama at http://h:11434: ..."
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{120000};  // the whole attempt, 0 = none
  int max_attempts = 6;                               // 1 = no retry
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{10000};
  std::chrono::milliseconds retry_after_max{60000};  // a longer Retry-After is cut to this
  // Sent with every request, e.g. {"Authorization", "Bearer ..."}.
  std::vector<std::pair<std::string, std::string>> headers;
  // Where a 401/403 points the user: "set OPENAI_API_KEY".
  std::string credentials_hint;
  // Called after every attempt, from the requesting thread.
  std::function<void(const HttpAttempt&)> on_attempt;
};

class HttpClient {
 public:
  // base_url: "http://host:port" or "https://host/prefix" (no trailing slash needed). kBadInput
  // for another scheme or no host.
  [[nodiscard]] static Result<std::unique_ptr<HttpClient>> open(std::string_view base_url, HttpOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request, retrying as the header says. A 2xx comes back as the response; any other
  // final answer or a transport failure as the translated Status (see http_status_error).
  [[nodiscard]] Result<HttpResponse> send(const HttpRequest& req);
  // The same, but a non-2xx final answer comes back as a response too (callers that give 404 or
  // 409 a meaning of their own). Transport failures after the retries are still a Status.
  [[nodiscard]] Result<HttpResponse> send_any(const HttpRequest& req);

  const std::string& base_url() const { return base_url_; }
  const HttpOptions& options() const { return opts_; }

 private:
  HttpClient(std::string base_url, HttpOptions opts);
  Result<HttpResponse> perform(const HttpRequest& req, HttpAttempt* attempt);
  Result<HttpResponse> send_impl(const HttpRequest& req, bool any_status);

  std::string base_url_;
  HttpOptions opts_;
  std::unique_ptr<CurlHandlePool> pool_;
};

// The Status for a final non-2xx answer: 400/404/409/422 → bad_input, 401/403 → bad_input with the
// credentials hint, 413 → resource_limit, 408/429/5xx → retriable; the message names the service,
// the request and the start of the body (a server's own error text is usually the useful part).
Status http_status_error(const HttpOptions& opts, std::string_view base_url, const HttpRequest& req,
                         const HttpResponse& resp);

// Whether an answer with this status is worth another attempt (408, 425, 429, 5xx).
bool http_status_retriable(long status);

// Retry-After in milliseconds (delta-seconds or an HTTP date), or nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);

}  // namespace sluice::store
