// The S3 blob store; see s3_store.h. Layout: configuration (URI + environment), the HTTP layer
// (a curl handle pool, one request with retries), error translation, then the store and its writer.
#include "store/s3/s3_store.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "config/property.h"
#include "store/curl_handles.h"
#include "store/s3/sigv4.h"

namespace sluice::store::s3 {
namespace {

constexpr std::string_view kScheme = "s3://";
constexpr size_t kPartSize = 8u << 20;       // S3's minimum part is 5 MiB; 8 MiB is the SDKs' default
constexpr size_t kMaxErrorBody = 64u << 10;  // error bodies are short XML; more is not kept
constexpr size_t kMaxPooledHandles = 16;
constexpr int kBaseDelayMs = 100;
constexpr int kMaxDelayMs = 5000;

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// ---- Configuration -----------------------------------------------------------------------------

struct Config {
  std::string uri;  // as opened
  std::string bucket;
  std::string prefix;    // without leading or trailing '/'; may be empty
  std::string scheme;    // "http" or "https"
  std::string host;      // host[:port] of the endpoint
  std::string endpoint;  // scheme://host, for messages
  std::string region;
  bool path_style = true;
  int retries = 4;
  Credentials creds;

  std::string full_key(std::string_view key) const {
    return prefix.empty() ? std::string(key) : prefix + "/" + std::string(key);
  }
  std::string object_uri(std::string_view full) const {
    return std::string(kScheme) + bucket + "/" + std::string(full);
  }
  // The request's host and path (decoded) for an object key or, with an empty key, the bucket.
  std::string request_host() const { return path_style ? host : bucket + "." + host; }
  std::string request_path(std::string_view full) const {
    std::string p = path_style ? "/" + bucket : "";
    if (!full.empty() || !path_style) p += "/" + std::string(full);
    return p;
  }
};

Result<Config> parse_config(std::string_view uri) {
  auto bad = [&](const std::string& why) {
    return Status::invalid_argument("blob store URI " + quoted(uri) + ": " + why);
  };
  Config c;
  c.uri = std::string(uri);
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  c.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    std::string_view p = rest.substr(slash + 1);
    while (!p.empty() && p.back() == '/') p.remove_suffix(1);
    c.prefix = std::string(p);
  }
  if (c.bucket.empty()) return bad("no bucket; use s3://bucket[/prefix]");
  for (char ch : c.bucket) {
    if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
          ch == '-' || ch == '.')) {
      return bad("bucket " + quoted(c.bucket) + " may hold only lower-case letters, digits, '-' and '.'");
    }
  }
  if (!c.prefix.empty()) {
    Status st = check_blob_key(c.prefix);
    if (!st.is_ok()) return bad("the prefix: " + st.message());
  }

  std::string endpoint, region;
  int path_style = -1;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string k(kv.substr(0, eq));
    std::string v;
    if (eq != std::string_view::npos) {
      auto decoded = config::percent_decode(kv.substr(eq + 1), "the s3 URI's " + k);
      if (!decoded.is_ok()) return bad(decoded.status().message());
      v = std::move(decoded).value();
    }
    if (k == "endpoint") {
      endpoint = v;
    } else if (k == "region") {
      region = v;
    } else if (k == "path_style") {
      if (v != "0" && v != "1") return bad("path_style must be 0 or 1");
      path_style = v == "1";
    } else if (k == "retries") {
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > 20) return bad("retries must be 0..20");
      c.retries = static_cast<int>(n);
    } else {
      return bad("unknown parameter " + quoted(k) + "; accepted: endpoint, region, path_style, retries");
    }
  }

  if (region.empty()) {
    for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION", "OBS_REGION"}) {
      if (const char* v = env(name)) {
        region = v;
        break;
      }
    }
  }
  c.region = region.empty() ? "us-east-1" : region;
  bool aws = false;
  if (endpoint.empty()) {
    if (const char* v = env("AWS_ENDPOINT_URL")) {
      endpoint = v;
    } else if (const char* o = env("OBS_SERVER")) {
      endpoint = o;
    } else {
      endpoint = "https://s3." + c.region + ".amazonaws.com";
      aws = true;
    }
  }
  if (endpoint.find("://") == std::string::npos)
    endpoint = "https://" + endpoint;  // OBS_SERVER may be a host
  size_t sep = endpoint.find("://");
  c.scheme = endpoint.substr(0, sep);
  std::string host = endpoint.substr(sep + 3);
  while (!host.empty() && host.back() == '/') host.pop_back();
  if ((c.scheme != "http" && c.scheme != "https") || host.empty() || host.find('/') != std::string::npos ||
      host.find_first_of(" ?#@") != std::string::npos) {
    return bad("endpoint " + quoted(endpoint) + " is not http(s)://host[:port]");
  }
  c.host = host;
  c.endpoint = c.scheme + "://" + host;
  if (host.ends_with(".amazonaws.com")) aws = true;
  // Virtual-hosted addressing is AWS's way (path style is deprecated there); other servers (OBS
  // behind a custom name, MinIO, s3rver on an IP) are reached path style unless told otherwise.
  c.path_style = path_style >= 0 ? path_style == 1 : !aws || c.bucket.find('.') != std::string::npos;

  if (const char* id = env("AWS_ACCESS_KEY_ID"); id != nullptr && env("AWS_SECRET_ACCESS_KEY") != nullptr) {
    c.creds.access_key = id;
    c.creds.secret_key = env("AWS_SECRET_ACCESS_KEY");
    if (const char* t = env("AWS_SESSION_TOKEN")) c.creds.session_token = t;
  } else if (const char* oid = env("OBS_ACCESS_KEY"); oid != nullptr && env("OBS_SECRET_KEY") != nullptr) {
    c.creds.access_key = oid;
    c.creds.secret_key = env("OBS_SECRET_KEY");
  } else {
    return bad(
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
        "temporary ones), or OBS_ACCESS_KEY and OBS_SECRET_KEY");
  }
  return c;
}

