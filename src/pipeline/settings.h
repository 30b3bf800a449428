// The pipeline's settings: one property table (pipeline_properties()) drives the command-line
// options of `sluice ingest` (and later serve/worker), their environment variables, --help and
// docs/CONFIGURATION.md. PipelineSettings is the checked, typed result.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/status.h"
#include "config/property.h"
#include "parse/parser.h"
#include "queue/queue.h"

namespace sluice::pipeline {

struct PipelineSettings {
  std::string store;     // blob store URI (claim-check payloads)
  std::string index;     // index URI
  std::string embedder;  // embedder URI
  size_t workers = 2;    // worker threads per stage
  size_t pool = 2;       // parse worker processes
  std::chrono::milliseconds parse_timeout{120000};
  uint64_t parse_memory = 1ull << 30;
  uint64_t max_file_size = 100ull << 20;
  int max_attempts = 3;
  std::chrono::milliseconds retry_backoff{1000};
  size_t max_in_flight = 64;
  size_t chunk_tokens = 400;
  size_t chunk_overlap = 50;
  bool mask_pii = false;
  uint64_t claim_check_bytes = 256ull << 10;
  size_t embed_batch = 64;
  int32_t partitions = 4;
  std::string group = "sluice";  // the stages' groups are <group>-<stage>
  queue::StartFrom start_from = queue::StartFrom::kEarliest;
  std::chrono::milliseconds commit_interval{200};
  std::string s3_endpoint;  // empty: the store's environment defaults (AWS_ENDPOINT_URL, AWS)
  std::string s3_region;
  std::string data_dir;  // where downloads of s3:// sources go (<data>/tmp); from resolve_settings
  // Custom stages' temp files (pipeline_file.h): set only when a flag or the environment gave
  // them (CLEANUP_FILES, CLEANUP_ON_ERROR), so they win over a stage's own setting in its file.
  std::optional<bool> cleanup_files;     // after success; default true
  std::optional<bool> cleanup_on_error;  // after a failure; default false (kept for a look)
  parse::OcrOptions ocr;                 // --ocr, --ocr-lang, --ocr-dpi
  // The quality gate of the parse stage (stages.h): documents below it go to doc_review.
  int min_ocr_confidence = 60;        // 0: off
  double max_empty_page_ratio = 0.5;  // 1: off
};

std::span<const config::Property> pipeline_properties();

// Layers flags > environment > defaults (config::layer) and converts. "<data>" in the default
// URIs becomes data_dir.
[[nodiscard]] Result<PipelineSettings> resolve_settings(
    const config::Values& flags, const std::string& data_dir,
    const std::function<const char*(const char*)>& getenv);

}  // namespace sluice::pipeline
