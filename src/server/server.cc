// The routes of docs/http_api.md on cpp-httplib. Uploads stream to the blob store (a request body
// is never held whole); the answer waits only for the blob's fsync and the queue's acknowledgement
// of the task. Status is read from the StatusStore, and the documents uploaded in the last moments
// (that the follower has not stored yet) from a small in-memory table, so a GET right after a POST
// already finds its document.
#include "server/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/clock.h"
#include "base/log.h"
#include "base/utf8.h"
#include "base/version.h"
#include "pipeline/envelope.h"
#include "pipeline/read_to_end.h"
#include "pipeline/sources.h"
#include "pipeline/stages.h"
#include "server/assets.h"
#include "server/metrics.h"
#include "server/status_follower.h"
#include "server/status_store.h"
#include "store/blob_store.h"

namespace sluice::server {
namespace {

using nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxFieldBytes = 64 * 1024;  // a multipart form field that is not a file
constexpr size_t kMaxRecentUploads = 20000;   // uploads remembered until the follower has them
constexpr size_t kMaxFilenameBytes = 255;
constexpr size_t kMaxDocIdBytes = 128;
constexpr int kRateWindowS = 10;

// Sets a counter to a total counted elsewhere (the stages' own stats); totals only grow.
void mirror(Counter& c, double total) {
  if (total > c.value()) c.inc(total - c.value());
}

int64_t wall_ms() {
  return wall_clock_ms();
}
std::string iso_ms(int64_t ms) {
  return iso8601_utc(ms);
}

// The HTTP status for an error: what a client should do differs by class.
int http_status_for(const Status& st) {
  if (st.code() == Code::kTooLarge) return 413;
  switch (st.error_class()) {
    case ErrorClass::kBadInput:
      if (st.code() == Code::kNotFound) return 404;
      if (st.code() == Code::kTooLarge) return 413;
      if (st.code() == Code::kAlreadyExists || st.code() == Code::kBusy) return 409;
      return 400;
    case ErrorClass::kResourceLimit: return 429;
    case ErrorClass::kRetriable: return 503;
    default: return 500;
  }
}

void send_json(httplib::Response& res, int status, const ordered_json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const Status& st) {
  const int code = http_status_for(st);
  if (code == 429 || code == 503) res.set_header("Retry-After", "1");
  send_json(res, code,
            {{"error", {{"class", error_class_name(st.error_class())}, {"message", st.message()}}}});
}

// The route a path belongs to, for the metrics' labels (never the raw path: ids would explode them).
std::string route_of(const std::string& path) {
  if (path == "/" || path == "/index.html") return "/";
  if (path.starts_with("/v1/documents/"))
    return path.ends_with("/retry") ? "/v1/documents/{id}/retry" : "/v1/documents/{id}";
  static const char* known[] = {"/v1/documents",  "/v1/search", "/v1/stats", "/v1/dlq",
                                "/v1/dlq/replay", "/healthz",   "/readyz",   "/metrics"};
  for (const char* k : known) {
    if (path == k) return k;
  }
  return "other";
}

// A filename as the user gave it, reduced to its last path component; refused when it cannot be
// one (empty, not UTF-8, control characters, too long).
Result<std::string> clean_filename(std::string_view name) {
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    return Status::invalid_argument(
        "the file has no name: give ?filename=NAME or a filename in the multipart part");
  }
  if (name.size() > kMaxFilenameBytes)
    return Status::invalid_argument("the filename is longer than 255 bytes");
  if (!utf8::is_valid(name)) return Status::invalid_argument("the filename is not valid UTF-8");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Status::invalid_argument("the filename contains a control character");
  }
  return std::string(name);
}

Status check_doc_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxDocIdBytes) {
    return Status::invalid_argument("doc_id must be 1 to 128 characters");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':';
    if (!ok)
      return Status::invalid_argument("doc_id '" + std::string(id) +
                                      "' may hold only letters, digits, '-', '_', '.' and ':'");
  }
  return {};
}

Result<nlohmann::json> parse_metadata(std::string_view text) {
  if (text.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::invalid_argument("metadata is not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("metadata must be a JSON object");
  return j;
}

// The file's extension for the stored name (the parsers pick a format by it): ASCII letters and
// digits only, lower-cased, at most 10; anything else keeps no extension (content sniffing decides).
std::string stored_extension(std::string_view filename) {
  size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || filename.size() - dot - 1 > 10) return "";
  std::string ext = ".";
  for (char c : filename.substr(dot + 1)) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "";
    ext += c;
  }
  return ext.size() > 1 ? ext : "";
}

// Waits for one message's delivery report.
struct DeliveryWait {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
};

// One file of an upload, once its bytes are stored.
struct StoredFile {
  std::string filename;
  store::BlobRef blob;
};

ordered_json doc_json(const DocumentStatus& d, bool with_timeline) {
  ordered_json j = {{"doc_id", d.doc_id},
                    {"filename", d.filename},
                    {"source", d.source},
                    {"status", d.stuck ? "stuck" : doc_status_name(d.status)},
                    {"stage_status", doc_status_name(d.status)},
                    {"stuck", d.stuck},
                    {"attempts", d.attempts},
                    {"chunks", d.chunks},
                    {"pages", d.pages},
                    {"version", d.version},
                    {"trace_id", d.trace_id}};
  if (d.status == DocStatus::kFailed || !d.error_class.empty()) {
    j["error"] = {{"class", d.error_class}, {"message", d.error_message}};
  } else {
    j["error"] = nullptr;
  }
  if (!d.reason.empty()) j["reason"] = d.reason;
  j["created_at"] = iso_ms(d.created_ms);
  j["updated_at"] = iso_ms(d.updated_ms);
  if (with_timeline) {
    ordered_json t = ordered_json::array();
    for (const auto& e : d.timeline) {
      ordered_json item = {{"status", e.status}, {"at", iso_ms(e.at_ms)}};
      if (e.attempt > 1) item["attempt"] = e.attempt;
      t.push_back(std::move(item));
    }
    j["timeline"] = std::move(t);
  }
  return j;
}

// Connections waiting to be accepted (the kernel caps it at net.core.somaxconn).
constexpr int kListenBacklog = 4096;

}  // namespace

struct Server::Impl {
  queue::Queue& q;
  pipeline::Pipeline& p;
  ServerOptions opts;
  const SteadyClock::time_point started = SteadyClock::now();

