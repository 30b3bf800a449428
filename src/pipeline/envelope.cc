#include "pipeline/envelope.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "base/clock.h"
#include "base/hash.h"

namespace sluice::pipeline {
namespace {

nlohmann::json source_json(const SourceRef& s) {
  nlohmann::json j = {{"uri", s.uri}};
  if (!s.bucket.empty()) j["bucket"] = s.bucket;
  if (!s.key.empty()) j["key"] = s.key;
  if (!s.version.empty()) j["version"] = s.version;
  return j;
}

SourceRef source_from(const nlohmann::json& j) {
  SourceRef s;
  if (!j.is_object()) return s;
  s.uri = j.value("uri", "");
  s.bucket = j.value("bucket", "");
  s.key = j.value("key", "");
  s.version = j.value("version", "");
  return s;
}

template <typename F>
auto guarded(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(std::string(what) + ": " + e.what());
  }
}

}  // namespace

nlohmann::json task_json(const Task& t) {
  nlohmann::json j = {{"doc_id", t.doc_id},
                      {"source", source_json(t.source)},
                      {"size", t.size},
                      {"trace_id", t.trace_id},
                      {"schema", kSchemaVersion}};
  if (!t.version.empty()) j["version"] = t.version;
  if (!t.dest_bucket.empty()) j["dest_bucket"] = t.dest_bucket;
  if (!t.dest_key.empty()) j["dest_key"] = t.dest_key;
  if (!t.metadata.empty()) j["metadata"] = t.metadata;
  if (!t.generated_at.empty()) j["generated_at"] = t.generated_at;
  if (!t.last_modified.empty()) j["last_modified"] = t.last_modified;
  if (!t.source.bucket.empty()) {  // the seeds' shape
    j["bucket"] = t.source.bucket;
    j["key"] = t.source.key;
  }
  return j;
}

std::string to_json(const Task& t) {
  return task_json(t).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Task> parse_task(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("task is not a JSON object");
  return task_from_json(j);
}

Result<Task> task_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("task is not a JSON object");
  return guarded("task", [&]() -> Result<Task> {
    Task t;
    t.doc_id = j.value("doc_id", "");
    t.source = source_from(j.value("source", nlohmann::json::object()));
    if (t.source.uri.empty() && j.contains("key")) {  // the seeds' shape: key (+ bucket)
      const std::string key = j.value("key", "");
      const std::string bucket = j.value("bucket", "");
      if (key.empty()) return Status::invalid_argument("task has an empty key");
      if (bucket.empty()) {
        return Status::invalid_argument("task for key '" + key +
                                        "' has no bucket (and no source.uri); say which bucket it is in");
      }
      t.source = {"s3://" + bucket + "/" + key, bucket, key, j.value("etag", "")};
    }
    if (t.source.uri.empty()) return Status::invalid_argument("task has no source.uri (nor key and bucket)");
    if (t.doc_id.empty()) t.doc_id = doc_id_for(t.source.uri);
    t.size = j.value("size", uint64_t{0});
    t.version = j.value("version", "");
    t.trace_id = j.value("trace_id", "");
    t.dest_bucket = j.value("dest_bucket", "");
    t.dest_key = j.value("dest_key", "");
    t.generated_at = j.value("generated_at", "");
    t.last_modified = j.value("last_modified", "");
    if (j.contains("metadata")) t.metadata = j["metadata"];
    return t;
  });
}

std::string_view result_status_name(ResultStatus s) {
  switch (s) {
    case ResultStatus::kSuccess: return "success";
    case ResultStatus::kFailed: return "failed";
    case ResultStatus::kSkipped: return "skipped";
    case ResultStatus::kReview: return "review";
  }
  return "failed";
}

