// Envelopes: the JSON carried on the pipeline's topics, and the identities in them.
//   doc_upload      a Task: which document to ingest (source, size, doc_id, trace_id, metadata)
//   doc_results     a ResultNotification: one per document per outcome, in the shape of the
//                   seeds' result JSON (timestamp, worker, status, source, destination, file_info)
//                   plus doc_id, version, chunks, pages, per-stage timings, attempts, error, trace_id
// Identities: doc_id = hash of the source URI (unless the uploader gives one), version = hash of the
// content, chunk_id = hash of (doc_id, version, seq).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::pipeline {

inline constexpr int kSchemaVersion = 1;

struct SourceRef {
  std::string uri;      // file:///abs/path, s3://bucket/key, upload://...
  std::string bucket;   // for object stores
  std::string key;      // object key, or the path as the user gave it
  std::string version;  // the object's version when listed (S3 ETag); the generator skips an
                        // object whose result already names this version
};

struct Task {
  std::string doc_id;
  SourceRef source;
  uint64_t size = 0;
  std::string version;  // content hash when known at scan time (lets unchanged files skip early)
  std::string trace_id;
  std::string dest_bucket, dest_key;
  nlohmann::json metadata = nlohmann::json::object();
  std::string generated_at;   // ISO-8601 UTC
  std::string last_modified;  // the object's, when listed from a bucket
};

// The JSON also carries the seeds' task shape at the top level (key, bucket, dest_bucket,
// dest_key, size, last_modified, generated_at), and parse_task() accepts a task in that shape
// alone ({"key": ..., "bucket": ...} means s3://bucket/key), so the seeds' generators can feed
// sluice's workers.
std::string to_json(const Task& t);
nlohmann::json task_json(const Task& t);  // the same, as a value to embed in other envelopes
// Malformed JSON or a task without doc_id/source.uri is kBadInput saying which field.
[[nodiscard]] Result<Task> parse_task(std::string_view json);
[[nodiscard]] Result<Task> task_from_json(const nlohmann::json& j);

// kReview: held by the parse stage's quality gate on doc_review (stages.h) until `sluice review
// release` sends it on; the document then ends with one more result, success or failed.
enum class ResultStatus { kSuccess, kFailed, kSkipped, kReview };

// How OCR read a document (the parse stage's ParsedDocument::ocr, carried to the result).
struct OcrSummary {
  int pages = 0;                                   // pages read by OCR
  std::optional<double> mean_confidence;           // over those that gave text
  std::vector<std::pair<int, double>> confidence;  // per page read by OCR: page, 0..100
  bool operator==(const OcrSummary&) const = default;
};

// A file a custom stage wrote to its destination (exec_stage.h).
struct OutputFile {
  std::string uri;  // s3://bucket/key or file:///abs/path
  uint64_t size = 0;
  std::string hash;  // XXH3-128 of the bytes, 32 hex digits

  bool operator==(const OutputFile&) const = default;
};
std::string_view result_status_name(ResultStatus s);

struct ResultNotification {
  std::string timestamp;  // ISO-8601 UTC
  std::string worker;     // host:pid of the worker that finished the document
  ResultStatus status = ResultStatus::kSuccess;
  std::string doc_id;
  std::string version;
  SourceRef source;
  std::optional<SourceRef> destination;
  uint64_t input_size = 0;
  uint64_t output_size = 0;
  int chunks = 0;
  int pages = 0;
  int attempts = 1;
  std::vector<std::pair<std::string, double>> stage_ms;  // per-stage timings, in pipeline order
  std::optional<Status> error;                           // on failure
  std::string reason;                                    // why skipped, held for review, or released
  int empty_pages = 0;                                   // pages that gave no text, even after OCR
  std::optional<OcrSummary> ocr;                         // when OCR read any page (JSON "ocr")
  std::string trace_id;
  std::vector<OutputFile> outputs;  // custom stages: every file uploaded (JSON "outputs", when any)
};

std::string to_json(const ResultNotification& r);
[[nodiscard]] Result<ResultNotification> parse_result(std::string_view json);

// "1.0 KB", "2.3 MB" (1024-based, one decimal), as the seeds' file_info shows sizes.
std::string format_size(uint64_t bytes);
std::string now_iso8601();

std::string doc_id_for(std::string_view source_uri);
std::string chunk_id_for(std::string_view doc_id, std::string_view version, int seq);
// A fresh random id for trace_id and event_id (32 hex digits).
std::string random_id();

// The headers every pipeline message carries: trace_id, event_id, attempt, schema, produced_at.
std::vector<std::pair<std::string, std::string>> standard_headers(std::string_view trace_id, int attempt = 1);

}  // namespace sluice::pipeline