  httplib::Server http;
  int listen_fd = -1;  // http's listening socket (owned by it), noted when it is made
  std::thread listener;
  std::unique_ptr<store::BlobStore> store;
  std::unique_ptr<StatusStore> status;
  std::unique_ptr<StatusFollower> follower;
  std::unique_ptr<queue::Producer> producer;
  MetricsRegistry metrics;

  // Uploads being written, and the admission limit.
  std::atomic<size_t> uploads_in_progress{0};
  Counter* uploads_accepted = nullptr;
  Counter* uploads_rejected = nullptr;
  Counter* upload_bytes = nullptr;
  Counter* queue_send_errors = nullptr;

  // Recently uploaded documents the follower may not have stored yet.
  std::mutex recent_mu;
  std::unordered_map<std::string, DocumentStatus> recent;
  std::deque<std::string> recent_order;

  // Per-stage figures, refreshed once a second by the sampler (the API and /metrics read these).
  struct StageSnapshot {
    std::string name, topic, group;
    int64_t lag = 0;
    uint64_t processed = 0, retried = 0, dead_lettered = 0, in_flight = 0;
    double per_s = 0;
  };
  std::mutex snap_mu;
  std::vector<StageSnapshot> stages;                                       // guarded by snap_mu
  std::map<std::string, std::deque<std::pair<double, uint64_t>>> history;  // stage -> (t, processed)
  std::vector<queue::GroupPartition> lag_rows;  // guarded by snap_mu, with their group
  std::vector<std::string> lag_groups;
  std::thread sampler;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;

  Impl(queue::Queue& q_, pipeline::Pipeline& p_, ServerOptions o) : q(q_), p(p_), opts(std::move(o)) {}

  int64_t stuck_before_ms() const { return wall_ms() - opts.settings.stuck_after.count(); }

  // --- uploads ---

  Status admit() {
    if (uploads_in_progress.fetch_add(1) >= opts.settings.max_uploads_in_progress) {
      uploads_in_progress.fetch_sub(1);
      return Status::resource_limit("too many uploads in progress (max_uploads_in_progress = " +
                                    std::to_string(opts.settings.max_uploads_in_progress) +
                                    "); try again after Retry-After seconds");
    }
    return {};
  }

  std::string blob_key(const std::string& doc_id, const std::string& filename) {
    // A directory per day and one of 64 beneath it by the random part: concurrent uploads queue on
    // a directory's lock, and ext4 spreads directories over its block groups. The random part also
    // lets two uploads of one doc_id coexist until the older run has finished with its file.
    std::string day = iso_ms(wall_ms()).substr(0, 10);
    std::string safe_id;
    for (char c : doc_id) safe_id += (c == ':' ? '_' : c);
    const std::string rnd = pipeline::random_id();
    static constexpr char kHex[] = "0123456789abcdef";
    const int bucket = (std::stoi(rnd.substr(0, 2), nullptr, 16)) % 64;
    return "uploads/" + day + "/" + kHex[bucket / 16] + kHex[bucket % 16] + "/" + safe_id + "-" +
           rnd.substr(2, 10) + stored_extension(filename);
  }

  Result<std::unique_ptr<store::BlobWriter>> open_upload(const std::string& filename,
                                                         const std::string& doc_id) {
    return store->open_writer(blob_key(doc_id, filename), store::BlobStore::NewBlob::kNewKey);
  }

  Status check_file_size(uint64_t size) const {
    if (size > p.settings().max_file_size) {
      return Status(
          ErrorClass::kResourceLimit, Code::kTooLarge,
          "the file is larger than max_file_size (" + std::to_string(p.settings().max_file_size) + " bytes)");
    }
    return {};
  }

  // Puts one task per stored file on doc_upload and waits for every acknowledgement.
  Result<ordered_json> enqueue(std::vector<StoredFile>& files, const std::string& given_doc_id,
                               const nlohmann::json& metadata) {
    ordered_json docs = ordered_json::array();
    std::vector<std::unique_ptr<DeliveryWait>> waits;
    std::vector<pipeline::Task> tasks;
    const std::string now = pipeline::now_iso8601();
    for (auto& f : files) {
      pipeline::Task t;
      if (pipeline::is_bucket_uri(f.blob.uri)) {  // --store s3://: the parse stage downloads it
        t.source.uri = f.blob.uri;
        auto where = pipeline::parse_bucket_uri(f.blob.uri);
        if (where.is_ok()) {
          t.source.bucket = where->bucket;
          t.source.key = where->prefix;
        }
      } else {
        t.source.uri = "file://" + f.blob.uri.substr(f.blob.uri.starts_with("file:") ? 5 : 0);
        t.source.key = f.filename;
      }
      t.doc_id = given_doc_id.empty() ? pipeline::doc_id_for("upload://" + f.filename) : given_doc_id;
      t.size = f.blob.size;
      t.version = f.blob.hash;
      t.trace_id = pipeline::random_id();
      t.generated_at = now;
      t.metadata = metadata;
      t.metadata["upload"] = true;
      t.metadata["filename"] = f.filename;
      t.metadata["size"] = f.blob.size;
      tasks.push_back(std::move(t));
    }
    for (const auto& t : tasks) {
      pipeline::Output out;
      out.topic = pipeline::kTopicUpload;
      out.key = t.doc_id;
      out.value = pipeline::to_json(t);
      out.headers = pipeline::standard_headers(t.trace_id);
      auto w = std::make_unique<DeliveryWait>();
      auto sent = pipeline::send_output(*producer, out, w.get());
      if (!sent.is_ok()) {
        queue_send_errors->inc();
        wait_all(waits);
        return sent.status().with_context("queueing the task");
      }
      waits.push_back(std::move(w));
    }
    const auto deadline = SteadyClock::now() + opts.settings.upload_timeout;
    for (auto& w : waits) {
      std::unique_lock<std::mutex> lock(w->mu);
      if (!w->cv.wait_until(lock, deadline, [&] { return w->done; })) {
        queue_send_errors->inc();
        // The callback still holds the pointer: hand the waits over so they outlive it.
        lock.unlock();
        abandon(std::move(waits));
        return Status::timeout("the queue did not acknowledge the task within upload_timeout (" +
                               std::to_string(opts.settings.upload_timeout.count()) + " ms)");
      }
      if (!w->status.is_ok()) {
        queue_send_errors->inc();
        lock.unlock();
        wait_all(waits);
        return w->status.with_context("queueing the task");
      }
    }
    const int64_t at = wall_ms();
    for (size_t i = 0; i < tasks.size(); ++i) {
      const auto& t = tasks[i];
      DocumentStatus d;
      d.doc_id = t.doc_id;
      d.filename = files[i].filename;
      d.source = t.source.uri;
      d.trace_id = t.trace_id;
      d.created_ms = d.updated_ms = at;
      d.attempts = 1;
      remember(d);
      docs.push_back({{"doc_id", t.doc_id},
                      {"filename", files[i].filename},
                      {"size", t.size},
                      {"status", "queued"},
                      {"trace_id", t.trace_id},
                      {"status_url", "/v1/documents/" + t.doc_id}});
      uploads_accepted->inc();
      upload_bytes->inc(static_cast<double>(t.size));
    }
    return ordered_json{{"documents", std::move(docs)}};
  }