// ---- XML ---------------------------------------------------------------------------------------

// libxml2 is C: documents are freed by this owner, nothing throws.
struct XmlDoc {
  explicit XmlDoc(std::string_view body)
      : doc(body.empty() ? nullptr
                         : xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
                                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)) {}
  ~XmlDoc() {
    if (doc != nullptr) xmlFreeDoc(doc);
  }
  XmlDoc(const XmlDoc&) = delete;
  XmlDoc& operator=(const XmlDoc&) = delete;
  xmlNode* root() const { return doc == nullptr ? nullptr : xmlDocGetRootElement(doc); }
  xmlDoc* doc;
};

bool named(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

std::string text_of(const xmlNode* n) {
  xmlChar* t = xmlNodeGetContent(n);
  std::string out = t == nullptr ? "" : reinterpret_cast<const char*>(t);
  xmlFree(t);
  return out;
}

std::string child_text(const xmlNode* parent, const char* name) {
  if (parent == nullptr) return {};
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (named(c, name)) return text_of(c);
  }
  return {};
}

// <Error><Code>..</Code><Message>..</Message></Error>, S3's error body (also inside a 200 answer
// to CompleteMultipartUpload).
bool parse_error_body(std::string_view body, Outcome& o) {
  XmlDoc x(body);
  xmlNode* root = x.root();
  if (root == nullptr || !named(root, "Error")) return false;
  o.s3_code = child_text(root, "Code");
  o.s3_message = child_text(root, "Message");
  return true;
}

// ---- Times -------------------------------------------------------------------------------------

// "Wed, 21 Oct 2015 07:28:00 GMT" (HTTP) -> "2015-10-21T07:28:00Z".
std::string rfc3339_from_http(const std::string& http) {
  struct tm tm {};
  if (::strptime(http.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return {};
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "2015-10-21T07:28:00.000Z" (a listing) -> "2015-10-21T07:28:00Z".
std::string rfc3339_from_iso(const std::string& iso) {
  if (iso.size() >= 19) return iso.substr(0, 19) + "Z";
  return iso;
}

std::string strip_quotes(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return s;
}

// ---- HTTP --------------------------------------------------------------------------------------

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init_once();
    xmlInitParser();  // once, before threads parse (libxml2's rule)
  });
}

// Where a request body comes from: memory, or a range of a file read with pread (so a retry can
// read it again). A file body hashes its bytes the first time they are read, in file order.
struct Body {
  std::string_view memory;
  int fd = -1;
  std::string_view path;  // of fd, for messages
  uint64_t offset = 0;
  uint64_t length = 0;
  Hasher* hasher = nullptr;  // file bodies: hashes the bytes at *hashed_upto, once
  uint64_t* hashed_upto = nullptr;

  uint64_t size() const { return fd >= 0 ? length : memory.size(); }
};

// One attempt's position in a Body.
struct BodyReader {
  const Body* body;
  uint64_t pos = 0;
  int read_errno = 0;
};

