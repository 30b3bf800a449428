#include "pipeline/stages.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/base64.h"
#include "base/hash.h"
#include "base/log.h"
#include "pipeline/sources.h"
#include "text/text.h"

namespace sluice::pipeline {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The index keeps the trace_id of the task that indexed each document version, so that a
// redelivered copy of that task can be recognised as already done (see the parse stage).
constexpr const char* kIndexedByTraceKey = "trace_id";

std::string indexed_by_trace(const index::DocumentRecord& d) {
  json meta = json::parse(d.metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object()) return {};
  auto it = meta.find(kIndexedByTraceKey);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A stage function written with Result<>: errors become the Outcome's status.
ProcessFn as_process(std::function<Result<Outcome>(const queue::Message&)> f) {
  return [f = std::move(f)](const queue::Message& m) {
    Result<Outcome> r = f(m);
    if (!r.is_ok()) return Outcome{r.status(), {}, {}};
    return std::move(r).value();
  };
}

ResultNotification result_for(const Task& task, const StageContext& ctx, ResultStatus status) {
  ResultNotification r;
  r.timestamp = now_iso8601();
  r.worker = ctx.worker;
  r.status = status;
  r.doc_id = task.doc_id;
  r.version = task.version;
  r.source = task.source;
  r.input_size = task.size;
  r.trace_id = task.trace_id;
  return r;
}

ResultNotification result_for(const Work& w, const StageContext& ctx, ResultStatus status) {
  ResultNotification r = result_for(w.task, ctx, status);
  r.version = w.version;
  r.input_size = w.input_size;
  r.pages = w.pages;
  r.attempts = w.attempts;
  r.stage_ms = w.stage_ms;
  r.empty_pages = w.empty_pages;
  r.ocr = w.ocr;
  return r;
}

OcrSummary ocr_summary(const parse::ParsedDocument& doc) {
  OcrSummary s;
  s.pages = static_cast<int>(doc.ocr.size());
  s.mean_confidence = parse::mean_ocr_confidence(doc);
  for (const parse::OcrPage& p : doc.ocr) s.confidence.emplace_back(p.page, p.confidence);
  return s;
}

// One decimal, for reasons a person reads.
std::string one_decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

void log_result(const ResultNotification& r) {
  json f = {{"status", result_status_name(r.status)},
            {"doc_id", r.doc_id},
            {"version", r.version},
            {"source", r.source.key.empty() ? r.source.uri : r.source.key},
            {"chunks", r.chunks},
            {"pages", r.pages},
            {"attempts", r.attempts},
            {"trace_id", r.trace_id}};
  json timings = json::object();
  for (const auto& [stage, ms] : r.stage_ms) timings[stage] = ms;
  f["timings_ms"] = timings;
  if (r.error) {
    f["error_class"] = error_class_name(r.error->error_class());
    f["error_message"] = r.error->message();
    sluice::log::error("document failed", f);
    return;
  }
  if (!r.reason.empty()) f["reason"] = r.reason;
  sluice::log::info("document done", f);
}

// Publishes r (and logs it with the same fields).
Output publish(const ResultNotification& r) {
  log_result(r);
  return result_output(r);
}

Output work_output(const char* topic, const Work& w, std::string_view payload) {
  Output o;
  o.topic = topic;
  o.key = w.task.doc_id;
  o.value = encode_work(w, payload);
  o.headers = standard_headers(w.task.trace_id);
  return o;
}

// Puts a payload larger than the claim-check threshold in the blob store; returns what goes inline.
Result<std::string> claim_check(const StageContext& ctx, const char* stage, Work& w, std::string payload) {
  if (payload.size() <= ctx.settings.claim_check_bytes) return payload;
  SLUICE_ASSIGN_OR_RETURN(
      store::BlobRef ref,
      ctx.store->put(std::string(stage) + "/" + w.task.doc_id + "-" + w.version, payload));
  w.payload_blob = ref.uri;
  w.payload_hash = ref.hash;
  w.blobs.push_back(ref.uri);
  return std::string();
}

// The payload of w: inline, or fetched from the blob store. A missing blob of a document the index
// already holds means this message is a redelivery of work that was finished (blobs are removed
// only after the index stage is done): nullopt tells the caller to drop it.
Result<std::optional<std::string>> load_payload(const StageContext& ctx, const Work& w,
                                                std::string_view inline_payload) {
  if (w.payload_blob.empty()) return std::optional<std::string>(std::string(inline_payload));
  Result<std::string> got = ctx.store->get(w.payload_blob, w.payload_hash);
  if (got.is_ok()) return std::optional<std::string>(std::move(got).value());
  if (got.status().code() != Code::kNotFound) return got.status();
  SLUICE_ASSIGN_OR_RETURN(auto existing, ctx.index->get_document(w.task.doc_id));
  if (existing) {
    sluice::log::info(
        "dropping a redelivered message of a finished document",
        {{"doc_id", w.task.doc_id}, {"version", w.version}, {"indexed_version", existing->version}});
    return std::optional<std::string>();
  }
  return Status(
      ErrorClass::kRetriable, Code::kNotFound,
      "the claim-check blob " + w.payload_blob + " of this document is missing; ingest the file again");
}

// The envelope of an embed or index input and its payload, fetched from the blob store when it was
// claim-checked; nullopt for a redelivery of finished work (see load_payload).
struct Received {
  Work work;
  std::string payload;
};
Result<std::optional<Received>> receive(const StageContext& ctx, const queue::Message& m) {
  SLUICE_ASSIGN_OR_RETURN(auto decoded, decode_work(m.value));
  Received r{std::move(decoded.first), {}};
  r.work.attempts = std::max(r.work.attempts, attempt_of(m));
  SLUICE_ASSIGN_OR_RETURN(auto payload, load_payload(ctx, r.work, decoded.second));
  if (!payload) return std::optional<Received>();
  r.payload = std::move(*payload);
  return std::optional<Received>(std::move(r));
}

// The failure notification when a stage gives up on a message (input_is_task: the parse stage's
// input is a Task; the others carry a Work envelope).
DeadLetterFn failure_notifier(const StageContext& ctx, bool input_is_task) {
  return [ctx, input_is_task](const queue::Message& m, const Status& st, int attempts) {
    ResultNotification r;
    bool readable = false;
    if (input_is_task) {
      if (auto t = parse_task(m.value); t.is_ok()) {
        r = result_for(*t, ctx, ResultStatus::kFailed);
        readable = true;
      }
    } else if (auto w = decode_work(m.value); w.is_ok()) {
      r = result_for(w->first, ctx, ResultStatus::kFailed);
      readable = true;
    }
    if (!readable) {
      // An envelope nobody can read: the result still says which message failed.
      Task t;
      t.doc_id = std::string(m.key.value_or(std::string_view()));
      t.source.uri = std::string(m.topic) + "@" + std::to_string(m.partition.value()) + ":" +
                     std::to_string(m.offset.value());
      if (auto tr = m.header("trace_id")) t.trace_id = std::string(*tr);
      r = result_for(t, ctx, ResultStatus::kFailed);
    }
    r.attempts = std::max(r.attempts, attempts);
    r.error = st;
    return std::vector<Output>{publish(r)};
  };
}

StageConfig config_for(const StageContext& ctx, const char* name, const char* input, size_t workers) {
  StageConfig c;
  c.name = name;
  c.input_topic = input;
  c.workers = workers;
  c.max_in_flight = ctx.settings.max_in_flight;
  c.max_attempts = ctx.settings.max_attempts;
  c.backoff = queue::Millis(ctx.settings.retry_backoff.count());
  c.partitions = ctx.settings.partitions;
  c.group = stage_group(ctx.settings, name);
  c.start_from = ctx.settings.start_from;
  c.commit_interval = queue::Millis(ctx.settings.commit_interval.count());
  return c;
}

std::string join_path(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " > ") + p;
  return out;
}

// ---------------------------------------------------------------------------------------------
// parse

Result<Outcome> parse_one(const StageContext& ctx, const queue::Message& m) {
  const auto t0 = Clock::now();
  SLUICE_ASSIGN_OR_RETURN(Task task, parse_task(m.value));
  // An s3:// source is downloaded into a temp file that `copy` removes when this returns.
  if (is_bucket_uri(task.source.uri) && task.size > ctx.settings.max_file_size) {  // before downloading it
    return Status::resource_limit(
        task.source.uri + " is " + format_size(task.size) + ", over the max_file_size limit of " +
        format_size(ctx.settings.max_file_size) + "; raise --max-file-size to ingest it");
  }
  Result<LocalCopy> copy = Status::internal("the parse stage has no source fetcher");
  if (ctx.sources) copy = ctx.sources->fetch(task.source);
  if (!copy.is_ok()) {
    if (copy.status().code() == Code::kNotFound) {
      return Status::not_found(task.source.uri +
                               " no longer exists (deleted after it was queued): " + copy.status().message());
    }
    return copy.status();
  }
  const std::string& path = copy->path();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::not_found(path + " no longer exists (deleted or moved after it was queued)");
    }
    if (err == EACCES) return Status::invalid_argument("permission denied reading " + path);
    return Status(ErrorClass::kRetriable, Code::kIoError, "cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) return Status::invalid_argument(path + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > ctx.settings.max_file_size) {
    return Status::resource_limit((copy->downloaded() ? task.source.uri : path) + " is " + format_size(size) +
                                  ", over the max_file_size limit of " +
                                  format_size(ctx.settings.max_file_size) +
                                  "; raise --max-file-size to ingest it");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string version, hash_file(path));
  task.size = size;
  const bool empty = size == 0;
  Work w;
  w.task = task;
  w.version = version;
  w.input_size = size;
  w.attempts = attempt_of(m);