  // Waits (bounded) for reports still due, so no callback touches a freed wait.
  void wait_all(std::vector<std::unique_ptr<DeliveryWait>>& waits) {
    const auto deadline = SteadyClock::now() + opts.settings.upload_timeout;
    for (auto& w : waits) {
      std::unique_lock<std::mutex> lock(w->mu);
      if (!w->cv.wait_until(lock, deadline, [&] { return w->done; })) {
        lock.unlock();
        abandon(std::move(waits));
        return;
      }
    }
  }
  // Keeps waits whose reports never came alive for the life of the server (rare: a stalled queue).
  std::mutex abandoned_mu;
  std::vector<std::unique_ptr<DeliveryWait>> abandoned;
  void abandon(std::vector<std::unique_ptr<DeliveryWait>> waits) {
    std::lock_guard<std::mutex> lock(abandoned_mu);
    for (auto& w : waits) abandoned.push_back(std::move(w));
  }

  void remember(const DocumentStatus& d) {
    std::lock_guard<std::mutex> lock(recent_mu);
    if (recent.size() >= kMaxRecentUploads && !recent_order.empty()) {
      recent.erase(recent_order.front());
      recent_order.pop_front();
    }
    if (recent.insert_or_assign(d.doc_id, d).second) recent_order.push_back(d.doc_id);
  }

  void handle_upload(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    if (Status st = admit(); !st.is_ok()) {
      uploads_rejected->inc();
      res.set_header("Connection", "close");  // the body is not read
      return send_error(res, st);
    }
    struct Release {
      std::atomic<size_t>& n;
      ~Release() { n.fetch_sub(1); }
    } release{uploads_in_progress};
    Status st =
        req.is_multipart_form_data() ? upload_multipart(req, res, reader) : upload_raw(req, res, reader);
    if (!st.is_ok()) {
      uploads_rejected->inc();
      send_error(res, st);
    }
  }

