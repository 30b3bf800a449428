#include "pipeline/settings.h"

namespace sluice::pipeline {
namespace {

using config::Kind;

// Defaults follow the and the seeds' numbers: 120 s and 1 GiB per parsed document,
// 3 attempts, chunks of ~400 tokens with 50 of overlap.
constexpr config::Property kPipelineProperties[] = {
    {"store", Kind::kString, "file:<data>/blobs", "Blob store for claim-check payloads: `file:DIR`", {}, 0, 0,
     "SLUICE_STORE"},
    {"index", Kind::kString, "local:<data>/index", "Index: `local:DIR` (SQLite + FTS5 + hnswlib)", {}, 0, 0,
     "SLUICE_INDEX"},
    {"embedder", Kind::kString, "hash:512",
     "Embedder: `hash:DIM` (offline feature hashing of words and CJK bigrams; lexical, not semantic)", {}, 0, 0,
     "SLUICE_EMBEDDER"},
    {"workers", Kind::kInt, "2", "Worker threads per stage", {}, 1, 256, "SLUICE_WORKERS"},
    {"pool", Kind::kInt, "2", "Parser processes (a crash or hang kills one of them, not the worker)", {}, 1, 256,
     "SLUICE_POOL", "POOL_SIZE"},
    {"parse_timeout", Kind::kMillis, "120000", "Time budget per document in the parser (then `resource_limit`)",
     {}, 100, 86'400'000, "SLUICE_PARSE_TIMEOUT"},
    {"parse_memory", Kind::kSize, "1GiB",
     "Address-space budget per parser process (then `resource_limit`); 0: none", {}, 0,
     std::numeric_limits<int64_t>::max(), "SLUICE_PARSE_MEMORY"},
    {"max_file_size", Kind::kSize, "100MiB", "Larger files fail with `resource_limit` before parsing", {}, 1,
     std::numeric_limits<int64_t>::max(), "SLUICE_MAX_FILE_SIZE"},
    {"max_attempts", Kind::kInt, "3", "Attempts for retriable failures before the dead-letter topic", {}, 1, 100,
     "SLUICE_MAX_ATTEMPTS"},
    {"retry_backoff", Kind::kMillis, "1000", "First retry delay; doubles each attempt (at most 60 s)", {}, 0,
     3'600'000, "SLUICE_RETRY_BACKOFF"},
    {"max_in_flight", Kind::kInt, "64", "Messages a stage holds between poll and commit (backpressure)", {}, 1,
     100'000, "SLUICE_MAX_IN_FLIGHT"},
    {"chunk_tokens", Kind::kInt, "400", "Chunk size in approximate tokens", {}, 16, 100'000, "SLUICE_CHUNK_TOKENS"},
    {"chunk_overlap", Kind::kInt, "50", "Tokens shared by consecutive chunks of a section", {}, 0, 10'000,
     "SLUICE_CHUNK_OVERLAP"},
    {"mask_pii", Kind::kBool, "false",
     "Mask e-mail addresses, phone numbers and Chinese ID numbers before text enters the queue", {}, 0, 0,
     "SLUICE_MASK_PII"},
    {"claim_check_bytes", Kind::kSize, "256KiB", "Payloads larger than this go to the blob store", {}, 1024,
     std::numeric_limits<int64_t>::max(), "SLUICE_CLAIM_CHECK_BYTES"},
    {"embed_batch", Kind::kInt, "64", "Chunks per embedder call", {}, 1, 10'000, "SLUICE_EMBED_BATCH"},
    {"partitions", Kind::kInt, "4", "Partitions of the pipeline topics sluice creates", {}, 1, 1024,
     "SLUICE_PARTITIONS"},
};

std::string replace_data(std::string s, const std::string& data_dir) {
  if (auto at = s.find("<data>"); at != std::string::npos) s.replace(at, 6, data_dir);
  return s;
}

}  // namespace

std::span<const config::Property> pipeline_properties() { return kPipelineProperties; }

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
  auto num = [&](std::string_view name) { return config::get_int(v, t, name); };
  SLUICE_ASSIGN_OR_RETURN(int64_t workers, num("workers"));
  SLUICE_ASSIGN_OR_RETURN(int64_t pool, num("pool"));
  SLUICE_ASSIGN_OR_RETURN(int64_t timeout, num("parse_timeout"));
  SLUICE_ASSIGN_OR_RETURN(int64_t memory, num("parse_memory"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_file, num("max_file_size"));
  SLUICE_ASSIGN_OR_RETURN(int64_t attempts, num("max_attempts"));
  SLUICE_ASSIGN_OR_RETURN(int64_t backoff, num("retry_backoff"));
  SLUICE_ASSIGN_OR_RETURN(int64_t in_flight, num("max_in_flight"));
  SLUICE_ASSIGN_OR_RETURN(int64_t tokens, num("chunk_tokens"));
  SLUICE_ASSIGN_OR_RETURN(int64_t overlap, num("chunk_overlap"));
  SLUICE_ASSIGN_OR_RETURN(int64_t claim, num("claim_check_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t batch, num("embed_batch"));
  SLUICE_ASSIGN_OR_RETURN(int64_t partitions, num("partitions"));
  SLUICE_ASSIGN_OR_RETURN(s.mask_pii, config::get_bool(v, t, "mask_pii"));
  if (overlap >= tokens) {
    return Status::invalid_argument("chunk_overlap (" + std::to_string(overlap) +
                                    ") must be smaller than chunk_tokens (" + std::to_string(tokens) + ")");
  }
  s.workers = static_cast<size_t>(workers);
  s.pool = static_cast<size_t>(pool);
  s.parse_timeout = std::chrono::milliseconds(timeout);
  s.parse_memory = static_cast<uint64_t>(memory);
  s.max_file_size = static_cast<uint64_t>(max_file);
  s.max_attempts = static_cast<int>(attempts);
  s.retry_backoff = std::chrono::milliseconds(backoff);
  s.max_in_flight = static_cast<size_t>(in_flight);
  s.chunk_tokens = static_cast<size_t>(tokens);
  s.chunk_overlap = static_cast<size_t>(overlap);
  s.claim_check_bytes = static_cast<uint64_t>(claim);
  s.embed_batch = static_cast<size_t>(batch);
  s.partitions = static_cast<int32_t>(partitions);
  return s;
}

}  // namespace sluice::pipeline