  SLUICE_ASSIGN_OR_RETURN(auto existing, ctx.index->get_document(task.doc_id));
  if (existing && existing->version == version) {
    w.stage_ms.emplace_back("parse", ms_since(t0));
    // A task redelivered after its document was indexed (a worker died before committing, a
    // rebalance) is this same task's work, finished: its result is that success again, not
    // "skipped", so whoever waits on this trace_id is told the truth whichever copy answers first.
    const bool same_task = !task.trace_id.empty() && indexed_by_trace(*existing) == task.trace_id;
    ResultNotification r = result_for(w, ctx, same_task ? ResultStatus::kSuccess : ResultStatus::kSkipped);
    r.pages = existing->pages;
    SLUICE_ASSIGN_OR_RETURN(size_t chunks, ctx.index->chunk_count(task.doc_id));
    r.chunks = static_cast<int>(chunks);
    if (!same_task) r.reason = "unchanged: this version is already indexed";
    return Outcome{Status::ok(), {publish(r)}, {}};
  }

  parse::ParsedDocument doc;
  if (!empty) {  // an empty file is not an error, just nothing to index
    SLUICE_ASSIGN_OR_RETURN(
        doc, ctx.parser->parse(path, {.max_bytes = ctx.settings.max_file_size, .ocr = ctx.settings.ocr}));
  }
  w.stage_ms.emplace_back("parse", ms_since(t0));
  const auto t1 = Clock::now();
  text::clean_document(doc, {.mask_pii = ctx.settings.mask_pii});
  w.stage_ms.emplace_back("clean", ms_since(t1));
  w.pages = doc.pages;
  w.format = doc.format;
  w.empty_pages = doc.empty_pages;
  if (!doc.ocr.empty()) w.ocr = ocr_summary(doc);