size_t read_cb(char* buf, size_t size, size_t n, void* user) {
  auto* rd = static_cast<BodyReader*>(user);
  const Body& b = *rd->body;
  size_t want = std::min<uint64_t>(size * n, b.size() - rd->pos);
  if (want == 0) return 0;
  if (b.fd < 0) {
    std::memcpy(buf, b.memory.data() + rd->pos, want);
    rd->pos += want;
    return want;
  }
  ssize_t r;
  do {
    r = ::pread(b.fd, buf, want, static_cast<off_t>(b.offset + rd->pos));
  } while (r < 0 && errno == EINTR);
  if (r <= 0) {
    rd->read_errno = r < 0 ? errno : ENODATA;  // 0: the file shrank under us
    return CURL_READFUNC_ABORT;
  }
  if (b.hasher != nullptr && b.offset + rd->pos == *b.hashed_upto) {
    b.hasher->update(std::string_view(buf, static_cast<size_t>(r)));
    *b.hashed_upto += static_cast<uint64_t>(r);
  }
  rd->pos += static_cast<uint64_t>(r);
  return static_cast<size_t>(r);
}

struct Request {
  std::string method = "GET";
  std::string key;  // the full object key; empty for the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // sent, not signed
  const Body* body = nullptr;
  // A download's bytes (2xx only) go here instead of into Response::body; reset() is called
  // before each retry so the sink starts over.
  std::function<Status(std::string_view)> sink;
  std::function<Status()> reset;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  Outcome outcome;  // filled when not 2xx or the transfer failed
};

struct Transfer {
  CURL* h;
  const Request* req;
  Response* resp;
  Status sink_status;
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300 && t->req->sink) {
    t->sink_status = t->req->sink(std::string_view(data, len));
    return t->sink_status.is_ok() ? len : 0;
  }
  if (code >= 200 && code < 300) {
    if (t->resp->body.empty()) {
      // One allocation of the announced size rather than doublings (a get() of 20 MiB peaked at
      // 52 MiB without it).
      curl_off_t announced = -1;
      curl_easy_getinfo(t->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
      if (announced > 0 && announced < (curl_off_t{1} << 32))
        t->resp->body.reserve(static_cast<size_t>(announced));
    }
    t->resp->body.append(data, len);
  } else if (t->resp->body.size() < kMaxErrorBody) {
    t->resp->body.append(data, std::min(len, kMaxErrorBody - t->resp->body.size()));
  }
  return len;
}

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  add_header_line(std::string_view(data, size * n), &static_cast<Transfer*>(user)->resp->headers);
  return size * n;
}

}  // namespace

// ---- Error translation ---------------------------------------------------------------------------

bool retriable(const Outcome& o) {
  if (o.curl_code != 0) {
    switch (o.curl_code) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_ABORTED_BY_CALLBACK:
      case CURLE_WRITE_ERROR:
      case CURLE_READ_ERROR: return false;
      default: return true;
    }
  }
  if (o.http_status >= 500 || o.http_status == 429) return true;
  return o.s3_code == "SlowDown" || o.s3_code == "RequestTimeout" || o.s3_code == "InternalError" ||
         o.s3_code == "ServiceUnavailable" || o.s3_code == "Throttling";
}