  Status upload_raw(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    if (!req.has_param("filename")) {
      return Status::invalid_argument("a raw upload needs ?filename=NAME (or send multipart/form-data)");
    }
    SLUICE_ASSIGN_OR_RETURN(std::string filename, clean_filename(req.get_param_value("filename")));
    std::string doc_id = req.get_param_value("doc_id");
    if (req.has_param("doc_id")) SLUICE_RETURN_IF_ERROR(check_doc_id(doc_id));
    SLUICE_ASSIGN_OR_RETURN(nlohmann::json metadata, parse_metadata(req.get_param_value("metadata")));
    if (req.has_header("Content-Length")) {
      uint64_t length = 0;
      try {
        length = std::stoull(req.get_header_value("Content-Length"));
      } catch (...) {
        return Status::invalid_argument("Content-Length is not a number");
      }
      if (length > opts.settings.max_body_bytes) {
        return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                      "the request body is larger than max_body_bytes (" +
                          std::to_string(opts.settings.max_body_bytes) + " bytes)");
      }
      SLUICE_RETURN_IF_ERROR(check_file_size(length));
    }
    SLUICE_ASSIGN_OR_RETURN(auto writer, open_upload(filename, doc_id.empty() ? "upload" : doc_id));
    Status failed;
    bool ok = reader([&](const char* data, size_t len) {
      failed = writer->append({data, len});
      if (failed.is_ok()) failed = check_file_size(writer->size());
      return failed.is_ok();
    });
    if (!failed.is_ok()) return failed;
    if (!ok) return Status::invalid_argument("the request body could not be read to its end");
    SLUICE_ASSIGN_OR_RETURN(store::BlobRef blob, writer->commit());
    std::vector<StoredFile> files = {{filename, blob}};
    return answer(res, files, doc_id, metadata);
  }

  Status upload_multipart(const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& reader) {
    std::vector<StoredFile> files;
    std::unique_ptr<store::BlobWriter> writer;
    std::string current_name;
    std::map<std::string, std::string> fields;
    std::string* field = nullptr;
    Status failed;
    auto finish_file = [&]() -> Status {
      if (!writer) return {};
      auto blob = writer->commit();
      writer.reset();
      if (!blob.is_ok()) return blob.status();
      files.push_back({current_name, *blob});
      return {};
    };
    bool ok = reader(
        [&](const httplib::MultipartFormData& part) {
          failed = finish_file();
          field = nullptr;
          if (!failed.is_ok()) return false;
          if (part.filename.empty()) {
            field = &fields[part.name];
            field->clear();
            return true;
          }
          auto name = clean_filename(part.filename);
          if (!name.is_ok()) {
            failed = name.status();
            return false;
          }
          current_name = *name;
          auto w = open_upload(current_name, "upload");
          if (!w.is_ok()) {
            failed = w.status();
            return false;
          }
          writer = std::move(*w);
          return true;
        },
        [&](const char* data, size_t len) {
          if (field) {
            if (field->size() + len > kMaxFieldBytes) {
              failed = Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                              "a multipart form field is larger than 64 KiB");
              return false;
            }
            field->append(data, len);
            return true;
          }
          if (!writer) return true;
          failed = writer->append({data, len});
          if (failed.is_ok()) failed = check_file_size(writer->size());
          return failed.is_ok();
        });
    if (failed.is_ok() && ok) failed = finish_file();
    // Anything that fails removes the files stored so far: an upload is taken whole or not at all.
    auto discard = [&] {
      for (const auto& f : files) (void)store->remove(f.blob.uri);
    };
    if (!failed.is_ok()) {
      discard();
      return failed;
    }
    if (!ok) {
      discard();
      return Status::invalid_argument(
          "malformed multipart/form-data body (check the boundary and part headers)");
    }
    if (files.empty()) {
      return Status::invalid_argument("the multipart body holds no file (a part with a filename)");
    }
    std::string doc_id = fields.count("doc_id") ? fields["doc_id"] : "";
    Status st;
    if (fields.count("doc_id")) st = check_doc_id(doc_id);
    if (st.is_ok() && !doc_id.empty() && files.size() > 1) {
      st = Status::invalid_argument("doc_id can only be given with a single file; this upload has " +
                                    std::to_string(files.size()));
    }
    auto metadata = parse_metadata(fields.count("metadata") ? fields["metadata"] : "");
    if (st.is_ok() && !metadata.is_ok()) st = metadata.status();
    if (!st.is_ok()) {
      discard();
      return st;
    }
    st = answer(res, files, doc_id, *metadata);
    if (!st.is_ok()) discard();
    return st;
  }

  Status answer(httplib::Response& res, std::vector<StoredFile>& files, const std::string& doc_id,
                const nlohmann::json& metadata) {
    auto body = enqueue(files, doc_id, metadata);
    if (!body.is_ok()) {
      for (const auto& f : files) (void)store->remove(f.blob.uri);
      return body.status();
    }
    send_json(res, 202, *body);
    return {};
  }

  // --- documents ---

  Result<std::optional<DocumentStatus>> find(const std::string& doc_id, bool* from_recent) {
    SLUICE_ASSIGN_OR_RETURN(auto d, status->get(doc_id, stuck_before_ms()));
    std::lock_guard<std::mutex> lock(recent_mu);
    auto it = recent.find(doc_id);
    if (d) {
      // Stored: the follower has it; a newer upload still on its way shows as queued.
      if (it != recent.end() && it->second.trace_id != d->trace_id && it->second.created_ms > d->updated_ms) {
        *from_recent = true;
        return std::optional<DocumentStatus>(it->second);
      }
      return d;
    }
    if (it == recent.end()) return d;
    *from_recent = true;
    return std::optional<DocumentStatus>(it->second);
  }

  void get_document(const httplib::Request& req, httplib::Response& res) {
    bool recent_only = false;
    auto d = find(req.matches[1], &recent_only);
    if (!d.is_ok()) return send_error(res, d.status());
    if (!*d)
      return send_error(res, Status::not_found("no document with doc_id " + std::string(req.matches[1])));
    ordered_json j = doc_json(**d, true);
    if (recent_only)
      j["timeline"] = ordered_json::array({{{"status", "queued"}, {"at", iso_ms((*d)->created_ms)}}});
    send_json(res, 200, j);
  }

  void list_documents(const httplib::Request& req, httplib::Response& res) {
    ListQuery q;
    q.stuck_before_ms = stuck_before_ms();
    if (req.has_param("status")) {
      std::string s = req.get_param_value("status");
      if (s == "stuck") {
        q.stuck = true;
      } else if (auto st = parse_doc_status(s)) {
        q.status = *st;
      } else {
        return send_error(res, Status::invalid_argument("unknown status '" + s +
                                                        "'; use queued, retrying, parsed, embedded, indexed, "
                                                        "failed, skipped or stuck"));
      }
    }
    if (req.has_param("limit")) {
      int64_t n = -1;
      try {
        size_t used = 0;
        std::string v = req.get_param_value("limit");
        n = std::stoll(v, &used);
        if (used != v.size()) n = -1;
      } catch (...) {
      }
      if (n < 1 || n > 1000)
        return send_error(res, Status::invalid_argument("limit must be a number from 1 to 1000"));
      q.limit = static_cast<size_t>(n);
    }
    if (req.has_param("cursor")) {
      try {
        q.before_seq = std::stoll(req.get_param_value("cursor"));
      } catch (...) {
        return send_error(res, Status::invalid_argument("cursor is not one this API gave out"));
      }
    }
    auto page = status->list(q);
    if (!page.is_ok()) return send_error(res, page.status());
    ordered_json docs = ordered_json::array();
    for (const auto& d : page->documents) docs.push_back(doc_json(d, false));
    ordered_json j = {{"documents", std::move(docs)}};
    if (page->next_seq) j["next_cursor"] = std::to_string(*page->next_seq);
    send_json(res, 200, j);
  }

  void retry_document(const httplib::Request& req, httplib::Response& res) {
    const std::string doc_id = req.matches[1];
    auto d = status->get(doc_id, stuck_before_ms());
    if (!d.is_ok()) return send_error(res, d.status());
    if (!*d) return send_error(res, Status::not_found("no document with doc_id " + doc_id));
    const DocumentStatus& doc = **d;
    if (!is_final(doc.status) && !doc.stuck) {
      return send_error(res, Status(ErrorClass::kBadInput, Code::kBusy,
                                    "document " + doc_id + " is " + std::string(doc_status_name(doc.status)) +
                                        ": only failed, skipped or stuck documents can be retried"));
    }
    if (doc.status == DocStatus::kIndexed) {
      return send_error(res, Status(ErrorClass::kBadInput, Code::kBusy,
                                    "document " + doc_id + " is indexed; upload it again to replace it"));
    }
    auto task = pipeline::parse_task(doc.task_json);
    if (!task.is_ok()) {
      return send_error(
          res, Status::invalid_argument("document " + doc_id +
                                        " has no task to send again (it was not seen on doc_upload)"));
    }
    task->trace_id = pipeline::random_id();
    task->generated_at = pipeline::now_iso8601();
    task->version.clear();  // parse it again even if the content looks the same
    pipeline::Output out{pipeline::kTopicUpload, task->doc_id, pipeline::to_json(*task),
                         pipeline::standard_headers(task->trace_id)};
    auto w = std::make_unique<DeliveryWait>();
    auto sent = pipeline::send_output(*producer, out, w.get());
    if (!sent.is_ok()) return send_error(res, sent.status());
    std::vector<std::unique_ptr<DeliveryWait>> waits;
    waits.push_back(std::move(w));
    wait_all(waits);
    if (waits.empty() || !waits[0]->done)
      return send_error(res, Status::timeout("the queue did not acknowledge the retry"));
    if (!waits[0]->status.is_ok()) return send_error(res, waits[0]->status);
    DocumentStatus again = doc;
    again.trace_id = task->trace_id;
    again.created_ms = again.updated_ms = wall_ms();
    remember(again);
    send_json(res, 202,
              {{"doc_id", doc_id},
               {"status", "queued"},
               {"trace_id", task->trace_id},
               {"status_url", "/v1/documents/" + doc_id}});
  }

  void delete_document(const httplib::Request& req, httplib::Response& res) {
    const std::string doc_id = req.matches[1];
    auto d = status->get(doc_id, stuck_before_ms());
    if (!d.is_ok()) return send_error(res, d.status());
    auto indexed = p.index().get_document(doc_id);
    if (!indexed.is_ok()) return send_error(res, indexed.status());
    if (!*d && !*indexed) return send_error(res, Status::not_found("no document with doc_id " + doc_id));
    auto chunks = p.index().chunk_count(doc_id);
    if (Status st = p.index().delete_document(doc_id); !st.is_ok()) return send_error(res, st);
    auto removed = status->remove(doc_id);
    if (!removed.is_ok()) return send_error(res, removed.status());
    {
      std::lock_guard<std::mutex> lock(recent_mu);
      recent.erase(doc_id);
    }
    // The uploaded file goes too (only ours: a source outside the store's uploads/ stays). The
    // store names its uploads' prefix: its own URI may carry a query (s3://b?endpoint=...).
    if (*d) {
      const std::string& src = (*d)->source;
      std::string uri = src.starts_with("file://") ? "file:" + src.substr(7) : src;
      auto uploads = store->uri_of("uploads");
      if (uploads.is_ok() && uri.starts_with(*uploads + "/")) (void)store->remove(uri);
    }
    send_json(res, 200,
              {{"doc_id", doc_id}, {"deleted", true}, {"chunks_removed", chunks.is_ok() ? *chunks : 0}});
  }

  // --- dead letters ---
  // The dashboard's view of `<topic>.dlq`: read to the end with an ephemeral consumer (no group
  // is disturbed); a replay sends the chosen document's dead letters back to the topic they
  // failed on and records each in the ledger topic in `sluice dlq`'s format, so both agree on
  // what was replayed.
  struct Letter {
    std::string topic, doc_id, value;
    int32_t partition = 0;
    int64_t offset = 0, timestamp_ms = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string header(std::string_view k) const {
      for (const auto& [hk, hv] : headers) {
        if (hk == k) return hv;
      }
      return "";
    }
  };

  // The topics that exist, read to their current end (pipeline/read_to_end.h).
  Result<std::vector<queue::Message>> read_topics(const std::vector<std::string>& names) {
    std::vector<queue::TopicInfo> topics;
    for (const auto& n : names) {
      auto info = q.admin().describe_topic(n);
      if (!info.is_ok()) {
        if (info.status().code() == Code::kNotFound) continue;
        return info.status();
      }
      topics.push_back(std::move(*info));
    }
    return pipeline::read_to_end(q, topics);
  }

  Result<std::vector<Letter>> load_letters(std::set<std::string>* replayed) {
    if (!q.capabilities().offsets) {
      return Status::unsupported("the " + std::string(q.backend()) +
                                 " queue keeps no offsets, so dead letters cannot be listed here; read "
                                 "them with `sluice tail T.dlq`");
    }
    std::vector<std::string> names;
    for (const auto& st : pipeline::builtin_stages())
      names.push_back(std::string(st.input) + pipeline::kDlqSuffix);
    SLUICE_ASSIGN_OR_RETURN(auto messages, read_topics(names));
    std::vector<Letter> out;
    for (const auto& m : messages) {
      Letter l;
      l.topic = std::string(m.topic);
      l.partition = m.partition.value();
      l.offset = m.offset.value();
      l.timestamp_ms = m.timestamp_ms;
      l.doc_id = std::string(m.key.value_or(""));
      l.value = std::string(m.value);
      for (const auto& h : m.headers) l.headers.emplace_back(std::string(h.key), std::string(h.value));
      out.push_back(std::move(l));
    }
    SLUICE_ASSIGN_OR_RETURN(auto ledger, read_topics({pipeline::kTopicDlqLedger}));
    for (const auto& m : ledger) {
      auto j = nlohmann::json::parse(m.value, nullptr, false);
      if (!j.is_object() || !j.contains("dlq_topic") || !j.contains("partition") || !j.contains("offset"))
        continue;
      replayed->insert(j.value("dlq_topic", "") + "/" + std::to_string(j.value("partition", 0)) + "/" +
                       std::to_string(j.value("offset", int64_t{0})));
    }
    return out;
  }

  static std::string where(const Letter& l) {
    return l.topic + "/" + std::to_string(l.partition) + "/" + std::to_string(l.offset);
  }

  void list_dead_letters(httplib::Response& res) {
    std::set<std::string> replayed;
    auto letters = load_letters(&replayed);
    if (!letters.is_ok()) return send_error(res, letters.status());
    ordered_json out = ordered_json::array();
    for (auto it = letters->rbegin(); it != letters->rend() && out.size() < 200; ++it) {  // newest first
      const Letter& l = *it;
      out.push_back({{"topic", l.topic},
                     {"partition", l.partition},
                     {"offset", l.offset},
                     {"doc_id", l.doc_id},
                     {"stage", l.header(pipeline::kHeaderFailedStage)},
                     {"error",
                      {{"class", l.header(pipeline::kHeaderErrorClass)},
                       {"message", l.header(pipeline::kHeaderErrorMessage)}}},
                     {"attempts", l.header(pipeline::kHeaderAttempt)},
                     {"at", iso_ms(l.timestamp_ms)},
                     {"trace_id", l.header("trace_id")},
                     {"replayed", replayed.count(where(l)) > 0}});
    }
    send_json(res, 200, {{"dead_letters", std::move(out)}});
  }

  void replay_dead_letters(const httplib::Request& req, httplib::Response& res) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("doc_id") || !body["doc_id"].is_string()) {
      return send_error(res, Status::invalid_argument(
                                 "send {\"doc_id\": \"...\"}: the document whose dead letters to replay"));
    }
    const std::string doc_id = body["doc_id"];
    std::set<std::string> replayed;
    auto letters = load_letters(&replayed);
    if (!letters.is_ok()) return send_error(res, letters.status());
    std::vector<const Letter*> chosen;
    for (const auto& l : *letters) {
      if (l.doc_id == doc_id && !replayed.count(where(l))) chosen.push_back(&l);
    }
    if (chosen.empty()) {
      return send_error(res, Status::not_found("no dead letter waiting for replay for doc_id " + doc_id));
    }
    if (Status st = queue::ensure_topic(q.admin(), pipeline::kTopicDlqLedger, {.partitions = 1});
        !st.is_ok()) {
      return send_error(res, st);
    }
    // First the letters go back (acknowledged), then the ledger records them: at-least-once.
    auto send_all = [&](const std::vector<pipeline::Output>& outs) -> Status {
      std::vector<std::unique_ptr<DeliveryWait>> waits;
      for (const auto& o : outs) {
        auto w = std::make_unique<DeliveryWait>();
        auto sent = pipeline::send_output(*producer, o, w.get());
        if (!sent.is_ok()) {
          wait_all(waits);
          return sent.status();
        }
        waits.push_back(std::move(w));
      }
      wait_all(waits);
      if (waits.size() != outs.size()) return Status::timeout("the queue did not acknowledge the replay");
      for (const auto& w : waits) {
        if (!w->done) return Status::timeout("the queue did not acknowledge the replay");
        if (!w->status.is_ok()) return w->status;
      }
      return {};
    };
    std::vector<pipeline::Output> back, ledger;
    for (const Letter* l : chosen) {
      pipeline::Output o;
      o.topic = l->header(pipeline::kHeaderOriginalTopic);
      if (o.topic.empty()) o.topic = l->topic.substr(0, l->topic.size() - std::strlen(pipeline::kDlqSuffix));
      o.key = l->doc_id;
      o.value = l->value;
      const std::string trace = l->header("trace_id").empty() ? pipeline::random_id() : l->header("trace_id");
      o.headers = pipeline::standard_headers(trace, 1);
      o.headers.emplace_back("replayed_from", where(*l));
      back.push_back(o);
      const int64_t now = wall_ms();
      nlohmann::ordered_json j = {{"dlq_topic", l->topic}, {"partition", l->partition},
                                  {"offset", l->offset},   {"dead_letter_timestamp", l->timestamp_ms},
                                  {"doc_id", l->doc_id},   {"original_topic", o.topic},
                                  {"trace_id", trace},     {"replayed_at", iso_ms(now)},
                                  {"replayed_at_ms", now}, {"by", "sluice serve"}};
      ledger.push_back({pipeline::kTopicDlqLedger, l->doc_id, j.dump(), {}});
    }
    if (Status st = send_all(back); !st.is_ok()) return send_error(res, st.with_context("replaying"));
    if (Status st = send_all(ledger); !st.is_ok())
      return send_error(res, st.with_context("recording the replay"));
    send_json(res, 202, {{"doc_id", doc_id}, {"replayed", chosen.size()}});
  }

  // --- search, stats ---

  void search(const httplib::Request& req, httplib::Response& res) {
    std::string q = req.get_param_value("q");
    if (q.find_first_not_of(" \t\r\n") == std::string::npos) {
      return send_error(res, Status::invalid_argument("the query is empty: give ?q=TEXT"));
    }
    index::SearchOptions so;
    if (req.has_param("k")) {
      int64_t k = 0;
      try {
        k = std::stoll(req.get_param_value("k"));
      } catch (...) {
      }
      if (k < 1 || k > 1000)
        return send_error(res, Status::invalid_argument("k must be a number from 1 to 1000"));
      so.k = static_cast<size_t>(k);
    }
    std::string mode = req.has_param("mode") ? req.get_param_value("mode") : "hybrid";
    if (mode == "keyword") {
      so.mode = index::SearchOptions::Mode::kKeyword;
    } else if (mode == "vector") {
      so.mode = index::SearchOptions::Mode::kVector;
    } else if (mode != "hybrid") {
      return send_error(res, Status::invalid_argument("mode must be hybrid, keyword or vector"));
    }
    const auto t0 = SteadyClock::now();
    std::vector<float> vec;
    if (so.mode != index::SearchOptions::Mode::kKeyword) {
      std::string_view qv = q;
      if (Status st = p.embedder().embed({&qv, 1}, &vec); !st.is_ok()) return send_error(res, st);
    }
    auto hits = p.index().search(q, vec, so);
    if (!hits.is_ok()) return send_error(res, hits.status());
    const double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
    ordered_json out = ordered_json::array();
    int rank = 0;
    for (const auto& h : *hits) out.push_back(index::search_hit_json(h, ++rank));
    send_json(res, 200, {{"query", q}, {"ms", ms}, {"hits", std::move(out)}});
  }

  // Refreshes the per-stage figures: lag and committed offsets from the queue, counts from the
  // stages when they run here.
  void sample() {
    std::map<std::string, const pipeline::StageStats*> local;
    for (const auto& [name, st] : p.stats()) local[name] = st;
    std::vector<StageSnapshot> rows;
    std::vector<queue::GroupPartition> lags;
    std::vector<std::string> lag_group_names;
    const double t = std::chrono::duration<double>(SteadyClock::now() - started).count();
    for (const auto& [name, topic] : pipeline::builtin_stages()) {
      StageSnapshot s;
      s.name = name;
      s.topic = topic;
      s.group = pipeline::stage_group(p.settings(), name);
      uint64_t committed = 0;
      auto info = q.admin().describe_group(s.group);
      if (info.is_ok()) {
        for (const auto& part : info->partitions) {
          s.lag += part.lag;
          if (part.committed && part.topic == s.topic)
            committed += static_cast<uint64_t>(part.committed->value());
          lags.push_back(part);
          lag_group_names.push_back(s.group);
        }
      } else if (info.status().code() != Code::kNotFound) {  // a group that has not committed yet
        queue_send_errors->inc();
        log::warn("describing a stage's group failed",
                  {{"group", s.group}, {"error", info.status().to_string()}});
      }
      if (auto it = local.find(name); it != local.end()) {
        s.processed = it->second->processed.load();
        s.retried = it->second->retried.load();
        s.dead_lettered = it->second->dead_lettered.load();
        s.in_flight = it->second->in_flight.load();
      } else {
        s.processed = committed;  // another process runs the stage: what its group has committed
      }
      auto& h = history[name];
      h.emplace_back(t, s.processed);
      while (h.size() > 2 && h.front().first < t - kRateWindowS) h.pop_front();
      if (h.size() >= 2 && h.back().first > h.front().first) {
        s.per_s =
            static_cast<double>(h.back().second - h.front().second) / (h.back().first - h.front().first);
      }
      rows.push_back(std::move(s));
    }
    std::lock_guard<std::mutex> lock(snap_mu);
    stages = std::move(rows);
    lag_rows = std::move(lags);
    lag_groups = std::move(lag_group_names);
  }

  void sampler_loop() {
    for (;;) {
      sample();
      std::unique_lock<std::mutex> lock(stop_mu);
      if (stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) return;
    }
  }

  void stats(httplib::Response& res) {
    auto counts = status->counts(stuck_before_ms());
    if (!counts.is_ok()) return send_error(res, counts.status());
    ordered_json docs = ordered_json::object();
    docs["total"] = (*counts)["total"];
    for (DocStatus s : all_doc_statuses())
      docs[std::string(doc_status_name(s))] = (*counts)[std::string(doc_status_name(s))];
    docs["stuck"] = (*counts)["stuck"];
    ordered_json st = ordered_json::array();
    {
      std::lock_guard<std::mutex> lock(snap_mu);
      for (const auto& s : stages) {
        st.push_back({{"name", s.name},
                      {"topic", s.topic},
                      {"group", s.group},
                      {"lag", s.lag},
                      {"processed", s.processed},
                      {"retried", s.retried},
                      {"dead_lettered", s.dead_lettered},
                      {"in_flight", s.in_flight},
                      {"per_s", std::round(s.per_s * 100) / 100}});
      }
    }
    send_json(res, 200,
              {{"uptime_s",
                std::round(std::chrono::duration<double>(SteadyClock::now() - started).count() * 10) / 10},
               {"workers", opts.workers},
               {"queue", q.backend()},
               {"documents", std::move(docs)},
               {"stages", std::move(st)},
               {"uploads",
                {{"accepted", static_cast<uint64_t>(uploads_accepted->value())},
                 {"rejected", static_cast<uint64_t>(uploads_rejected->value())},
                 {"in_progress", uploads_in_progress.load()}}}});
  }

  void readyz(httplib::Response& res) {
    Status st = p.failure();
    if (st.is_ok()) st = follower->failure();
    if (st.is_ok()) {
      auto topics = q.admin().describe_topic(pipeline::kTopicUpload);
      if (!topics.is_ok()) st = topics.status();
    }
    if (!st.is_ok()) {
      res.status = 503;
      res.set_content("not ready: " + st.to_string() + "\n", "text/plain");
      return;
    }
    res.set_content("ready\n", "text/plain");
  }

  // --- metrics ---

  void register_metrics() {
    uploads_accepted =
        &metrics.counter("sluice_uploads_total", "Uploads by result", {{"result", "accepted"}});
    uploads_rejected =
        &metrics.counter("sluice_uploads_total", "Uploads by result", {{"result", "rejected"}});
    upload_bytes = &metrics.counter("sluice_upload_bytes_total", "Bytes of accepted uploads", {});
    queue_send_errors = &metrics.counter("sluice_queue_errors_total", "Queue operations that failed",
                                         {{"operation", "server"}});
    metrics.gauge("sluice_build_info", "The running sluice", {{"version", kVersion}}).set(1);
    metrics.add_collector([this](MetricsRegistry& m) { collect(m); });
  }

  void collect(MetricsRegistry& m) {
    m.gauge("sluice_uptime_seconds", "Seconds since the server started", {})
        .set(std::chrono::duration<double>(SteadyClock::now() - started).count());
    m.gauge("sluice_uploads_in_progress", "Uploads being written now", {})
        .set(static_cast<double>(uploads_in_progress.load()));
    mirror(m.counter("sluice_queue_errors_total", "Queue operations that failed", {{"operation", "follow"}}),
           static_cast<double>(follower->queue_errors()));
    {
      std::lock_guard<std::mutex> lock(snap_mu);
      for (const auto& s : stages) {
        const std::vector<std::pair<std::string, std::string>> l = {{"stage", s.name}};
        auto total = [&](const char* name, const char* help, uint64_t v) {
          mirror(m.counter(name, help, l), static_cast<double>(v));
        };
        total("sluice_stage_consumed_total",
              "Messages a stage finished with (processed, retried or dead-lettered)",
              s.processed + s.retried + s.dead_lettered);
        total("sluice_stage_produced_total",
              "Messages a stage processed successfully (and produced outputs for)", s.processed);
        total("sluice_stage_failed_total", "Attempts that ended in an error (retried or dead-lettered)",
              s.retried + s.dead_lettered);
        total("sluice_stage_retried_total", "Messages sent to the stage's retry topic", s.retried);
        total("sluice_stage_dead_lettered_total", "Messages given up and sent to the dead-letter topic",
              s.dead_lettered);
        m.gauge("sluice_stage_in_flight", "Messages a stage holds between poll and ack", l)
            .set(static_cast<double>(s.in_flight));
      }
      for (size_t i = 0; i < lag_rows.size(); ++i) {
        const auto& r = lag_rows[i];
        m.gauge("sluice_consumer_lag", "Messages not yet consumed, per group, topic and partition",
                {{"group", lag_groups[i]},
                 {"topic", r.topic},
                 {"partition", std::to_string(r.partition.value())}})
            .set(static_cast<double>(r.lag));
      }
    }
    auto counts = status->counts(stuck_before_ms());
    if (counts.is_ok()) {
      for (const auto& [name, n] : *counts) {
        if (name == "total") continue;
        m.gauge("sluice_documents", "Documents by status (stuck: not final and idle)", {{"status", name}})
            .set(static_cast<double>(n));
      }
    }
  }

  void on_result(const pipeline::ResultNotification& r) {
    for (const auto& [stage, ms] : r.stage_ms) {
      metrics
          .histogram("sluice_stage_processing_seconds", "Time a stage spent on a document",
                     {{"stage", stage}}, default_latency_buckets())
          .observe(ms / 1000.0);
    }
  }

  // --- HTTP plumbing ---

  bool authorized(const httplib::Request& req) const {
    if (opts.settings.tokens.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    if (!h.starts_with("Bearer ")) return false;
    std::string_view given = std::string_view(h).substr(7);
    bool ok = false;
    for (const auto& t : opts.settings.tokens) {
      // Constant time per token: the comparison does not stop at the first different byte.
      if (t.size() != given.size()) continue;
      unsigned char diff = 0;
      for (size_t i = 0; i < t.size(); ++i) diff |= static_cast<unsigned char>(t[i] ^ given[i]);
      ok |= diff == 0;
    }
    return ok;
  }

  void routes() {
    http.new_task_queue = [n = opts.settings.http_threads] { return new httplib::ThreadPool(n); };
    http.set_tcp_nodelay(true);  // else Nagle meets the client's delayed ACK: ~40 ms per answer
    // Debian's cpp-httplib is built with a listen backlog of 5, so the socket is noted here (the
    // callback runs before bind) and its backlog raised once it listens; see start().
    http.set_socket_options([this](int sock) {
      httplib::default_socket_options(sock);
      listen_fd = sock;
    });
    http.set_keep_alive_max_count(100000);
    http.set_keep_alive_timeout(30);
    http.set_read_timeout(std::chrono::seconds(30));
    http.set_payload_max_length(opts.settings.max_body_bytes);

    static thread_local SteadyClock::time_point request_start;
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_start = SteadyClock::now();
      if (req.path.starts_with("/v1/") && !authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_json(res, 401,
                  {{"error",
                    {{"class", "bad_input"},
                     {"message", "missing or wrong API token: send Authorization: Bearer TOKEN"}}}});
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const std::string route = route_of(req.path);
      metrics
          .counter("sluice_http_requests_total", "HTTP requests by method, route and status code",
                   {{"method", req.method}, {"route", route}, {"code", std::to_string(res.status)}})
          .inc();
      metrics
          .histogram("sluice_http_request_duration_seconds", "HTTP request latency",
                     {{"method", req.method}, {"route", route}}, default_latency_buckets())
          .observe(std::chrono::duration<double>(SteadyClock::now() - request_start).count());
    });
    // The library's own refusals get the API's error shape.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message;
      switch (res.status) {
        case 404:
          message = "no such route: " + req.method + " " + req.path + " (see docs/http_api.md)";
          break;
        case 405: message = "method not allowed: " + req.method + " " + req.path; break;
        case 413: message = "the request body is larger than max_body_bytes"; break;
        case 400: message = "malformed request"; break;
        default: message = "request failed with HTTP " + std::to_string(res.status);
      }
      const char* cls = res.status == 413 ? "resource_limit" : res.status >= 500 ? "fatal" : "bad_input";
      send_json(res, res.status, {{"error", {{"class", cls}, {"message", message}}}});
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unexpected error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, 500, {{"error", {{"class", "fatal"}, {"message", "internal error: " + what}}}});
    });

    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(dashboard_html()), "text/html; charset=utf-8");
    });
    // Browsers ask for it; nothing to show, and no 404 in their consoles.
    http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    http.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) { readyz(res); });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Post("/v1/documents",
              [this](const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) { handle_upload(req, res, reader); });
    http.Get("/v1/documents",
             [this](const httplib::Request& req, httplib::Response& res) { list_documents(req, res); });
    http.Get(R"(/v1/documents/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) { get_document(req, res); });
    http.Post(R"(/v1/documents/([^/]+)/retry)",
              [this](const httplib::Request& req, httplib::Response& res) { retry_document(req, res); });
    http.Delete(R"(/v1/documents/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) { delete_document(req, res); });
    http.Get("/v1/search", [this](const httplib::Request& req, httplib::Response& res) { search(req, res); });
    http.Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) { stats(res); });
    http.Get("/v1/dlq", [this](const httplib::Request&, httplib::Response& res) { list_dead_letters(res); });
    http.Post("/v1/dlq/replay",
              [this](const httplib::Request& req, httplib::Response& res) { replay_dead_letters(req, res); });
  }
};