  if (doc.blocks.empty()) {
    // Nothing to search: say why, and do not leave an older version's text findable.
    if (existing) SLUICE_RETURN_IF_ERROR(ctx.index->delete_document(task.doc_id));
    ResultNotification r = result_for(w, ctx, ResultStatus::kSkipped);
    r.reason = empty ? "empty file: no text to index" : "no text found in the " + doc.format + " file";
    if (!doc.warnings.empty()) r.reason += " (" + doc.warnings.front() + ")";
    return Outcome{Status::ok(), {publish(r)}, {}};
  }
  w.review_reason = quality_gate_reason(doc, ctx.settings);
  SLUICE_ASSIGN_OR_RETURN(std::string payload, claim_check(ctx, "parsed", w, parse::to_json(doc)));
  if (w.review_reason.empty()) return Outcome{Status::ok(), {work_output(kTopicParsed, w, payload)}, {}};
  // Held: the doc_parsed message it would have been waits on doc_review, and the result says why.
  // Its original_topic header is where `sluice review release` sends it (the dead letters' rule).
  Output held = work_output(kTopicReview, w, payload);
  held.headers.emplace_back(kHeaderReviewReason, w.review_reason);
  held.headers.emplace_back(kHeaderOriginalTopic, kTopicParsed);
  ResultNotification r = result_for(w, ctx, ResultStatus::kReview);
  r.reason = "held for review: " + w.review_reason;
  return Outcome{Status::ok(), {std::move(held), publish(r)}, {}};
}