Status translate_error(std::string_view op, std::string_view object, std::string_view bucket,
                       std::string_view endpoint, const Outcome& o) {
  std::string msg = std::string(op) + " " + std::string(object) + " at " + std::string(endpoint) + ": ";
  if (o.curl_code != 0) {
    msg += curl_easy_strerror(static_cast<CURLcode>(o.curl_code));
    if (!o.curl_error.empty()) msg += " (" + o.curl_error + ")";
    switch (o.curl_code) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return Status::invalid_argument(msg +
                                        "; check the endpoint (?endpoint=, AWS_ENDPOINT_URL or OBS_SERVER)");
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
        return Status::invalid_argument(msg + "; the endpoint's TLS certificate is not trusted");
      case CURLE_OPERATION_TIMEDOUT: return Status::timeout(msg);
      default: return Status::unavailable(msg + "; the endpoint did not answer (after retries)");
    }
  }
  msg += "HTTP " + std::to_string(o.http_status);
  if (!o.s3_code.empty()) msg += " " + o.s3_code;
  if (!o.s3_message.empty()) msg += ": " + o.s3_message;
  if (o.s3_code == "NoSuchBucket") {
    return Status(ErrorClass::kBadInput, Code::kNotFound,
                  msg + "; bucket " + quoted(bucket) + " does not exist at " + std::string(endpoint));
  }
  if (o.http_status == 404) return Status(ErrorClass::kRetriable, Code::kNotFound, msg);
  if (o.http_status == 401 || o.http_status == 403 || o.s3_code == "AccessDenied" ||
      o.s3_code == "InvalidAccessKeyId" || o.s3_code == "SignatureDoesNotMatch") {
    std::string hint = o.s3_code == "RequestTimeTooSkewed"
                           ? "; this machine's clock is too far from the server's"
                           : "; check the credentials: OBS_ACCESS_KEY/OBS_SECRET_KEY (or AWS_ACCESS_KEY_ID/"
                             "AWS_SECRET_ACCESS_KEY) and the bucket's permissions";
    return Status::invalid_argument(msg + hint);
  }
  if (o.http_status == 412 || o.http_status == 409) return Status::already_exists(msg);
  if (retriable(o)) {
    return o.http_status == 503 || o.http_status == 429 || o.s3_code == "SlowDown"
               ? Status::busy(msg + " (after retries)")
               : Status::unavailable(msg + " (after retries)");
  }
  if (o.http_status == 400 && o.s3_code == "EntityTooLarge") return Status::too_large(msg);
  return Status::invalid_argument(msg);
}

namespace {

// ---- The store -----------------------------------------------------------------------------------

bool hash_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

Status check_hash_arg(std::string_view uri, std::string_view h) {
  if (h.empty()) return {};
  bool ok = h.size() == 32 && std::all_of(h.begin(), h.end(), [](char c) {
              return std::isxdigit(static_cast<unsigned char>(c));
            });
  if (ok) return {};
  return Status::invalid_argument("expected hash " + quoted(h) + " for blob " + quoted(uri) +
                                  " is not 32 hex digits");
}

class S3Store;

// Buffers up to one part; the first full part starts a multipart upload. Destroyed uncommitted,
// it aborts the upload, so nothing becomes visible.
class S3Writer final : public BlobWriter {
 public:
  S3Writer(S3Store& store, std::string key, std::string full)
      : store_(store), key_(std::move(key)), full_(std::move(full)) {}
  ~S3Writer() override;
  Status append(std::string_view bytes) override;
  Result<BlobRef> commit() override;
  uint64_t size() const override { return size_; }

 private:
  Status flush_part(std::string_view part);

  S3Store& store_;
  std::string key_, full_;
  std::string buffer_;
  Hasher hasher_;
  uint64_t size_ = 0;
  std::string upload_id_;
  std::vector<std::string> etags_;
  bool done_ = false;
  Status failed_;
};

class S3Store final : public BlobStore {
 public:
  explicit S3Store(Config c) : c_(std::move(c)) {}

  const Config& config() const { return c_; }

  // One request, signed afresh and retried with backoff while the outcome is retriable.
  // Non-2xx answers and transport errors come back as the translated Status.
  Result<Response> call(std::string_view op, const Request& req, std::string_view object) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0 && req.reset) SLUICE_RETURN_IF_ERROR(req.reset());
      Response resp;
      Status local = perform(req, resp);
      if (!local.is_ok()) return local.with_context(std::string(op) + " " + std::string(object));
      if (resp.outcome.curl_code == 0 && resp.status >= 200 && resp.status < 300) return resp;
      if (resp.outcome.curl_code == 0) {
        resp.outcome.http_status = resp.status;
        parse_error_body(resp.body, resp.outcome);
      }
      if (attempt >= c_.retries || !retriable(resp.outcome)) {
        return translate_error(op, object, c_.bucket, c_.endpoint, resp.outcome);
      }
      int delay = std::min(kMaxDelayMs, kBaseDelayMs << std::min(attempt, 10));
      delay = static_cast<int>(delay * (0.5 + std::uniform_real_distribution<double>(0, 1)(rng)));
      if (auto it = resp.headers.find("retry-after"); it != resp.headers.end()) {
        int secs = std::atoi(it->second.c_str());
        if (secs > 0) delay = std::min(secs * 1000, 10 * kMaxDelayMs);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
  }

  Result<BlobRef> put(std::string_view key, std::string_view bytes) override {
    SLUICE_RETURN_IF_ERROR(check_blob_key(key));
    const std::string full = c_.full_key(key);
    SLUICE_RETURN_IF_ERROR(put_object(full, bytes));
    return BlobRef{c_.object_uri(full), hash_hex(bytes), bytes.size()};
  }