Result<std::unique_ptr<Server>> Server::open(queue::Queue& q, pipeline::Pipeline& p, ServerOptions opts) {
  std::unique_ptr<Server> s(new Server());
  s->impl_ = std::make_unique<Impl>(q, p, std::move(opts));
  Impl& m = *s->impl_;
  auto store = store::open_blob_store(
      pipeline::with_s3_config(p.settings().store, {p.settings().s3_endpoint, p.settings().s3_region}));
  if (!store.is_ok()) return store.status().with_context("blob store " + p.settings().store);
  m.store = std::move(*store);
  auto status = StatusStore::open(m.opts.data_dir + "/status.db");
  if (!status.is_ok()) return status.status();
  m.status = std::move(*status);
  queue::ProducerOptions popts;
  popts.on_delivery = [](const queue::DeliveryReport& r) {
    auto* w = static_cast<DeliveryWait*>(r.opaque);
    if (!w) return;
    std::lock_guard<std::mutex> lock(w->mu);
    w->status = r.status;
    w->done = true;
    w->cv.notify_all();
  };
  auto producer = q.make_producer(popts);
  if (!producer.is_ok()) return producer.status().with_context("the uploads' producer");
  m.producer = std::move(*producer);
  m.register_metrics();
  m.follower =
      std::make_unique<StatusFollower>(q, *m.status, p.settings().group + "-status",
                                       [&m](const pipeline::ResultNotification& r) { m.on_result(r); });
  m.routes();
  return s;
}