// ---------------------------------------------------------------------------------------------
// embed

Result<Outcome> embed_one(const StageContext& ctx, const queue::Message& m) {
  const auto t0 = Clock::now();
  SLUICE_ASSIGN_OR_RETURN(auto received, receive(ctx, m));
  if (!received) return Outcome{};  // a redelivery of finished work
  Work w = std::move(received->work);
  auto& payload = received->payload;
  SLUICE_ASSIGN_OR_RETURN(parse::ParsedDocument doc, parse::parsed_document_from_json(payload));
  payload = std::string();

  std::vector<text::Chunk> chunks = text::chunk_document(
      doc, {.target_tokens = ctx.settings.chunk_tokens, .overlap_tokens = ctx.settings.chunk_overlap});
  const size_t dim = ctx.embedder->dimension();
  std::vector<float> vectors;
  vectors.reserve(chunks.size() * dim);
  std::vector<std::string_view> texts;
  for (size_t i = 0; i < chunks.size(); i += ctx.settings.embed_batch) {
    texts.clear();
    for (size_t j = i; j < std::min(chunks.size(), i + ctx.settings.embed_batch); ++j)
      texts.push_back(chunks[j].text);
    SLUICE_RETURN_IF_ERROR(ctx.embedder->embed(texts, &vectors));
  }
  if (vectors.size() != chunks.size() * dim) {
    return Status::internal("embedder returned " + std::to_string(vectors.size()) + " floats for " +
                            std::to_string(chunks.size()) + " chunks of dimension " + std::to_string(dim));
  }
  json out = {{"dim", dim}, {"embedder", ctx.embedder->name()}};
  json arr = json::array();
  for (size_t i = 0; i < chunks.size(); ++i) {
    arr.push_back({{"id", chunk_id_for(w.task.doc_id, w.version, static_cast<int>(i))},
                   {"seq", i},
                   {"page", chunks[i].page},
                   {"heading", join_path(chunks[i].heading_path)},
                   {"text", std::move(chunks[i].text)}});
  }
  out["chunks"] = std::move(arr);
  // Vectors travel as little-endian float32 in base64: a third the size of JSON numbers, exact.
  static_assert(std::endian::native == std::endian::little, "vector encoding assumes a little-endian host");
  out["vectors"] = base64_encode(
      std::string_view(reinterpret_cast<const char*>(vectors.data()), vectors.size() * sizeof(float)));
  w.stage_ms.emplace_back("embed", ms_since(t0));
  w.payload_blob.clear();
  w.payload_hash.clear();
  SLUICE_ASSIGN_OR_RETURN(std::string inline_payload, claim_check(ctx, "embedded", w, dump(out)));
  return Outcome{Status::ok(), {work_output(kTopicEmbedded, w, inline_payload)}, {}};
}

// ---------------------------------------------------------------------------------------------
// index