  // One PUT of bytes held in memory (put(), and a writer below one part).
  Status put_object(const std::string& full, std::string_view bytes) {
    Body body;
    body.memory = bytes;
    Request req;
    req.method = "PUT";
    req.key = full;
    req.body = &body;
    return call("put", req, c_.object_uri(full)).status();
  }

  Result<std::unique_ptr<BlobWriter>> open_writer(std::string_view key, NewBlob mode) override {
    SLUICE_RETURN_IF_ERROR(check_blob_key(key));
    const std::string full = c_.full_key(key);
    if (mode == NewBlob::kNewKey) {
      // S3 has no portable create-if-absent; a HEAD catches a key handed out twice (the race
      // between two writers of one fresh random key is not a case that arises).
      auto st = stat(c_.object_uri(full));
      if (st.is_ok()) return Status::already_exists("blob " + quoted(key) + " already exists in " + uri());
      if (st.status().code() != Code::kNotFound) return st.status();
    }
    return std::unique_ptr<BlobWriter>(new S3Writer(*this, std::string(key), full));
  }

  Result<std::string> get(std::string_view uri, std::string_view expected_hash) override {
    SLUICE_ASSIGN_OR_RETURN(std::string full, key_of(uri));
    SLUICE_RETURN_IF_ERROR(check_hash_arg(uri, expected_hash));
    Request req;
    req.key = full;
    SLUICE_ASSIGN_OR_RETURN(Response resp, call("get", req, uri));
    if (!expected_hash.empty()) {
      std::string actual = hash_hex(resp.body);
      if (!hash_equal(actual, expected_hash)) return corrupt(uri, actual, expected_hash, resp.body.size());
    }
    return std::move(resp.body);
  }

