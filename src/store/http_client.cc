#include "store/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <random>
#include <thread>

#include "store/curl_handles.h"

namespace sluice::store {
namespace {

constexpr size_t kMaxPooledHandles = 64;
constexpr size_t kErrorBodyInMessage = 300;  // bytes of a server's error body quoted in a message

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  static_cast<HttpResponse*>(user)->body.append(data, size * n);
  return size * n;
}

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  add_header_line(std::string_view(data, size * n), &static_cast<HttpResponse*>(user)->headers);
  return size * n;
}

std::string body_excerpt(std::string_view body) {
  std::string s(body.substr(0, kErrorBodyInMessage));
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (body.size() > kErrorBodyInMessage) s += "...";
  return s;
}

std::string where(const HttpOptions& opts, std::string_view base_url, const HttpRequest& req) {
  std::string path = req.path;
  if (size_t q = path.find('?'); q != std::string::npos) path.resize(q);  // queries may carry keys
  return opts.service + " at " + std::string(base_url) + ": " + req.method + " " + path;
}

}  // namespace

bool http_status_retriable(long status) {
  return status == 408 || status == 425 || status == 429 || status >= 500;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    double secs = 0;
    size_t i = 0;
    for (; i < value.size() && std::isdigit(static_cast<unsigned char>(value[i])); ++i)
      secs = secs * 10 + (value[i] - '0');
    if (i < value.size() && value[i] == '.') {  // not in RFC 9110, but some servers send "0.5"
      double scale = 0.1;
      for (++i; i < value.size() && std::isdigit(static_cast<unsigned char>(value[i])); ++i, scale /= 10)
        secs += (value[i] - '0') * scale;
    }
    return std::chrono::milliseconds(static_cast<long long>(secs * 1000));
  }
  // An HTTP date: "Wed, 21 Oct 2026 07:28:00 GMT".
  std::tm tm{};
  std::string s(value);
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return std::nullopt;
  const long long at = static_cast<long long>(timegm(&tm));
  const long long now = static_cast<long long>(std::time(nullptr));
  return std::chrono::milliseconds(std::max(0LL, at - now) * 1000);
}

Status http_status_error(const HttpOptions& opts, std::string_view base_url, const HttpRequest& req,
                         const HttpResponse& resp) {
  std::string msg = where(opts, base_url, req) + " answered " + std::to_string(resp.status);
  if (!resp.body.empty()) msg += ": " + body_excerpt(resp.body);
  switch (resp.status) {
    case 401:
    case 403:
      return Status::invalid_argument(msg + (opts.credentials_hint.empty()
                                                 ? std::string("; check the credentials")
                                                 : "; " + opts.credentials_hint));
    case 404: return Status::not_found(msg);
    case 413: return Status::resource_limit(msg + "; the request is larger than the service accepts");
    default: break;
  }
  if (http_status_retriable(resp.status)) return Status::unavailable(msg);
  return Status::invalid_argument(msg);
}

