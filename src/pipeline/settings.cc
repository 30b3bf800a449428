#include "pipeline/settings.h"

#include <cerrno>
#include <cstdlib>
#include <type_traits>

namespace sluice::pipeline {
namespace {

using config::Kind;

// Defaults follow the and the seeds' numbers: 120 s and 1 GiB per parsed document,
// 3 attempts, chunks of ~400 tokens with 50 of overlap.
constexpr config::Property kPipelineProperties[] = {
    {"store",
     Kind::kString,
     "file:<data>/blobs",
     "Blob store for claim-check payloads: `file:DIR` or `s3://BUCKET/PREFIX` (endpoint and region from "
     "--s3-endpoint and --s3-region)",
     {},
     0,
     0,
     "SLUICE_STORE"},
    {"index",
     Kind::kString,
     "local:<data>/index",
     "Index: `local:DIR` (SQLite + FTS5 + hnswlib) or `chroma://HOST[:PORT]/COLLECTION[?settings]` (a "
     "Chroma server, see below and docs/chroma.md; token from `CHROMA_API_KEY`)",
     {},
     0,
     0,
     "SLUICE_INDEX"},
    {"embedder",
     Kind::kString,
     "hash:512",
     "Embedder: `hash:DIM` (offline feature hashing of words and CJK bigrams; lexical, not semantic), "
     "`ollama://HOST[:PORT]/MODEL` or `openai://HOST[:PORT]/v1?model=MODEL` (`openais://` for HTTPS; "
     "settings below)",
     {},
     0,
     0,
     "SLUICE_EMBEDDER"},
    {"workers", Kind::kInt, "2", "Worker threads per stage", {}, 1, 256, "SLUICE_WORKERS"},
    {"pool",
     Kind::kInt,
     "2",
     "Parser processes (a crash or hang kills one of them, not the worker)",
     {},
     1,
     256,
     "SLUICE_POOL",
     "POOL_SIZE"},
    {"parse_timeout",
     Kind::kMillis,
     "120000",
     "Time budget per document in the parser (then `resource_limit`)",
     {},
     100,
     86'400'000,
     "SLUICE_PARSE_TIMEOUT"},
    {"parse_memory",
     Kind::kSize,
     "1GiB",
     "Address-space budget per parser process (then `resource_limit`); 0: none",
     {},
     0,
     std::numeric_limits<int64_t>::max(),
     "SLUICE_PARSE_MEMORY"},
    {"max_file_size",
     Kind::kSize,
     "100MiB",
     "Larger files fail with `resource_limit` before parsing",
     {},
     1,
     std::numeric_limits<int64_t>::max(),
     "SLUICE_MAX_FILE_SIZE"},
    {"max_attempts",
     Kind::kInt,
     "3",
     "Attempts for retriable failures before the dead-letter topic",
     {},
     1,
     100,
     "SLUICE_MAX_ATTEMPTS"},
    {"retry_backoff",
     Kind::kMillis,
     "1000",
     "First retry delay; doubles each attempt (at most 60 s)",
     {},
     0,
     3'600'000,
     "SLUICE_RETRY_BACKOFF"},
    {"max_in_flight",
     Kind::kInt,
     "64",
     "Messages a stage holds between poll and commit (backpressure; also the most one poll takes)",
     {},
     1,
     100'000,
     "SLUICE_MAX_IN_FLIGHT",
     "KAFKA_MAX_POLL_RECORDS"},
    {"group",
     Kind::kString,
     "sluice",
     "Consumer-group prefix: each stage joins `<group>-<stage>` (`sluice-parse`, ...); workers with "
     "the same group share the work, another group processes everything again",
     {},
     0,
     0,
     "SLUICE_GROUP",
     "KAFKA_GROUP_ID"},
    {"start_from", Kind::kEnum, "earliest",
     "Where a stage's group starts when it has committed nothing yet: `earliest` (tasks queued "
     "before the first worker are processed) or `latest`",
     "earliest|latest", 0, 0, "SLUICE_START_FROM", "KAFKA_AUTO_OFFSET_RESET"},
    {"commit_interval",
     Kind::kMillis,
     "200",
     "How often a stage commits the offsets of the messages it has finished (never before)",
     {},
     10,
     600'000,
     "SLUICE_COMMIT_INTERVAL",
     "KAFKA_AUTO_COMMIT_INTERVAL_MS"},
    {"chunk_tokens",
     Kind::kInt,
     "400",
     "Chunk size in approximate tokens",
     {},
     16,
     100'000,
     "SLUICE_CHUNK_TOKENS"},
    {"chunk_overlap",
     Kind::kInt,
     "50",
     "Tokens shared by consecutive chunks of a section",
     {},
     0,
     10'000,
     "SLUICE_CHUNK_OVERLAP"},
    {"mask_pii",
     Kind::kBool,
     "false",
     "Mask e-mail addresses, phone numbers and Chinese ID numbers before text enters the queue",
     {},
     0,
     0,
     "SLUICE_MASK_PII"},
    {"claim_check_bytes",
     Kind::kSize,
     "256KiB",
     "Payloads larger than this go to the blob store",
     {},
     1024,
     std::numeric_limits<int64_t>::max(),
     "SLUICE_CLAIM_CHECK_BYTES"},
    {"s3_endpoint",
     Kind::kString,
     "",
     "S3 / OBS / MinIO endpoint for s3:// sources and stores, e.g. "
     "`https://obs.cn-north-4.myhuaweicloud.com`; "
     "empty: AWS_ENDPOINT_URL, else AWS's endpoint for the region. Credentials: AWS_ACCESS_KEY_ID + "
     "AWS_SECRET_ACCESS_KEY or OBS_ACCESS_KEY + OBS_SECRET_KEY",
     {},
     0,
     0,
     "SLUICE_S3_ENDPOINT",
     "OBS_SERVER"},
    {"s3_region",
     Kind::kString,
     "",
     "S3 region (signs the requests); empty: AWS_REGION, else us-east-1",
     {},
     0,
     0,
     "SLUICE_S3_REGION",
     "OBS_REGION"},
    {"cleanup_files",
     Kind::kBool,
     "true",
     "Custom stages (`worker --pipeline`): remove a task's temp files after it succeeded; set, it wins over "
     "the stage's `cleanup_files`",
     {},
     0,
     0,
     "SLUICE_CLEANUP_FILES",
     "CLEANUP_FILES"},
    {"cleanup_on_error",
     Kind::kBool,
     "false",
     "Custom stages: remove a failed task's temp files too (by default they are kept and the failure names "
     "them); set, it wins over the stage's `cleanup_on_error`",
     {},
     0,
     0,
     "SLUICE_CLEANUP_ON_ERROR",
     "CLEANUP_ON_ERROR"},
    {"ocr", Kind::kEnum, "auto",
     "When text is read from pixels (tesseract): `auto` (PNG, JPEG and TIFF images, and PDF pages without a "
     "text layer), `always` (every PDF page too, in place of its text layer), `never` (images fail with "
     "`bad_input`, pages without a text layer stay empty)",
     "auto|always|never", 0, 0, "SLUICE_OCR"},
    {"ocr_lang",
     Kind::kString,
     "eng+chi_sim",
     "OCR languages, tesseract's names joined by `+`; each needs its package (`tesseract-ocr-eng`, "
     "`tesseract-ocr-chi-sim`, ...), checked when the parse stage starts",
     {},
     0,
     0,
     "SLUICE_OCR_LANG"},
    {"ocr_dpi",
     Kind::kInt,
     "300",
     "Resolution PDF pages are rendered at for OCR (lowered for pages over 64 million pixels)",
     {},
     72,
     600,
     "SLUICE_OCR_DPI"},
    {"min_ocr_confidence",
     Kind::kInt,
     "60",
     "Quality gate: a document whose mean OCR confidence (0-100, over its OCR'd pages that gave text) is "
     "below this goes to `doc_review` instead of the index (`sluice review`); 0: off",
     {},
     0,
     100,
     "SLUICE_MIN_OCR_CONFIDENCE"},
    {"max_empty_page_ratio",
     Kind::kString,
     "0.5",
     "Quality gate: a paged document (PDF, TIFF) with a larger share of pages that gave no text, even after "
     "OCR, goes to `doc_review` instead of the index; a number from 0 to 1, 1: off",
     {},
     0,
     0,
     "SLUICE_MAX_EMPTY_PAGE_RATIO"},
    {"embed_batch", Kind::kInt, "64", "Chunks per embedder call", {}, 1, 10'000, "SLUICE_EMBED_BATCH"},
    {"partitions",
     Kind::kInt,
     "4",
     "Partitions of the pipeline topics sluice creates",
     {},
     1,
     1024,
     "SLUICE_PARTITIONS"},
};

std::string replace_data(std::string s, const std::string& data_dir) {
  if (auto at = s.find("<data>"); at != std::string::npos) s.replace(at, 6, data_dir);
  return s;
}

}  // namespace

std::span<const config::Property> pipeline_properties() {
  return kPipelineProperties;
}

Result<PipelineSettings> resolve_settings(const config::Values& flags, const std::string& data_dir,
                                          const std::function<const char*(const char*)>& getenv) {
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::layer(kPipelineProperties, flags, getenv));
  const auto t = std::span<const config::Property>(kPipelineProperties);
  PipelineSettings s;
  SLUICE_ASSIGN_OR_RETURN(s.store, config::get_string(v, t, "store"));
  SLUICE_ASSIGN_OR_RETURN(s.index, config::get_string(v, t, "index"));
  SLUICE_ASSIGN_OR_RETURN(s.embedder, config::get_string(v, t, "embedder"));
  s.store = replace_data(s.store, data_dir);
  s.index = replace_data(s.index, data_dir);
  s.data_dir = data_dir;
  // Each number straight into its field (the table has checked its range).
  auto read = [&](std::string_view name, auto* field) -> Status {
    SLUICE_ASSIGN_OR_RETURN(int64_t n, config::get_int(v, t, name));
    using Field = std::remove_pointer_t<decltype(field)>;
    if constexpr (std::is_same_v<Field, std::chrono::milliseconds>) {
      *field = std::chrono::milliseconds(n);
    } else {
      *field = static_cast<Field>(n);
    }
    return {};
  };
  SLUICE_RETURN_IF_ERROR(read("workers", &s.workers));
  SLUICE_RETURN_IF_ERROR(read("pool", &s.pool));
  SLUICE_RETURN_IF_ERROR(read("parse_timeout", &s.parse_timeout));
  SLUICE_RETURN_IF_ERROR(read("parse_memory", &s.parse_memory));
  SLUICE_RETURN_IF_ERROR(read("max_file_size", &s.max_file_size));
  SLUICE_RETURN_IF_ERROR(read("max_attempts", &s.max_attempts));
  SLUICE_RETURN_IF_ERROR(read("retry_backoff", &s.retry_backoff));
  SLUICE_RETURN_IF_ERROR(read("max_in_flight", &s.max_in_flight));
  SLUICE_RETURN_IF_ERROR(read("chunk_tokens", &s.chunk_tokens));
  SLUICE_RETURN_IF_ERROR(read("chunk_overlap", &s.chunk_overlap));
  SLUICE_RETURN_IF_ERROR(read("claim_check_bytes", &s.claim_check_bytes));
  SLUICE_RETURN_IF_ERROR(read("embed_batch", &s.embed_batch));
  SLUICE_RETURN_IF_ERROR(read("partitions", &s.partitions));
  SLUICE_RETURN_IF_ERROR(read("commit_interval", &s.commit_interval));
  SLUICE_ASSIGN_OR_RETURN(s.mask_pii, config::get_bool(v, t, "mask_pii"));
  SLUICE_ASSIGN_OR_RETURN(s.group, config::get_string(v, t, "group"));
  SLUICE_ASSIGN_OR_RETURN(s.s3_endpoint, config::get_string(v, t, "s3_endpoint"));
  SLUICE_ASSIGN_OR_RETURN(s.s3_region, config::get_string(v, t, "s3_region"));
  if (v.count("cleanup_files")) {
    SLUICE_ASSIGN_OR_RETURN(s.cleanup_files, config::get_bool(v, t, "cleanup_files"));
  }
  if (v.count("cleanup_on_error")) {
    SLUICE_ASSIGN_OR_RETURN(s.cleanup_on_error, config::get_bool(v, t, "cleanup_on_error"));
  }
  if (s.group.empty() || s.group.find_first_of(" \t\n") != std::string::npos) {
    return Status::invalid_argument(
        "group '" + s.group + "' must be a non-empty name without spaces (the stages join <group>-<stage>)");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string ocr_mode, config::get_string(v, t, "ocr"));
  SLUICE_ASSIGN_OR_RETURN(s.ocr.mode, parse::ocr_mode_from_name(ocr_mode));
  SLUICE_ASSIGN_OR_RETURN(s.ocr.languages, config::get_string(v, t, "ocr_lang"));
  SLUICE_RETURN_IF_ERROR(read("ocr_dpi", &s.ocr.dpi));
  SLUICE_RETURN_IF_ERROR(read("min_ocr_confidence", &s.min_ocr_confidence));
  SLUICE_ASSIGN_OR_RETURN(std::string ratio, config::get_string(v, t, "max_empty_page_ratio"));
  {
    char* end = nullptr;
    errno = 0;
    const double r = std::strtod(ratio.c_str(), &end);
    if (ratio.empty() || end != ratio.c_str() + ratio.size() || errno != 0 || !(r >= 0 && r <= 1)) {
      return Status::invalid_argument(
          "max_empty_page_ratio '" + ratio +
          "' must be a number from 0 to 1 (the share of empty pages a document may "
          "have; 1 turns the check off)");
    }
    s.max_empty_page_ratio = r;
  }
  SLUICE_ASSIGN_OR_RETURN(std::string start, config::get_string(v, t, "start_from"));
  s.start_from = start == "latest" ? queue::StartFrom::kLatest : queue::StartFrom::kEarliest;
  if (s.chunk_overlap >= s.chunk_tokens) {
    return Status::invalid_argument("chunk_overlap (" + std::to_string(s.chunk_overlap) +
                                    ") must be smaller than chunk_tokens (" + std::to_string(s.chunk_tokens) +
                                    ")");
  }
  return s;
}

}  // namespace sluice::pipeline