Result<Outcome> index_one(const StageContext& ctx, const queue::Message& m) {
  const auto t0 = Clock::now();
  SLUICE_ASSIGN_OR_RETURN(auto received, receive(ctx, m));
  if (!received) return Outcome{};  // a redelivery of finished work
  Work w = std::move(received->work);
  auto& payload = received->payload;
  json p = json::parse(payload, nullptr, false);
  payload = std::string();
  if (p.is_discarded() || !p.is_object() || !p["chunks"].is_array() || !p["vectors"].is_string()) {
    return Status::invalid_argument("doc_embedded payload of " + w.task.doc_id +
                                    " is not chunks with vectors");
  }
  const size_t dim = p.value("dim", size_t{0});
  if (dim != ctx.embedder->dimension() || p.value("embedder", "") != ctx.embedder->name()) {
    return Status::invalid_argument("chunks of " + w.task.doc_id + " were embedded with " +
                                    p.value("embedder", "?") + " but this index uses " +
                                    ctx.embedder->name());
  }
  auto raw = base64_decode(p["vectors"].get<std::string>());
  const json& arr = p["chunks"];
  if (!raw || raw->size() != arr.size() * dim * sizeof(float)) {
    return Status::invalid_argument("doc_embedded payload of " + w.task.doc_id +
                                    " has a damaged vector block");
  }
  std::vector<index::ChunkRecord> records(arr.size());
  try {
    for (size_t i = 0; i < arr.size(); ++i) {
      index::ChunkRecord& c = records[i];
      c.chunk_id = arr[i].at("id").get<std::string>();
      c.seq = arr[i].at("seq").get<int>();
      c.page = arr[i].value("page", 0);
      c.heading = arr[i].value("heading", "");
      c.text = arr[i].at("text").get<std::string>();
      c.vector.resize(dim);
      std::memcpy(c.vector.data(), raw->data() + i * dim * sizeof(float), dim * sizeof(float));
    }
  } catch (const json::exception& e) {
    return Status::invalid_argument("doc_embedded payload of " + w.task.doc_id + ": " + e.what());
  }
  index::DocumentRecord doc;
  doc.doc_id = w.task.doc_id;
  doc.version = w.version;
  doc.source =
      w.task.source.key.empty() || !w.task.source.bucket.empty() ? w.task.source.uri : w.task.source.key;
  doc.pages = w.pages;
  json meta = w.task.metadata.is_object() ? w.task.metadata : json::object();
  meta["format"] = w.format;
  meta["input_size"] = w.input_size;
  if (w.ocr) {
    meta["ocr_pages"] = w.ocr->pages;
    if (w.ocr->mean_confidence) meta["ocr_confidence"] = *w.ocr->mean_confidence;
  }
  if (w.empty_pages > 0) meta["empty_pages"] = w.empty_pages;
  if (!w.review_reason.empty()) meta["released_from_review"] = w.review_reason;
  if (!w.task.trace_id.empty()) meta[kIndexedByTraceKey] = w.task.trace_id;
  doc.metadata_json = dump(meta);
  SLUICE_RETURN_IF_ERROR(ctx.index->upsert_document(doc, records));
  w.stage_ms.emplace_back("index", ms_since(t0));

  ResultNotification r = result_for(w, ctx, ResultStatus::kSuccess);
  r.chunks = static_cast<int>(records.size());
  if (!w.review_reason.empty()) r.reason = "released from review: " + w.review_reason;
  for (const auto& c : records) r.output_size += c.text.size();
  Output ingested;
  ingested.topic = kTopicIngested;
  ingested.key = w.task.doc_id;
  ingested.value = dump({{"doc_id", w.task.doc_id},
                         {"version", w.version},
                         {"source", doc.source},
                         {"chunks", records.size()},
                         {"trace_id", w.task.trace_id}});
  ingested.headers = standard_headers(w.task.trace_id);
  Outcome out{Status::ok(), {std::move(ingested), publish(r)}, {}};
  if (!w.blobs.empty()) {
    // The document is done: its claim-check blobs are no longer needed by anyone.
    out.after_ack = [store = ctx.store, blobs = w.blobs] {
      for (const auto& b : blobs) {
        Status st = store->remove(b);
        if (!st.is_ok())
          sluice::log::warn("could not remove a claim-check blob", {{"blob", b}, {"error", st.to_string()}});
      }
    };
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string encode_work(const Work& w, std::string_view payload) {
  json j = {{"task", task_json(w.task)}, {"version", w.version}, {"input_size", w.input_size},
            {"pages", w.pages},          {"format", w.format},   {"attempts", w.attempts}};
  json timings = json::array();
  for (const auto& [stage, ms] : w.stage_ms) timings.push_back({stage, ms});
  j["stage_ms"] = std::move(timings);
  if (!w.blobs.empty()) j["blobs"] = w.blobs;
  if (!w.payload_blob.empty()) j["payload_blob"] = {{"uri", w.payload_blob}, {"hash", w.payload_hash}};
  if (w.empty_pages > 0) j["empty_pages"] = w.empty_pages;
  if (w.ocr) {
    json pages = json::array();
    for (const auto& [page, conf] : w.ocr->confidence) pages.push_back({page, conf});
    j["ocr"] = {{"pages", w.ocr->pages}, {"page_confidence", std::move(pages)}};
    if (w.ocr->mean_confidence) j["ocr"]["mean_confidence"] = *w.ocr->mean_confidence;
  }
  if (!w.review_reason.empty()) j["review_reason"] = w.review_reason;
  std::string out = dump(j);
  out += '\n';
  out += payload;
  return out;
}

Result<std::pair<Work, std::string_view>> decode_work(std::string_view value) {
  const size_t nl = value.find('\n');
  if (nl == std::string_view::npos) return Status::invalid_argument("pipeline message has no envelope line");
  json j = json::parse(value.substr(0, nl), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::invalid_argument("pipeline envelope is not a JSON object");
  Work w;
  try {
    SLUICE_ASSIGN_OR_RETURN(w.task, task_from_json(j.at("task")));
    w.version = j.at("version").get<std::string>();
    w.input_size = j.value("input_size", uint64_t{0});
    w.pages = j.value("pages", 0);
    w.format = j.value("format", "");
    w.attempts = j.value("attempts", 1);
    if (j.contains("stage_ms")) {
      for (const auto& e : j["stage_ms"])
        w.stage_ms.emplace_back(e.at(0).get<std::string>(), e.at(1).get<double>());
    }
    if (j.contains("blobs")) w.blobs = j["blobs"].get<std::vector<std::string>>();
    if (j.contains("payload_blob")) {
      w.payload_blob = j["payload_blob"].at("uri").get<std::string>();
      w.payload_hash = j["payload_blob"].value("hash", "");
    }
    w.empty_pages = j.value("empty_pages", 0);
    if (j.contains("ocr")) {
      const json& o = j["ocr"];
      OcrSummary s;
      s.pages = o.value("pages", 0);
      if (o.contains("mean_confidence")) s.mean_confidence = o["mean_confidence"].get<double>();
      for (const auto& p : o.value("page_confidence", json::array()))
        s.confidence.emplace_back(p.at(0).get<int>(), p.at(1).get<double>());
      w.ocr = std::move(s);
    }
    w.review_reason = j.value("review_reason", "");
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("pipeline envelope: ") + e.what());
  }
  return std::pair<Work, std::string_view>(std::move(w), value.substr(nl + 1));
}

std::string quality_gate_reason(const parse::ParsedDocument& doc, const PipelineSettings& settings) {
  std::string reason;
  if (const auto conf = parse::mean_ocr_confidence(doc);
      conf && settings.min_ocr_confidence > 0 && *conf < settings.min_ocr_confidence) {
    reason = "mean OCR confidence " + one_decimal(*conf) + " is below the minimum of " +
             std::to_string(settings.min_ocr_confidence) + " (--min-ocr-confidence)";
  }
  if (doc.pages > 0 && settings.max_empty_page_ratio < 1) {
    const double ratio = static_cast<double>(doc.empty_pages) / doc.pages;
    if (ratio > settings.max_empty_page_ratio) {
      if (!reason.empty()) reason += "; ";
      reason += std::to_string(doc.empty_pages) + " of " + std::to_string(doc.pages) +
                " pages have no text (" + one_decimal(ratio * 100) + "%), over the maximum of " +
                one_decimal(settings.max_empty_page_ratio * 100) + "% (--max-empty-page-ratio)";
    }
  }
  return reason;
}

Result<std::string> local_path_of(const SourceRef& source) {
  std::string_view uri = source.uri;
  if (uri.starts_with("file://")) return std::string(uri.substr(7));
  return Status::unsupported("source " + source.uri + " is not a local file (file://...)");
}

SourceRef file_source(const std::string& abs_path) {
  SourceRef s;
  s.uri = "file://" + abs_path;
  s.key = abs_path;
  return s;
}

std::string worker_name() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

Output result_output(const ResultNotification& r) {
  Output o;
  o.topic = kTopicResults;
  o.key = r.doc_id;
  o.value = to_json(r);
  o.headers = standard_headers(r.trace_id);
  return o;
}

StageConfig stage_config(const StageContext& ctx, const std::string& name, const std::string& input,
                         size_t workers) {
  return config_for(ctx, name.c_str(), input.c_str(), workers);
}

DeadLetterFn task_failure_notifier(const StageContext& ctx) {
  return failure_notifier(ctx, true);
}

Output publish_result(const ResultNotification& r) {
  return publish(r);
}

StageDef parse_stage(const StageContext& ctx) {
  // One thread per parser process: the processes do the work, the threads wait on them.
  return {config_for(ctx, "parse", kTopicUpload, ctx.settings.pool),
          as_process([ctx](const queue::Message& m) { return parse_one(ctx, m); }),
          failure_notifier(ctx, true)};
}

StageDef embed_stage(const StageContext& ctx) {
  return {config_for(ctx, "embed", kTopicParsed, ctx.settings.workers),
          as_process([ctx](const queue::Message& m) { return embed_one(ctx, m); }),
          failure_notifier(ctx, false)};
}

StageDef index_stage(const StageContext& ctx) {
  // The local index has one writer at a time: a second thread only adds lock contention (measured:
  // 317 HTML files indexed in 2.7 s of writer time with one thread, 4.4 s wall with two).
  return {config_for(ctx, "index", kTopicEmbedded, 1),
          as_process([ctx](const queue::Message& m) { return index_one(ctx, m); }),
          failure_notifier(ctx, false)};
}

std::string stage_group(const PipelineSettings& settings, std::string_view stage) {
  return settings.group + "-" + std::string(stage);
}

namespace {
// The stage factories above pair them the same way.
constexpr BuiltinStage kBuiltinStages[] = {
    {"parse", kTopicUpload}, {"embed", kTopicParsed}, {"index", kTopicEmbedded}};
}  // namespace

std::span<const BuiltinStage> builtin_stages() {
  return kBuiltinStages;
}

std::vector<std::string> pipeline_topic_names() {
  std::vector<std::string> out = {kTopicUpload,   kTopicParsed,  kTopicEmbedded,
                                  kTopicIngested, kTopicResults, kTopicReview};
  for (const auto& [name, input] : kBuiltinStages) {
    out.push_back(std::string(input) + kRetrySuffix);
    out.push_back(std::string(input) + kDlqSuffix);
  }
  out.push_back(kTopicDlqLedger);
  return out;
}

Status ensure_pipeline_topics(queue::Admin& admin, const PipelineSettings& settings) {
  for (const auto& t : pipeline_topic_names()) {
    SLUICE_RETURN_IF_ERROR(queue::ensure_topic(admin, t, {.partitions = settings.partitions}));
  }
  for (const auto& [name, input] : kBuiltinStages) {
    const std::string topics[] = {input, std::string(input) + kRetrySuffix};
    SLUICE_RETURN_IF_ERROR(admin.declare_group(stage_group(settings, name), topics));
  }
  return {};
}

}  // namespace sluice::pipeline
