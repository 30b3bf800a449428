// Indexes store chunks with their vectors and answer searches. One interface: the embedded
// `local` index (SQLite for the truth, FTS5 for keywords, hnswlib for vectors, hybrid search by
// reciprocal-rank fusion) and `chroma` (a Chroma server over its HTTP v2 API, chroma_index.h).
//
// A document is replaced whole: upsert_document() writes the new version's chunks and removes the
// old version's so that a search never sees two versions (local: in one transaction; chroma: a
// version pointer per document, see chroma_index.h).
// Thread-safety: all methods are thread-safe (the local index serialises writers).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::index {

struct ChunkRecord {
  std::string chunk_id;  // hash(doc_id, version, seq)
  int seq = 0;           // position in the document
  int page = 0;          // 0: no pages
  std::string heading;   // heading path joined with " > "
  std::string text;
  std::vector<float> vector;
};

struct DocumentRecord {
  std::string doc_id;
  std::string version;  // hash of the content
  std::string source;   // the original path or URI
  int pages = 0;
  std::string metadata_json = "{}";
};

struct SearchHit {
  double score = 0;
  std::string chunk_id;
  std::string doc_id;
  std::string source;
  int page = 0;
  std::string heading;
  std::string text;
};

struct SearchOptions {
  size_t k = 5;
  enum class Mode { kHybrid, kKeyword, kVector } mode = Mode::kHybrid;
};

class Index {
 public:
  virtual ~Index() = default;
  // Writes the document's chunks (replacing any other version of it). Idempotent.
  [[nodiscard]] virtual Status upsert_document(const DocumentRecord& doc,
                                               std::span<const ChunkRecord> chunks) = 0;
  // The stored version of a document, or nullopt.
  [[nodiscard]] virtual Result<std::optional<DocumentRecord>> get_document(std::string_view doc_id) = 0;
  [[nodiscard]] virtual Status delete_document(std::string_view doc_id) = 0;
  [[nodiscard]] virtual Result<std::vector<DocumentRecord>> list_documents() = 0;
  [[nodiscard]] virtual Result<size_t> chunk_count(std::optional<std::string_view> doc_id = std::nullopt) = 0;
  // Searches by the query's text (keywords) and vector (may be empty for keyword-only).
  [[nodiscard]] virtual Result<std::vector<SearchHit>> search(std::string_view query,
                                                              std::span<const float> vector,
                                                              const SearchOptions& opts) = 0;
};

// A hit as `sluice search --json` prints it and GET /v1/search returns it (DESIGN.md's contract):
// rank (from 1), score, doc_id, source, page, heading, chunk_id, text.
nlohmann::ordered_json search_hit_json(const SearchHit& h, int rank);

// "local:DIR" (SQLite file DIR/index.db, vectors DIR/vectors.hnsw) or "chroma://HOST:PORT/COLLECTION"
// (a Chroma server; chroma_index.h). dimension and embedder name are stored on creation; opening
// with another is kBadInput naming both.
[[nodiscard]] Result<std::unique_ptr<Index>> open_index(std::string_view uri, size_t dimension,
                                                        std::string_view embedder_name);

}  // namespace sluice::index