Server::~Server() {
  stop();
}

Status Server::start() {
  Impl& m = *impl_;
  SLUICE_RETURN_IF_ERROR(m.follower->start());
  bool bound = false;
  if (m.opts.settings.port == 0) {
    int port = m.http.bind_to_any_port(m.opts.settings.host);
    bound = port > 0;
    if (bound) m.opts.settings.port = port;
  } else {
    bound = m.http.bind_to_port(m.opts.settings.host, m.opts.settings.port);
  }
  // A burst of clients connecting at once would overflow a backlog of 5, and the kernel retries a
  // dropped SYN only after a second: that second is then some uploads' latency. Listening again
  // on a listening socket only changes its backlog (the kernel caps it at net.core.somaxconn).
  if (bound && m.listen_fd >= 0 && ::listen(m.listen_fd, kListenBacklog) != 0)
    log::warn("cannot raise the listen backlog", {{"error", std::strerror(errno)}});
  if (!bound) {
    m.follower->stop();
    return Status::invalid_argument(
        "cannot listen on " + m.opts.settings.host + ":" + std::to_string(m.opts.settings.port) +
        " (in use, or not an address of this machine); pick another with --listen");
  }
  m.sample();
  m.sampler = std::thread([&m] { m.sampler_loop(); });
  m.listener = std::thread([&m] {
    if (!m.http.listen_after_bind()) log::warn("the HTTP listener stopped");
  });
  return {};
}

void Server::stop() {
  if (!impl_) return;
  Impl& m = *impl_;
  if (m.http.is_running() || m.listener.joinable()) m.http.stop();
  if (m.listener.joinable()) m.listener.join();
  {
    std::lock_guard<std::mutex> lock(m.stop_mu);
    m.stopping = true;
  }
  m.stop_cv.notify_all();
  if (m.sampler.joinable()) m.sampler.join();
  if (m.producer) (void)m.producer->flush(queue::Millis(5000));
  m.follower->stop();
}

int Server::port() const {
  return impl_->opts.settings.port;
}

Status Server::failure() const {
  Status st = impl_->p.failure();
  if (st.is_ok()) st = impl_->follower->failure();
  return st;
}

}  // namespace sluice::server
