// The remote embedders (http_embedder.h): URI parsing, the AIMD limiter, batching, and the two
// dialects' bodies and answers. Transport (pooled connections, retries with backoff honouring
// Retry-After, the translation of curl codes and HTTP statuses) is store::HttpClient's; this file
// adds what only an embedder knows: which answers mean "slow down", what a 404 means for a model,
// and what a well-formed answer is.
#include "embed/http_embedder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "base/base64.h"
#include "base/log.h"
#include "config/property.h"
#include "store/http_client.h"

namespace sluice::embed {
namespace {

using config::Kind;
using nlohmann::json;

constexpr int kOllamaPort = 11434;
constexpr size_t kMaxDimension = 65536;
constexpr std::string_view kProbeText = "sluice dimension probe";
constexpr std::string_view kKeyVar = "SLUICE_EMBEDDER_API_KEY";
constexpr std::string_view kOpenAiKeyVar = "OPENAI_API_KEY";

// Defaults: batches of 16 texts, so the embed stage's calls of 64 chunks (--embed-batch) go out
// as 4 concurrent requests and the limiter has something to adapt; 1 MiB bodies stay far below
// what the services accept (OpenAI: 2,048 inputs and ~300k tokens per request).
const config::Property kHttpEmbedderProperties[] = {
    {"model", Kind::kString, "",
     "The model (`openai://` needs it; `ollama://` takes it from the path, `ollama://HOST/MODEL`)"},
    {"dimensions",
     Kind::kInt,
     "0",
     "Vector dimension: 0 learns it from one probe request on open; N is asked of the service (models "
     "that can shorten their vectors do) and every answer is checked against it",
     {},
     0,
     static_cast<int64_t>(kMaxDimension)},
    {"batch", Kind::kInt, "16", "Texts per request at most", {}, 1, 2048},
    {"max_request_bytes",
     Kind::kSize,
     "1MiB",
     "Request bodies at most this big (a single longer text goes alone)",
     {},
     1024,
     256ll << 20},
    {"max_concurrency",
     Kind::kInt,
     "8",
     "Requests in flight at most (all threads together); the adaptive limit moves between 1 and this",
     {},
     1,
     256},
    {"initial_concurrency", Kind::kInt, "4", "Requests in flight at the start", {}, 1, 256},
    {"timeout_ms",
     Kind::kMillis,
     "120000",
     "Time for one request (a model that is still loading answers slowly); then it is retried, and the "
     "limit is halved",
     {},
     100,
     3'600'000},
    {"connect_timeout_ms", Kind::kMillis, "5000", "Time to connect", {}, 100, 600'000},
    {"max_attempts",
     Kind::kInt,
     "6",
     "Attempts per request on 429, 5xx, timeouts and refused connections (backoff with jitter, "
     "honouring Retry-After)",
     {},
     1,
     100},
    {"tls", Kind::kEnum, "false", "HTTPS (`openais://` says the same)", "false|true|0|1"},
    {"truncate", Kind::kBool, "true",
     "Ollama: cut a text longer than the model's context instead of failing it"},
    {"keep_alive", Kind::kString, "",
     "Ollama: how long the model stays loaded after a request (`5m`, `1h`, `-1` for ever); empty: the "
     "server's default"},
    {"api_key_env", Kind::kString, "",
     "The environment variable holding the API key (default: `SLUICE_EMBEDDER_API_KEY`, then for "
     "`openai://` `OPENAI_API_KEY`); sent as `Authorization: Bearer`"},
};

std::string dump_string(std::string_view s) {
  // Text that is not UTF-8 (a chunk cut from a damaged file) is sent with U+FFFD rather than refused.
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The server's own words from an error body: {"error": "..."} (Ollama), {"error": {"message":
// "..."}} (OpenAI, vLLM), {"message": "..."} or the start of the body.
std::string server_says(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto it = j.find("error"); it != j.end()) {
      if (it->is_string()) return it->get<std::string>();
      if (it->is_object() && it->contains("message") && (*it)["message"].is_string())
        return (*it)["message"].get<std::string>();
    }
    if (auto it = j.find("message"); it != j.end() && it->is_string()) return it->get<std::string>();
  }
  std::string s(body.substr(0, 300));
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

Status with_message(const Status& st, std::string msg) {
  return Status(st.error_class(), st.code(), std::move(msg));
}

// HttpClient says "is the ollama server running?"; this says how to make it so.
std::string connect_hint(HttpApi api) {
  return api == HttpApi::kOllama
             ? " (start it with `ollama serve`, or point the embedder URI at where it runs)"
             : " (start it, or point the embedder URI at where it runs)";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AdaptiveLimiter

AdaptiveLimiter::AdaptiveLimiter(Options opts, OnChange on_change)
    : opts_([&] {
        opts.max = std::max<size_t>(1, opts.max);
        opts.initial = std::clamp<size_t>(opts.initial, 1, opts.max);
        return opts;
      }()),
      on_change_(std::move(on_change)),
      limit_(opts_.initial) {
  stats_.min_limit = stats_.max_limit = limit_;
}

void AdaptiveLimiter::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  ++waiting_;
  cv_.wait(lock, [&] { return in_flight_ < limit_; });
  --waiting_;
  ++in_flight_;
  stats_.peak_in_flight = std::max(stats_.peak_in_flight, in_flight_);
}

void AdaptiveLimiter::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
  }
  cv_.notify_one();
}

void AdaptiveLimiter::on_success(double latency_ms) {
  size_t raised_to = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    latency_ewma_ = latency_ewma_ == 0 ? latency_ms : 0.8 * latency_ewma_ + 0.2 * latency_ms;
    // The best level creeps up 1% per success, so a service that became slower for good is
    // relearnt instead of holding the limit for ever.
    latency_best_ = latency_best_ == 0 ? latency_ewma_ : std::min(latency_ewma_, latency_best_ * 1.01);
    const bool keeping_up = latency_ewma_ <= latency_best_ * opts_.latency_factor + opts_.latency_slack_ms;
    const bool wanted = in_flight_ + waiting_ >= limit_;
    if (!keeping_up) {
      successes_ = 0;  // hold: more requests would only queue at the service
    } else if (wanted && ++successes_ >= limit_ && limit_ < opts_.max) {
      ++limit_;
      successes_ = 0;
      ++stats_.raises;
      stats_.max_limit = std::max(stats_.max_limit, limit_);
      raised_to = limit_;
    }
  }
  if (raised_to != 0) {
    cv_.notify_one();
    if (on_change_) on_change_(raised_to, "keeping up");
  }
}