std::string to_json(const ResultNotification& r) {
  nlohmann::ordered_json j = {{"timestamp", r.timestamp},
                              {"worker", r.worker},
                              {"status", result_status_name(r.status)},
                              {"doc_id", r.doc_id},
                              {"version", r.version},
                              {"source", nlohmann::ordered_json(source_json(r.source))}};
  if (r.destination) j["destination"] = nlohmann::ordered_json(source_json(*r.destination));
  j["file_info"] = {{"input_size", r.input_size},
                    {"output_size", r.output_size},
                    {"input_size_formatted", format_size(r.input_size)},
                    {"output_size_formatted", format_size(r.output_size)}};
  j["chunks"] = r.chunks;
  j["pages"] = r.pages;
  j["attempts"] = r.attempts;
  nlohmann::ordered_json timings = nlohmann::ordered_json::object();
  for (const auto& [stage, ms] : r.stage_ms) timings[stage] = ms;
  j["timings_ms"] = timings;
  if (r.error) {
    j["error"] = {{"class", error_class_name(r.error->error_class())}, {"message", r.error->message()}};
  }
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.empty_pages > 0) j["empty_pages"] = r.empty_pages;
  if (r.ocr) {
    nlohmann::ordered_json pages = nlohmann::ordered_json::array();
    for (const auto& [page, conf] : r.ocr->confidence)
      pages.push_back({{"page", page}, {"confidence", conf}});
    j["ocr"] = {{"pages", r.ocr->pages},
                {"mean_confidence", r.ocr->mean_confidence ? nlohmann::ordered_json(*r.ocr->mean_confidence)
                                                           : nlohmann::ordered_json()},
                {"page_confidence", std::move(pages)}};
  }
  if (!r.outputs.empty()) {
    nlohmann::ordered_json outs = nlohmann::ordered_json::array();
    for (const auto& o : r.outputs) outs.push_back({{"uri", o.uri}, {"size", o.size}, {"hash", o.hash}});
    j["outputs"] = std::move(outs);
  }
  j["trace_id"] = r.trace_id;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<ResultNotification> parse_result(std::string_view text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("result is not a JSON object");
  return guarded("result", [&]() -> Result<ResultNotification> {
    ResultNotification r;
    r.timestamp = j.value("timestamp", "");
    r.worker = j.value("worker", "");
    std::string st = j.value("status", "");
    if (st == "success") {
      r.status = ResultStatus::kSuccess;
    } else if (st == "failed") {
      r.status = ResultStatus::kFailed;
    } else if (st == "skipped") {
      r.status = ResultStatus::kSkipped;
    } else if (st == "review") {
      r.status = ResultStatus::kReview;
    } else {
      return Status::invalid_argument("result has an unknown status '" + st + "'");
    }
    r.doc_id = j.value("doc_id", "");
    r.version = j.value("version", "");
    r.source = source_from(j.value("source", nlohmann::json::object()));
    if (j.contains("destination")) r.destination = source_from(j["destination"]);
    if (j.contains("file_info")) {
      r.input_size = j["file_info"].value("input_size", uint64_t{0});
      r.output_size = j["file_info"].value("output_size", uint64_t{0});
    }
    r.chunks = j.value("chunks", 0);
    r.pages = j.value("pages", 0);
    r.attempts = j.value("attempts", 1);
    if (j.contains("timings_ms") && j["timings_ms"].is_object()) {
      for (auto it = j["timings_ms"].begin(); it != j["timings_ms"].end(); ++it) {
        r.stage_ms.emplace_back(it.key(), it.value().get<double>());
      }
    }
    if (j.contains("error") && j["error"].is_object()) {
      std::string cls = j["error"].value("class", "fatal");
      ErrorClass c = cls == "retriable"        ? ErrorClass::kRetriable
                     : cls == "bad_input"      ? ErrorClass::kBadInput
                     : cls == "resource_limit" ? ErrorClass::kResourceLimit
                                               : ErrorClass::kFatal;
      r.error = Status(c, Code::kInternal, j["error"].value("message", ""));
    }
    r.reason = j.value("reason", "");
    r.empty_pages = j.value("empty_pages", 0);
    if (j.contains("ocr") && j["ocr"].is_object()) {
      const auto& o = j["ocr"];
      OcrSummary s;
      s.pages = o.value("pages", 0);
      if (o.contains("mean_confidence") && o["mean_confidence"].is_number())
        s.mean_confidence = o["mean_confidence"].get<double>();
      for (const auto& p : o.value("page_confidence", nlohmann::ordered_json::array()))
        s.confidence.emplace_back(p.value("page", 0), p.value("confidence", 0.0));
      r.ocr = std::move(s);
    }
    r.trace_id = j.value("trace_id", "");
    if (j.contains("outputs") && j["outputs"].is_array()) {
      for (const auto& o : j["outputs"])
        r.outputs.push_back({o.value("uri", ""), o.value("size", uint64_t{0}), o.value("hash", "")});
    }
    return r;
  });
}

std::string format_size(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string now_iso8601() {
  return iso8601_utc(wall_clock_ms());
}

std::string doc_id_for(std::string_view source_uri) {
  return hash_hex(source_uri);
}

std::string chunk_id_for(std::string_view doc_id, std::string_view version, int seq) {
  Hasher h;
  h.update(doc_id);
  h.update(std::string_view("\0", 1));
  h.update(version);
  h.update(std::string_view("\0", 1));
  h.update(std::to_string(seq));
  return h.hex();
}

std::string random_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::vector<std::pair<std::string, std::string>> standard_headers(std::string_view trace_id, int attempt) {
  return {{"trace_id", std::string(trace_id)},
          {"event_id", random_id()},
          {"attempt", std::to_string(attempt)},
          {"schema", std::to_string(kSchemaVersion)},
          {"produced_at", now_iso8601()}};
}

}  // namespace sluice::pipeline