  Result<BlobRef> fetch(std::string_view uri, const std::string& path,
                        std::string_view expected_hash) override {
    SLUICE_ASSIGN_OR_RETURN(std::string full, key_of(uri));
    SLUICE_RETURN_IF_ERROR(check_hash_arg(uri, expected_hash));
    static std::atomic<uint64_t> counter{0};
    const std::string tmp =
        path + ".sluice-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Status::invalid_argument("fetch " + std::string(uri) + ": create " + quoted(tmp) + ": " +
                                      std::strerror(errno));
    }
    auto hasher = std::make_unique<Hasher>();
    uint64_t size = 0;
    Request req;
    req.key = full;
    req.sink = [&](std::string_view bytes) -> Status {
      size_t done = 0;
      while (done < bytes.size()) {
        ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          const int err = errno;
          std::string m = "fetch " + std::string(uri) + ": write " + quoted(tmp) + ": " + std::strerror(err);
          return err == ENOSPC || err == EDQUOT ? Status::resource_limit(m) : Status::io_error(m);
        }
        done += static_cast<size_t>(w);
      }
      hasher->update(bytes);
      size += bytes.size();
      return {};
    };
    req.reset = [&]() -> Status {
      if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
        return Status::io_error("fetch " + std::string(uri) + ": truncate " + quoted(tmp) + ": " +
                                std::strerror(errno));
      }
      hasher = std::make_unique<Hasher>();
      size = 0;
      return {};
    };
    Status st = call("fetch", req, uri).status();
    if (::close(fd) != 0 && st.is_ok())
      st = Status::io_error("fetch " + std::string(uri) + ": close " + quoted(tmp));
    const std::string hash = hasher->hex();
    if (st.is_ok() && !expected_hash.empty() && !hash_equal(hash, expected_hash)) {
      st = corrupt(uri, hash, expected_hash, size);
    }
    if (st.is_ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
      st = Status::io_error("fetch " + std::string(uri) + ": rename to " + quoted(path) + ": " +
                            std::strerror(errno));
    }
    if (!st.is_ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    return BlobRef{std::string(uri), hash, size};
  }

  Result<BlobRef> put_file(std::string_view key, const std::string& path) override {
    SLUICE_RETURN_IF_ERROR(check_blob_key(key));
    const std::string full = c_.full_key(key);
    const std::string object = c_.object_uri(full);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      std::string why = fd < 0 ? std::strerror(errno) : "not a regular file";
      if (fd >= 0) ::close(fd);
      return Status::invalid_argument("put " + object + " from file " + quoted(path) + ": " + why);
    }
    const uint64_t total = static_cast<uint64_t>(st.st_size);
    Hasher hasher;
    uint64_t hashed = 0;
    auto body_for = [&](uint64_t off, uint64_t len) {
      Body b;
      b.fd = fd;
      b.path = path;
      b.offset = off;
      b.length = len;
      b.hasher = &hasher;
      b.hashed_upto = &hashed;
      return b;
    };
    Status result;
    if (total <= kPartSize) {
      Body body = body_for(0, total);
      Request req;
      req.method = "PUT";
      req.key = full;
      req.body = &body;
      result = call("put", req, object).status();
    } else {
      std::string upload_id;
      std::vector<std::string> etags;
      result = create_upload(full, upload_id);
      for (uint64_t off = 0; result.is_ok() && off < total; off += kPartSize) {
        Body body = body_for(off, std::min<uint64_t>(kPartSize, total - off));
        std::string etag;
        result = upload_part(full, upload_id, static_cast<int>(etags.size() + 1), body, etag);
        etags.push_back(std::move(etag));
      }
      if (result.is_ok()) result = complete_upload(full, upload_id, etags);
      if (!result.is_ok() && !upload_id.empty()) abort_upload(full, upload_id);
    }
    ::close(fd);
    if (!result.is_ok()) return result;
    if (hashed != total)
      return Status::invalid_argument("put " + object + ": file " + quoted(path) + " changed while read");
    return BlobRef{object, hasher.hex(), total};
  }

  Result<ObjectInfo> stat(std::string_view uri) override {
    SLUICE_ASSIGN_OR_RETURN(std::string full, key_of(uri));
    Request req;
    req.method = "HEAD";
    req.key = full;
    SLUICE_ASSIGN_OR_RETURN(Response resp, call("stat", req, uri));
    ObjectInfo info;
    info.key = relative(full);
    info.uri = c_.object_uri(full);
    info.size = std::strtoull(resp.headers["content-length"].c_str(), nullptr, 10);
    info.version = strip_quotes(resp.headers["etag"]);
    info.last_modified = rfc3339_from_http(resp.headers["last-modified"]);
    return info;
  }

  Result<ListPage> list(std::string_view key_prefix, std::string_view token, size_t max_keys) override {
    const std::string object = std::string(kScheme) + c_.bucket + "/" + c_.full_key(key_prefix) + "*";
    if (max_keys < 1 || max_keys > 1000) {
      return Status::invalid_argument("list " + object + ": max_keys " + std::to_string(max_keys) +
                                      " is not in 1..1000");
    }
    Request req;
    req.query = {
        {"list-type", "2"}, {"prefix", c_.full_key(key_prefix)}, {"max-keys", std::to_string(max_keys)}};
    if (!token.empty()) req.query.emplace_back("continuation-token", std::string(token));
    SLUICE_ASSIGN_OR_RETURN(Response resp, call("list", req, object));
    XmlDoc x(resp.body);
    xmlNode* root = x.root();
    if (root == nullptr || !named(root, "ListBucketResult")) {
      return Status::unavailable("list " + object + " at " + c_.endpoint +
                                 ": the answer is not a ListBucketResult");
    }
    ListPage page;
    bool truncated = false;
    for (xmlNode* n = root->children; n != nullptr; n = n->next) {
      if (named(n, "Contents")) {
        std::string full = child_text(n, "Key");
        ObjectInfo info;
        info.key = relative(full);
        info.uri = c_.object_uri(full);
        info.size = std::strtoull(child_text(n, "Size").c_str(), nullptr, 10);
        info.version = strip_quotes(child_text(n, "ETag"));
        info.last_modified = rfc3339_from_iso(child_text(n, "LastModified"));
        page.objects.push_back(std::move(info));
      } else if (named(n, "IsTruncated")) {
        truncated = text_of(n) == "true";
      } else if (named(n, "NextContinuationToken")) {
        page.next = text_of(n);
      }
    }
    if (!truncated) page.next.clear();
    return page;
  }

  Result<std::string> uri_of(std::string_view key) const override {
    SLUICE_RETURN_IF_ERROR(check_blob_key(key));
    return c_.object_uri(c_.full_key(key));
  }

  Status remove(std::string_view uri) override {
    SLUICE_ASSIGN_OR_RETURN(std::string full, key_of(uri));
    Request req;
    req.method = "DELETE";
    req.key = full;
    Status st = call("remove", req, uri).status();
    if (st.code() == Code::kNotFound && st.error_class() == ErrorClass::kRetriable)
      return {};  // already gone
    return st;
  }

  std::string uri() const override { return c_.uri; }

  // ---- Multipart upload, for the writer and put_file ----

  Status create_upload(const std::string& full, std::string& upload_id) {
    Request req;
    req.method = "POST";
    req.key = full;
    req.query = {{"uploads", ""}};
    Body empty;
    req.body = &empty;
    SLUICE_ASSIGN_OR_RETURN(Response resp, call("start multipart upload of", req, c_.object_uri(full)));
    XmlDoc x(resp.body);
    upload_id = child_text(x.root(), "UploadId");
    if (upload_id.empty()) {
      return Status::unavailable("start multipart upload of " + c_.object_uri(full) + " at " + c_.endpoint +
                                 ": the answer has no UploadId");
    }
    return {};
  }

  Status upload_part(const std::string& full, const std::string& upload_id, int number, const Body& body,
                     std::string& etag) {
    Request req;
    req.method = "PUT";
    req.key = full;
    req.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
    req.body = &body;  // perform() reads it from the start on every attempt
    SLUICE_ASSIGN_OR_RETURN(Response resp,
                            call("upload part " + std::to_string(number) + " of", req, c_.object_uri(full)));
    etag = resp.headers["etag"];
    return {};
  }

  Status complete_upload(const std::string& full, const std::string& upload_id,
                         const std::vector<std::string>& etags) {
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags.size(); ++i) {
      xml +=
          "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] + "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    Body body;
    body.memory = xml;
    Request req;
    req.method = "POST";
    req.key = full;
    req.query = {{"uploadId", upload_id}};
    req.body = &body;
    req.headers = {{"Content-Type", "application/xml"}};
    const std::string object = c_.object_uri(full);
    SLUICE_ASSIGN_OR_RETURN(Response resp, call("complete multipart upload of", req, object));
    // S3 may answer 200 and still fail the completion, with an <Error> body.
    Outcome o;
    o.http_status = resp.status;
    if (parse_error_body(resp.body, o))
      return translate_error("complete multipart upload of", object, c_.bucket, c_.endpoint, o);
    return {};
  }

  // Best effort: a leftover upload is invisible and bucket lifecycle rules expire it.
  void abort_upload(const std::string& full, const std::string& upload_id) {
    Request req;
    req.method = "DELETE";
    req.key = full;
    req.query = {{"uploadId", upload_id}};
    (void)call("abort multipart upload of", req, c_.object_uri(full));
  }

 private:
  Status perform(const Request& req, Response& resp) {
    global_init();
    CURL* h = pool_.acquire();
    if (h == nullptr) return Status::resource_limit("curl_easy_init failed");
    Transfer t{h, &req, &resp, {}};
    const std::string host = c_.request_host();
    const std::string path = c_.request_path(req.key);
    std::string url = c_.scheme + "://" + host + config::percent_encode(path, /*keep_slash=*/true);
    const std::string cq = canonical_query(req.query);
    if (!cq.empty()) url += "?" + cq;

    SignRequest sr;
    sr.method = req.method;
    sr.path = path;
    sr.query = req.query;
    sr.region = c_.region;
    sr.amz_date = amz_date(static_cast<long long>(std::time(nullptr)));
    sr.payload_hash = req.body != nullptr && req.body->fd < 0 ? sha256_hex(req.body->memory)
                      : req.body == nullptr                   ? sha256_hex("")
                                                              : std::string(kUnsignedPayload);
    sr.headers = {{"host", host}, {"x-amz-date", sr.amz_date}, {"x-amz-content-sha256", sr.payload_hash}};
    if (!c_.creds.session_token.empty())
      sr.headers.emplace_back("x-amz-security-token", c_.creds.session_token);
    const Signature sig = sign(sr, c_.creds);

    curl_slist* hdrs = nullptr;
    for (const auto& [k, v] : sr.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
    for (const auto& [k, v] : req.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
    // Blobs are bytes; without this curl would label a POST as a form.
    if (req.body != nullptr && req.headers.empty())
      hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    hdrs = curl_slist_append(hdrs, ("Authorization: " + sig.authorization).c_str());
    hdrs = curl_slist_append(hdrs, "Expect:");  // no 100-continue round trip
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled transfer fails after 60 s
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    BodyReader reader{req.body};
    const uint64_t body_size = req.body == nullptr ? 0 : req.body->size();
    if (req.body != nullptr) {
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt(h, CURLOPT_READDATA, &reader);
    }
    if (req.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    } else if (req.method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_size));
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    curl_slist_free_all(hdrs);
    pool_.release(h);
    // The local side failed, not the server: no retry.
    if (!t.sink_status.is_ok()) return t.sink_status;
    if (reader.read_errno != 0) {
      return Status::invalid_argument(
          "read file " + quoted(req.body->path) + ": " +
          (reader.read_errno == ENODATA ? "it shrank while being sent" : std::strerror(reader.read_errno)));
    }
    if (rc != CURLE_OK) {
      resp.outcome.curl_code = rc;
      resp.outcome.curl_error = errbuf;
    }
    return {};
  }

  // The full key of a blob URI in this store's bucket (any key of the bucket is accepted).
  Result<std::string> key_of(std::string_view uri) const {
    const std::string bucket_prefix = std::string(kScheme) + c_.bucket + "/";
    if (!uri.starts_with(kScheme)) {
      return Status::invalid_argument("blob URI " + quoted(uri) + " is not an s3:// URI; this store is " +
                                      c_.uri);
    }
    if (!uri.starts_with(bucket_prefix)) {
      return Status::invalid_argument("blob URI " + quoted(uri) + " is not in bucket " + quoted(c_.bucket) +
                                      " of this store (" + c_.uri + ")");
    }
    std::string key(uri.substr(bucket_prefix.size()));
    if (key.empty() || key.front() == '/')
      return Status::invalid_argument("blob URI " + quoted(uri) + " names no object");
    return key;
  }

  std::string relative(const std::string& full) const {
    if (c_.prefix.empty()) return full;
    const std::string p = c_.prefix + "/";
    return full.starts_with(p) ? full.substr(p.size()) : full;
  }

  static Status corrupt(std::string_view uri, std::string_view actual, std::string_view expected,
                        uint64_t size) {
    return Status::corruption("blob " + quoted(uri) + " is corrupt: its bytes hash to " +
                              std::string(actual) + ", expected " + std::string(expected) + " (" +
                              std::to_string(size) + " bytes)");
  }

  const Config c_;
  CurlHandlePool pool_{kMaxPooledHandles};
};