void AdaptiveLimiter::on_congestion(Clock::time_point started, std::string_view reason) {
  size_t cut_to = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    successes_ = 0;
    // Sent before the last cut: it reports on the old limit, which was already halved for it.
    if (stats_.cuts > 0 && started < last_cut_) return;
    last_cut_ = Clock::now();
    ++stats_.cuts;
    if (limit_ > 1) {
      limit_ = std::max<size_t>(1, limit_ / 2);
      stats_.min_limit = std::min(stats_.min_limit, limit_);
      cut_to = limit_;
    }
  }
  if (cut_to != 0 && on_change_) on_change_(cut_to, reason);
}

size_t AdaptiveLimiter::limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limit_;
}

AdaptiveLimiter::Stats AdaptiveLimiter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.limit = limit_;
  s.in_flight = in_flight_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// URIs

std::span<const config::Property> http_embedder_properties() {
  return kHttpEmbedderProperties;
}

bool is_http_embedder_uri(std::string_view uri) {
  return uri.starts_with("ollama://") || uri.starts_with("openai://") || uri.starts_with("openais://");
}

Result<HttpEmbedderOptions> parse_http_embedder_uri(std::string_view uri,
                                                    const std::function<const char*(const char*)>& getenv) {
  HttpEmbedderOptions o;
  o.uri = std::string(uri);
  std::string_view scheme = uri.substr(0, uri.find("://"));
  if (scheme == "ollama") {
    o.api = HttpApi::kOllama;
  } else if (scheme == "openai" || scheme == "openais") {
    o.api = HttpApi::kOpenAi;
  } else {
    return Status::unsupported("embedder URI '" + std::string(uri) +
                               "': unknown scheme (expected ollama://, openai:// or openais://)");
  }
  const bool ollama = o.api == HttpApi::kOllama;
  const std::string what = ollama ? "ollama embedder" : "openai embedder";
  SLUICE_ASSIGN_OR_RETURN(config::ServerUri u, config::split_server_uri(uri, scheme, what));
  const auto table = http_embedder_properties();
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::parse_query(u.query, table, what));
  if (u.host.empty()) {
    return Status::invalid_argument(what + " URI '" + std::string(uri) + "' names no host (e.g. " +
                                    (ollama ? "ollama://127.0.0.1:11434/nomic-embed-text"
                                            : "openai://127.0.0.1:8000/v1?model=BAAI/bge-m3") +
                                    ")");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string model, config::get_string(v, table, "model"));
  std::string prefix = "/v1";
  if (ollama) {
    if (u.path && !u.path->empty()) {
      SLUICE_ASSIGN_OR_RETURN(model, config::percent_decode(*u.path, "the " + what + " URI's model"));
      while (model.ends_with('/')) model.pop_back();
    }
  } else if (u.path) {
    std::string_view p = *u.path;
    while (p.ends_with('/')) p.remove_suffix(1);
    if (!p.empty()) prefix = "/" + std::string(p);
  }
  if (model.empty()) {
    return Status::invalid_argument(
        what + " URI '" + std::string(uri) + "' names no model: write " +
        (ollama ? "ollama://HOST:11434/MODEL (e.g. ollama://127.0.0.1:11434/nomic-embed-text)"
                : "openai://HOST[:PORT]/v1?model=MODEL (e.g. "
                  "openais://api.openai.com/v1?model=text-embedding-3-small)"));
  }
  o.model = model;
  SLUICE_ASSIGN_OR_RETURN(std::string tls, config::get_string(v, table, "tls"));
  const bool https = scheme == "openais" || tls == "true" || tls == "1";
  std::string host(u.host);
  std::optional<int> port = u.port;
  if (!port && ollama) port = kOllamaPort;
  o.base_url = (https ? "https://" : "http://") + host + (port ? ":" + std::to_string(*port) : "");
  if (!ollama) o.base_url += prefix;

  auto num = [&](std::string_view name) { return config::get_int(v, table, name); };
  SLUICE_ASSIGN_OR_RETURN(int64_t dims, num("dimensions"));
  SLUICE_ASSIGN_OR_RETURN(int64_t batch, num("batch"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_bytes, num("max_request_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_conc, num("max_concurrency"));
  SLUICE_ASSIGN_OR_RETURN(int64_t init_conc, num("initial_concurrency"));
  SLUICE_ASSIGN_OR_RETURN(int64_t timeout, num("timeout_ms"));
  SLUICE_ASSIGN_OR_RETURN(int64_t connect_timeout, num("connect_timeout_ms"));
  SLUICE_ASSIGN_OR_RETURN(int64_t attempts, num("max_attempts"));
  o.dimensions = static_cast<size_t>(dims);
  o.batch = static_cast<size_t>(batch);
  o.max_request_bytes = static_cast<size_t>(max_bytes);
  o.concurrency.max = static_cast<size_t>(max_conc);
  o.concurrency.initial = std::min(static_cast<size_t>(init_conc), o.concurrency.max);
  o.timeout = std::chrono::milliseconds(timeout);
  o.connect_timeout = std::chrono::milliseconds(connect_timeout);
  o.max_attempts = static_cast<int>(attempts);
  SLUICE_ASSIGN_OR_RETURN(o.truncate, config::get_bool(v, table, "truncate"));
  SLUICE_ASSIGN_OR_RETURN(o.keep_alive, config::get_string(v, table, "keep_alive"));

  // The key: a variable the URI names, else ours, else OpenAI's (never sent to an Ollama server,
  // which would hand an OpenAI key to another host).
  SLUICE_ASSIGN_OR_RETURN(std::string key_env, config::get_string(v, table, "api_key_env"));
  std::vector<std::string> vars;
  if (!key_env.empty()) {
    vars = {key_env};
  } else {
    vars = {std::string(kKeyVar)};
    if (!ollama) vars.emplace_back(kOpenAiKeyVar);
  }
  for (const std::string& var : vars) {
    const char* val = getenv ? getenv(var.c_str()) : nullptr;
    if (val != nullptr && *val != '\0') {
      o.api_key = val;
      o.api_key_var = var;
      break;
    }
  }
  if (o.api_key_var.empty()) {
    for (size_t i = 0; i < vars.size(); ++i) o.api_key_var += (i ? " or " : "") + vars[i];
  }
  if (!key_env.empty() && o.api_key.empty()) {
    return Status::invalid_argument(what + " URI '" + std::string(uri) + "': api_key_env=" + key_env +
                                    " but the environment has no " + key_env);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// HttpEmbedder

namespace {

// What the attempts of the request on this thread did: on_attempt() (called by HttpClient on the
// requesting thread) writes it, send_batch() reads it to say why a request failed.
struct AttemptLog {
  store::HttpAttempt::Outcome last = store::HttpAttempt::Outcome::kOk;
  int attempts = 0;
};
thread_local AttemptLog* t_attempts = nullptr;

}  // namespace

HttpEmbedder::HttpEmbedder(HttpEmbedderOptions opts)
    : opts_(std::move(opts)), limiter_(opts_.concurrency, [this](size_t limit, std::string_view reason) {
        // Cuts at info (the service pushed back: worth knowing), raises at debug (routine).
        log::write(reason == "keeping up" ? log::Level::kDebug : log::Level::kInfo, "embedder concurrency",
                   {{"embedder", opts_.api == HttpApi::kOllama ? "ollama" : "openai"},
                    {"model", opts_.model},
                    {"limit", limit},
                    {"reason", reason}});
      }) {
  display_model_ = opts_.model;
  // "nomic-embed-text" and "nomic-embed-text:latest" are one model to Ollama, and to the index.
  if (opts_.api == HttpApi::kOllama && display_model_.ends_with(":latest"))
    display_model_.resize(display_model_.size() - 7);
}

HttpEmbedder::~HttpEmbedder() = default;

Result<std::unique_ptr<HttpEmbedder>> HttpEmbedder::open(HttpEmbedderOptions opts) {
  if (opts.batch == 0) opts.batch = 1;
  std::unique_ptr<HttpEmbedder> e(new HttpEmbedder(std::move(opts)));
  const HttpEmbedderOptions& o = e->opts_;
  store::HttpOptions h;
  h.service = o.api == HttpApi::kOllama ? "ollama" : "openai";
  h.connect_timeout = o.connect_timeout;
  h.request_timeout = o.timeout;
  h.max_attempts = o.max_attempts;
  h.backoff_initial = o.backoff_initial;
  h.backoff_max = o.backoff_max;
  if (!o.api_key.empty()) h.headers.emplace_back("Authorization", "Bearer " + o.api_key);
  h.credentials_hint = "check the API key in " + o.api_key_var;
  HttpEmbedder* self = e.get();
  h.on_attempt = [self](const store::HttpAttempt& a) { self->on_attempt(a); };
  SLUICE_ASSIGN_OR_RETURN(e->client_, store::HttpClient::open(o.base_url, std::move(h)));
  if (o.dimensions != 0) {
    e->dimension_ = o.dimensions;
  } else {
    SLUICE_RETURN_IF_ERROR(e->learn_dimension());
  }
  return e;
}

std::string HttpEmbedder::name() const {
  return std::string(opts_.api == HttpApi::kOllama ? "ollama:" : "openai:") + display_model_ + ":" +
         std::to_string(dimension_);
}

uint64_t HttpEmbedder::requests_sent() const {
  return requests_.load();
}

void HttpEmbedder::on_attempt(const store::HttpAttempt& a) {
  using Outcome = store::HttpAttempt::Outcome;
  ++requests_;
  if (t_attempts != nullptr) {
    t_attempts->last = a.outcome;
    ++t_attempts->attempts;
  }
  const auto started =
      AdaptiveLimiter::Clock::now() - std::chrono::microseconds(static_cast<int64_t>(a.elapsed_ms * 1000));
  bool congestion = false;
  switch (a.outcome) {
    case Outcome::kOk: limiter_.on_success(a.elapsed_ms); break;
    case Outcome::kThrottled:
      limiter_.on_congestion(started, "throttled (429)");
      congestion = true;
      break;
    case Outcome::kTimeout:
      limiter_.on_congestion(started, "timeout");
      congestion = true;
      break;
    case Outcome::kServerError:
      // 503 is how vLLM, TEI and proxies say "too busy"; a 500 is a fault, not a load signal.
      if (a.status == 503) {
        limiter_.on_congestion(started, "overloaded (503)");
        congestion = true;
      }
      break;
    default: break;
  }
  // HttpClient retries on its own; the retry must still fit under the limit just cut, or eight
  // throttled requests would all come back at once after their Retry-After. So the slot is given
  // up and taken again (waiting its turn) before the client sleeps and tries again.
  if (congestion && t_attempts != nullptr) {
    limiter_.release();
    limiter_.acquire();
  }
}

std::vector<HttpEmbedder::Batch> HttpEmbedder::make_batches(std::span<const std::string_view> texts) const {
  const bool ollama = opts_.api == HttpApi::kOllama;
  const std::string head = "{\"model\":" + dump_string(opts_.model) + ",\"input\":[";
  std::string tail = "]";
  if (ollama) {
    tail += std::string(",\"truncate\":") + (opts_.truncate ? "true" : "false");
    if (!opts_.keep_alive.empty()) {
      // A number of seconds goes as a number, a duration ("5m") as a string, as Ollama takes both.
      long long secs = 0;
      const auto& k = opts_.keep_alive;
      auto [p, ec] = std::from_chars(k.data(), k.data() + k.size(), secs);
      tail += ",\"keep_alive\":" + (ec == std::errc() && p == k.data() + k.size() ? k : dump_string(k));
    }
  } else {
    tail += ",\"encoding_format\":\"float\"";
  }
  if (opts_.dimensions != 0) tail += ",\"dimensions\":" + std::to_string(opts_.dimensions);
  tail += "}";

  std::vector<Batch> out;
  Batch cur;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string item = dump_string(texts[i]);
    const size_t with =
        (cur.count == 0 ? head.size() + tail.size() : cur.body.size() + 1 + tail.size()) + item.size();
    if (cur.count > 0 && (cur.count >= opts_.batch || with > opts_.max_request_bytes)) {
      cur.body += tail;
      out.push_back(std::move(cur));
      cur = Batch{};
    }
    if (cur.count == 0) {
      cur.first = i;
      cur.body = head;
    } else {
      cur.body += ',';
    }
    cur.body += item;
    ++cur.count;
  }
  if (cur.count > 0) {
    cur.body += tail;
    out.push_back(std::move(cur));
  }
  return out;
}

Status HttpEmbedder::answer_error(long status, std::string_view body) const {
  const bool ollama = opts_.api == HttpApi::kOllama;
  const std::string where = (ollama ? "ollama at " : "openai at ") + opts_.base_url;
  const std::string said = server_says(body);
  if (status == 404) {
    if (ollama && body.find("\"error\"") == std::string_view::npos) {
      return Status::not_found(where + " has no /api/embed (answered 404: " + said +
                               "): it needs Ollama 0.3.4 or newer, or the URL points at another server");
    }
    if (ollama) {
      return Status::not_found(where + ": model \"" + opts_.model + "\" is not there (" + said +
                               "): run `ollama pull " + opts_.model + "` on that machine");
    }
    return Status::not_found(where + ": POST /embeddings answered 404 (" + said + "): check model=" +
                             opts_.model + " (the name the server serves) and the URL's path prefix");
  }
  if (status == 401 || status == 403) {
    if (opts_.api_key.empty()) {
      return Status::invalid_argument(where + " answered " + std::to_string(status) + " (" + said +
                                      "): it wants an API key; set " + opts_.api_key_var);
    }
    return Status::invalid_argument(where + " answered " + std::to_string(status) + " (" + said +
                                    "): the API key in " + opts_.api_key_var + " was refused");
  }
  if (status == 413) {
    return Status::resource_limit(where + " refused a request as too large (413: " + said +
                                  "): lower max_request_bytes or batch in the embedder URI");
  }
  if (status == 400 || status == 422) {
    return Status::invalid_argument(where + " refused the request (" + std::to_string(status) + ": " + said +
                                    ")");
  }
  Status st = store::http_status_error(client_->options(), client_->base_url(),
                                       {.method = "POST", .path = ollama ? "/api/embed" : "/embeddings"},
                                       {.status = status, .body = std::string(body)});
  return st;
}

Result<std::string> HttpEmbedder::post_batch(const Batch& b) {
  const bool ollama = opts_.api == HttpApi::kOllama;
  store::HttpRequest req{.method = "POST", .path = ollama ? "/api/embed" : "/embeddings", .body = b.body};
  AttemptLog log;
  limiter_.acquire();
  t_attempts = &log;
  Result<store::HttpResponse> r = client_->send_any(req);
  t_attempts = nullptr;
  limiter_.release();
  if (!r.is_ok()) {
    const Status& st = r.status();
    std::string msg = st.message();
    if (log.last == store::HttpAttempt::Outcome::kConnectError) {
      msg += connect_hint(opts_.api);
    } else if (st.code() == Code::kTimeout) {
      msg += " (" + std::to_string(b.count) +
             " texts in one request: raise timeout_ms or lower batch in the "
             "embedder URI)";
    }
    return with_message(st, std::move(msg));
  }
  if (r->status < 200 || r->status >= 300) {
    Status st = answer_error(r->status, r->body);
    if (log.attempts > 1) st = st.with_context("after " + std::to_string(log.attempts) + " attempts");
    return st;
  }
  return std::move(r->body);
}

Status HttpEmbedder::send_batch(const Batch& b, float* out) {
  Result<std::string> body = post_batch(b);
  if (!body.is_ok()) return body.status();
  std::vector<float> vecs;
  size_t dim = dimension_;
  SLUICE_RETURN_IF_ERROR(parse_answer(b, *body, &dim, &vecs));
  std::memcpy(out, vecs.data(), vecs.size() * sizeof(float));
  return Status::ok();
}

Status HttpEmbedder::parse_answer(const Batch& b, std::string_view body, size_t* dim,
                                  std::vector<float>* out) const {
  const bool ollama = opts_.api == HttpApi::kOllama;
  auto nonsense = [&](const std::string& what) {
    // Retriable: a proxy's error page or a server mid-restart can answer well next time; the
    // stage's attempts bound it, and the dead letter keeps this message.
    return Status(ErrorClass::kRetriable, Code::kCorruption,
                  std::string(ollama ? "ollama at " : "openai at ") + opts_.base_url + " (model " +
                      opts_.model + ") answered nonsense: " + what);
  };
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return nonsense("not a JSON object (" + server_says(body) + ")");
  }
  // The vectors in input order, as JSON arrays (or, OpenAI, base64 float32 strings).
  std::vector<const json*> rows(b.count, nullptr);
  if (ollama) {
    auto it = j.find("embeddings");
    if (it == j.end() || !it->is_array()) return nonsense("no \"embeddings\" array");
    if (it->size() != b.count) {
      return nonsense("asked for " + std::to_string(b.count) + " vectors, got " + std::to_string(it->size()));
    }
    for (size_t i = 0; i < b.count; ++i) rows[i] = &(*it)[i];
  } else {
    auto it = j.find("data");
    if (it == j.end() || !it->is_array()) return nonsense("no \"data\" array");
    if (it->size() != b.count) {
      return nonsense("asked for " + std::to_string(b.count) + " vectors, got " + std::to_string(it->size()));
    }
    // Ordered by "index", not by position: the API promises the index, not the order.
    for (const json& d : *it) {
      if (!d.is_object() || !d.contains("index") || !d["index"].is_number_unsigned())
        return nonsense("an entry of \"data\" has no index");
      const size_t idx = d["index"].get<size_t>();
      if (idx >= b.count) return nonsense("index " + std::to_string(idx) + " of " + std::to_string(b.count));
      if (rows[idx] != nullptr) return nonsense("index " + std::to_string(idx) + " twice");
      auto e = d.find("embedding");
      if (e == d.end()) return nonsense("entry " + std::to_string(idx) + " has no \"embedding\"");
      rows[idx] = &*e;
    }
  }
  out->clear();
  std::string raw;
  for (size_t i = 0; i < b.count; ++i) {
    const json& row = *rows[i];
    size_t n = 0;
    const float* packed = nullptr;
    if (row.is_string()) {  // encoding_format=base64 from a server that ignored our "float"
      auto dec = base64_decode(row.get_ref<const std::string&>());
      if (!dec || dec->size() % sizeof(float) != 0)
        return nonsense("vector " + std::to_string(i) + " is bad base64");
      raw = std::move(*dec);
      n = raw.size() / sizeof(float);
      packed = reinterpret_cast<const float*>(raw.data());
    } else if (row.is_array()) {
      n = row.size();
    } else {
      return nonsense("vector " + std::to_string(i) + " is not an array of numbers");
    }
    if (n == 0) return nonsense("vector " + std::to_string(i) + " is empty");
    if (*dim == 0) {
      if (n > kMaxDimension) return nonsense("vectors of dimension " + std::to_string(n));
      *dim = n;
    }
    if (n != *dim) {
      // Not retriable: the model behind the name changed (or ignores `dimensions`), and vectors of
      // two sizes must never meet in one index.
      return Status::invalid_argument(
          std::string(ollama ? "ollama at " : "openai at ") + opts_.base_url + ": model " + opts_.model +
          " answered a vector of dimension " + std::to_string(n) +
          " where this embedder (and its index) uses " + std::to_string(*dim) +
          (opts_.dimensions != 0
               ? " (asked with dimensions=" + std::to_string(opts_.dimensions) +
                     ": does the model support it?)"
               : ": the model behind the name changed; embed into a new index, or restore the "
                 "model"));
    }
    const size_t base = out->size();
    out->resize(base + n);
    float* v = out->data() + base;
    double norm = 0;
    for (size_t d = 0; d < n; ++d) {
      double x;
      if (packed != nullptr) {
        std::memcpy(&v[d], packed + d, sizeof(float));
        x = v[d];
      } else {
        const json& e = row[d];
        if (!e.is_number()) return nonsense("vector " + std::to_string(i) + " holds a non-number");
        x = e.get<double>();
        v[d] = static_cast<float>(x);
      }
      if (!std::isfinite(x) || !std::isfinite(v[d]))
        return nonsense("vector " + std::to_string(i) + " holds " +
                        (std::isnan(x) ? "NaN" : "an infinite number"));
      norm += x * x;
    }
    // The interface promises unit vectors; most services send them, some (Ollama's older models) do not.
    if (norm > 0) {
      const double inv = 1.0 / std::sqrt(norm);
      for (size_t d = 0; d < n; ++d) v[d] = static_cast<float>(v[d] * inv);
    }
  }
  return Status::ok();
}

Status HttpEmbedder::learn_dimension() {
  const std::string_view probe[] = {kProbeText};
  std::vector<Batch> batches = make_batches(probe);
  const std::string ctx = "opening embedder " + opts_.uri + " (one probe request to learn the dimension)";
  Result<std::string> body = post_batch(batches[0]);
  if (!body.is_ok()) return body.status().with_context(ctx);
  std::vector<float> v;
  size_t dim = 0;
  SLUICE_RETURN_IF_ERROR(parse_answer(batches[0], *body, &dim, &v).with_context(ctx));
  dimension_ = dim;
  // Debug: `sluice search` opens an embedder per run, and its stderr is the user's.
  log::write(log::Level::kDebug, "embedder opened",
             {{"embedder", name()}, {"url", opts_.base_url}, {"dimension", dim}});
  return Status::ok();
}

Status HttpEmbedder::embed(std::span<const std::string_view> texts, std::vector<float>* out) {
  if (out == nullptr) return Status::invalid_argument("embed: out is null");
  if (texts.empty()) return Status::ok();
  std::vector<Batch> batches = make_batches(texts);
  const size_t base = out->size();
  out->resize(base + texts.size() * dimension_);
  float* dst = out->data() + base;
  auto describe = [&](size_t i) {
    const Batch& b = batches[i];
    return "request " + std::to_string(i + 1) + " of " + std::to_string(batches.size()) + " (texts " +
           std::to_string(b.first) + ".." + std::to_string(b.first + b.count - 1) + ")";
  };
  if (batches.size() == 1) {
    Status st = send_batch(batches[0], dst);
    if (!st.is_ok()) out->resize(base);
    return st;
  }
  // The calling thread and helpers take batches in turn; the limiter decides how many are on the
  // wire, so the helpers beyond the limit only wait. The first failure stops the others taking more.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= batches.size() || failed.load()) return;
      Status st = send_batch(batches[i], dst + batches[i].first * dimension_);
      if (!st.is_ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.is_ok()) first_error = st.with_context(describe(i));
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> helpers;
  const size_t want = std::min(batches.size(), opts_.concurrency.max) - 1;
  for (size_t i = 0; i < want; ++i) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // out of threads: the ones we have carry on
    }
  }
  work();
  for (auto& t : helpers) t.join();
  if (!first_error.is_ok()) {
    out->resize(base);
    return first_error;
  }
  return Status::ok();
}

}  // namespace sluice::embed