HttpClient::HttpClient(std::string base_url, HttpOptions opts)
    : base_url_(std::move(base_url)),
      opts_(std::move(opts)),
      pool_(std::make_unique<CurlHandlePool>(kMaxPooledHandles)) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::open(std::string_view base_url, HttpOptions opts) {
  std::string url(base_url);
  while (url.ends_with('/')) url.pop_back();
  const bool http = url.starts_with("http://"), https = url.starts_with("https://");
  if (!http && !https) {
    return Status::invalid_argument(opts.service + " URL '" + std::string(base_url) +
                                    "' must start with http:// or https://");
  }
  if (url.size() <= (http ? 7u : 8u) || url[http ? 7 : 8] == '/') {
    return Status::invalid_argument(opts.service + " URL '" + std::string(base_url) + "' names no host");
  }
  if (opts.max_attempts < 1) opts.max_attempts = 1;
  curl_global_init_once();
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(url), std::move(opts)));
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& req, HttpAttempt* attempt) {
  CURL* h = pool_->acquire();
  if (h == nullptr) return Status::resource_limit("curl_easy_init failed");
  HttpResponse resp;
  const std::string url = base_url_ + req.path;
  curl_slist* hdrs = nullptr;
  for (const auto& [k, v] : opts_.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
  for (const auto& [k, v] : req.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
  const bool has_body = !req.body.empty() || req.method == "POST" || req.method == "PUT";
  if (has_body) hdrs = curl_slist_append(hdrs, ("Content-Type: " + req.content_type).c_str());
  hdrs = curl_slist_append(hdrs, "Expect:");  // no 100-continue round trip for large batches
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.request_timeout.count()));
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
  if (req.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    if (req.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (has_body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(h);
  resp.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_slist_free_all(hdrs);
  pool_->release(h);

  attempt->status = resp.status;
  attempt->elapsed_ms = resp.elapsed_ms;
  if (rc != CURLE_OK) {
    std::string msg = where(opts_, base_url_, req) + ": " + curl_easy_strerror(rc);
    if (errbuf[0] != '\0') msg += std::string(" (") + errbuf + ")";
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        attempt->outcome = HttpAttempt::Outcome::kTimeout;
        return Status::timeout(msg + " after " + std::to_string(opts_.request_timeout.count()) + " ms");
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        attempt->outcome = HttpAttempt::Outcome::kOther;
        return Status::invalid_argument(msg + "; check the " + opts_.service + " URL");
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
        attempt->outcome = HttpAttempt::Outcome::kOther;
        return Status::invalid_argument(msg + "; the server's TLS certificate is not trusted");
      default:
        attempt->outcome = HttpAttempt::Outcome::kConnectError;
        return Status::unavailable(msg + "; is the " + opts_.service + " server running?");
    }
  }
  if (resp.status == 429) {
    attempt->outcome = HttpAttempt::Outcome::kThrottled;
  } else if (resp.status >= 500) {
    attempt->outcome = HttpAttempt::Outcome::kServerError;
  } else if (resp.status >= 200 && resp.status < 300) {
    attempt->outcome = HttpAttempt::Outcome::kOk;
  } else {
    attempt->outcome = HttpAttempt::Outcome::kOther;
  }
  return resp;
}

Result<HttpResponse> HttpClient::send(const HttpRequest& req) {
  return send_impl(req, false);
}
Result<HttpResponse> HttpClient::send_any(const HttpRequest& req) {
  return send_impl(req, true);
}

Result<HttpResponse> HttpClient::send_impl(const HttpRequest& req, bool any_status) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    HttpAttempt a;
    Result<HttpResponse> r = perform(req, &a);
    if (opts_.on_attempt) opts_.on_attempt(a);
    const bool last = attempt >= opts_.max_attempts;
    std::optional<std::chrono::milliseconds> retry_after;
    if (r.is_ok()) {
      const HttpResponse& resp = *r;
      const bool ok = resp.status >= 200 && resp.status < 300;
      if (ok) return r;
      if (last || !http_status_retriable(resp.status)) {
        if (any_status) return r;
        Status st = http_status_error(opts_, base_url_, req, resp);
        if (attempt > 1) st = st.with_context("after " + std::to_string(attempt) + " attempts");
        return st;
      }
      if (auto it = resp.headers.find("retry-after"); it != resp.headers.end())
        retry_after = parse_retry_after(it->second);
    } else {
      if (last || r.status().error_class() != ErrorClass::kRetriable) {
        if (attempt > 1) return r.status().with_context("after " + std::to_string(attempt) + " attempts");
        return r.status();
      }
    }
    // Exponential backoff with full jitter between half and one and a half times the step.
    auto step = opts_.backoff_initial * (1LL << std::min(attempt - 1, 16));
    step = std::min<std::chrono::milliseconds>(step, opts_.backoff_max);
    auto delay = std::chrono::milliseconds(
        static_cast<long long>(step.count() * std::uniform_real_distribution<double>(0.5, 1.5)(rng)));
    if (retry_after) delay = std::min(*retry_after, opts_.retry_after_max);
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace sluice::store