S3Writer::~S3Writer() {
  if (!done_ && !upload_id_.empty()) store_.abort_upload(full_, upload_id_);
}

Status S3Writer::flush_part(std::string_view part) {
  if (upload_id_.empty()) SLUICE_RETURN_IF_ERROR(store_.create_upload(full_, upload_id_));
  Body body;
  body.memory = part;
  std::string etag;
  SLUICE_RETURN_IF_ERROR(
      store_.upload_part(full_, upload_id_, static_cast<int>(etags_.size() + 1), body, etag));
  etags_.push_back(std::move(etag));
  return {};
}

Status S3Writer::append(std::string_view bytes) {
  if (done_) return Status::internal("blob writer for " + quoted(key_) + " is closed");
  if (!failed_.is_ok()) return failed_;
  hasher_.update(bytes);
  size_ += bytes.size();
  // Whole parts straight from the caller's bytes when the buffer is empty; otherwise fill it.
  while (!bytes.empty()) {
    if (buffer_.empty() && bytes.size() >= kPartSize) {
      failed_ = flush_part(bytes.substr(0, kPartSize));
      bytes.remove_prefix(kPartSize);
    } else {
      size_t take = std::min(bytes.size(), kPartSize - buffer_.size());
      buffer_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (buffer_.size() == kPartSize) {
        failed_ = flush_part(buffer_);
        buffer_.clear();
      }
    }
    if (!failed_.is_ok()) return failed_;
  }
  return {};
}

Result<BlobRef> S3Writer::commit() {
  if (done_) return Status::internal("blob writer for " + quoted(key_) + " is closed");
  if (!failed_.is_ok()) return failed_;
  const std::string object = store_.config().object_uri(full_);
  if (upload_id_.empty()) {
    SLUICE_RETURN_IF_ERROR(store_.put_object(full_, buffer_));  // below one part: a single PUT
  } else {
    if (!buffer_.empty()) SLUICE_RETURN_IF_ERROR(flush_part(buffer_));
    SLUICE_RETURN_IF_ERROR(store_.complete_upload(full_, upload_id_, etags_));
  }
  done_ = true;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return BlobRef{object, hasher_.hex(), size_};
}

}  // namespace

Result<std::unique_ptr<BlobStore>> open_s3_store(std::string_view uri) {
  SLUICE_ASSIGN_OR_RETURN(Config c, parse_config(uri));
  global_init();
  return std::unique_ptr<BlobStore>(new S3Store(std::move(c)));
}

}  // namespace sluice::store::s3
