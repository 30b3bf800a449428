// What the two libcurl users of src/store (the s3 store and HttpClient) share: curl's one-time
// global init, a pool of easy handles that keeps their connections alive between requests, and
// the parsing of response header lines. Internal to src/store.
// Thread-safety: CurlHandlePool is thread-safe; a handle belongs to one thread between acquire and
// release.
#pragma once

#include <curl/curl.h>

#include <cctype>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::store {

inline void curl_global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Easy handles keep their connections (and DNS cache) between requests: taking one from the pool
// reuses a kept-alive connection to the server.
class CurlHandlePool {
 public:
  explicit CurlHandlePool(size_t max_pooled) : max_pooled_(max_pooled) {}
  ~CurlHandlePool() {
    for (CURL* h : free_) curl_easy_cleanup(h);
  }
  CurlHandlePool(const CurlHandlePool&) = delete;
  CurlHandlePool& operator=(const CurlHandlePool&) = delete;

  // A handle, or nullptr when curl cannot make one.
  CURL* acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        CURL* h = free_.back();
        free_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void release(CURL* h) {
    curl_easy_reset(h);  // keeps live connections, per curl_easy_reset(3)
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < max_pooled_) {
      free_.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

 private:
  const size_t max_pooled_;
  std::mutex mu_;
  std::vector<CURL*> free_;
};

// One line as CURLOPT_HEADERFUNCTION hands it over: "Name: value\r\n" goes into headers under the
// lower-case name; a status line ("HTTP/1.1 200 OK") starts a new response (after a 100 Continue,
// say) and clears them.
inline void add_header_line(std::string_view line, std::map<std::string, std::string>* headers) {
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  (*headers)[name] = std::string(v);
}

}  // namespace sluice::store
