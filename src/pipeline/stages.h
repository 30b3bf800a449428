// The built-in stages of the document pipeline (DESIGN.md, "The flow"):
//
//   doc_upload ──[parse]──► doc_parsed ──[embed]──► doc_embedded ──[index]──► vector_ingested
//                   └──────────────┴──── skipped / failed ──────────────┴──► doc_results
//
// parse  reads the file named by the Task, hashes it (the version), skips it when the index already
//        holds that version, parses it in an isolated process and cleans the text;
// embed  cuts the document into chunks and embeds them in batches;
// index  upserts the chunks (replacing any older version) and publishes the success result.
// Every document ends with one result on doc_results: success, skipped, or failed (published by
// the stage that gave up, after its dead letter), or review (below).
//
// The quality gate: after parsing, a document whose mean OCR confidence is below
// min_ocr_confidence, or whose share of pages without text is above max_empty_page_ratio, goes to
// doc_review (the doc_parsed message it would have been, with the reason in its envelope and in a
// review_reason header) instead of doc_parsed, and its result is `review` with the reason. `sluice
// review release` (review.h) sends it on to doc_parsed, past the gate: embed and index take it
// from there and it ends with one more result (success, with "released from review: <reason>").
//
// Between stages a message's value is a Work envelope: one line of JSON (the task, version, sizes,
// pages, per-stage timings, attempts, claim-check blobs), a newline, then the payload (the parsed
// document, or the chunks with their vectors). A payload larger than claim_check_bytes goes to the
// blob store and the JSON line names it (uri + hash) instead; the index stage removes the
// document's blobs once it is done with them.
//
// Ownership: a StageContext borrows the queue, store, index, embedder and parser; they must outlive
// the stages. Thread-safety: the stage functions run on the StageRunner's worker threads at once.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "embed/embedder.h"
#include "index/index.h"
#include "pipeline/envelope.h"
#include "pipeline/parse_worker.h"
#include "pipeline/settings.h"
#include "pipeline/stage_runner.h"
#include "queue/queue.h"
#include "store/blob_store.h"

namespace sluice::pipeline {

class SourceFetcher;  // pipeline/sources.h

inline constexpr const char* kTopicUpload = "doc_upload";
inline constexpr const char* kTopicParsed = "doc_parsed";
inline constexpr const char* kTopicEmbedded = "doc_embedded";
inline constexpr const char* kTopicIngested = "vector_ingested";
inline constexpr const char* kTopicResults = "doc_results";
inline constexpr const char* kTopicReview = "doc_review";
// The header of a doc_review message that says why the gate held it.
inline constexpr const char* kHeaderReviewReason = "review_reason";
// The ledger of replayed dead letters (`sluice dlq replay`).
inline constexpr const char* kTopicDlqLedger = "sluice.dlq.replayed";

// Every topic the pipeline uses: the stages' topics, each stage input's retry and dead-letter
// topics, and the dead-letter ledger (for clusters where they must be created beforehand).
std::vector<std::string> pipeline_topic_names();

struct StageContext {
  store::BlobStore* store = nullptr;
  index::Index* index = nullptr;
  embed::Embedder* embedder = nullptr;
  IsolatedParser* parser = nullptr;  // the parse stage only
  SourceFetcher* sources = nullptr;  // the parse stage only: local copies of s3:// sources
  PipelineSettings settings;
  std::string worker;  // host:pid, shown in result notifications
};

// A stage ready for a StageRunner.
struct StageDef {
  StageConfig config;
  ProcessFn process;
  DeadLetterFn on_dead;
};

StageDef parse_stage(const StageContext& ctx);
StageDef embed_stage(const StageContext& ctx);
StageDef index_stage(const StageContext& ctx);

// What travels between the stages (see above).
struct Work {
  Task task;
  std::string version;
  uint64_t input_size = 0;
  int pages = 0;
  std::string format;
  int attempts = 1;  // the most attempts any stage needed so far
  std::vector<std::pair<std::string, double>> stage_ms;
  std::vector<std::string> blobs;          // claim-check blobs to remove once the document is indexed
  std::string payload_blob, payload_hash;  // set when the payload is in the blob store
  int empty_pages = 0;                     // pages that gave no text, even after OCR
  std::optional<OcrSummary> ocr;           // when OCR read any page
  std::string review_reason;               // why the quality gate held it (doc_review, and after release)
};

// Why the quality gate holds a parsed document ("" when it passes): see above.
std::string quality_gate_reason(const parse::ParsedDocument& doc, const PipelineSettings& settings);

std::string encode_work(const Work& w, std::string_view payload);
// The envelope and its inline payload (empty when payload_blob is set).
[[nodiscard]] Result<std::pair<Work, std::string_view>> decode_work(std::string_view value);

// "file:///abs/path" → "/abs/path"; other schemes are kUnsupported.
[[nodiscard]] Result<std::string> local_path_of(const SourceRef& source);
// The SourceRef of a local file (absolute path).
SourceRef file_source(const std::string& abs_path);

// "host:pid" of this process.
std::string worker_name();

// The built-in stages in pipeline order, with their input topics.
struct BuiltinStage {
  const char* name;
  const char* input;
};
std::span<const BuiltinStage> builtin_stages();

// The consumer group of a built-in stage ("sluice-parse" with the default --group).
std::string stage_group(const PipelineSettings& settings, std::string_view stage);

// Creates the pipeline's topics (pipeline_topic_names()) with settings.partitions partitions where
// they are missing (existing ones are kept as they are), and declares the built-in stages' groups
// on their inputs, so that a backend whose groups see only what is sent after they exist
// (RabbitMQ) loses nothing sent before the first worker starts.
[[nodiscard]] Status ensure_pipeline_topics(queue::Admin& admin, const PipelineSettings& settings);

// A result notification message (topic doc_results, keyed by doc_id, with the standard headers).
Output result_output(const ResultNotification& r);

// For stages defined elsewhere (custom stages, exec_stage.h) that follow the built-ins' rules:
// the StageConfig of a stage from the settings (group <group>-<name>, attempts, backoff, ...);
StageConfig stage_config(const StageContext& ctx, const std::string& name, const std::string& input,
                         size_t workers);
// the failure notification of a stage whose input is a Task (published after its dead letter);
DeadLetterFn task_failure_notifier(const StageContext& ctx);
// result_output(r), with r also written to the JSON-lines log as the built-in stages write it.
Output publish_result(const ResultNotification& r);

}  // namespace sluice::pipeline
