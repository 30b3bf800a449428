// The in-memory vector index of the local index: an hnswlib HierarchicalNSW graph over inner
// product (vectors are L2-normalised, so this is cosine similarity), labelled with the chunks'
// SQLite rowids. It is derived data: SQLite holds the vectors too, and the graph is rebuilt from
// there whenever its file is missing or stale. This class is the boundary where hnswlib's
// exceptions (std::runtime_error, std::bad_alloc) are caught and become Status values.
//
// Ownership: a VectorStore owns its space and graph. Thread-safety: search() and save() may run
// concurrently with each other; everything else needs exclusive access (the caller's lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::index {

class VectorStore {
 public:
  struct Hit {
    int64_t label;
    float similarity;  // inner product, 1 for identical normalised vectors
  };

  // An empty graph with room for `capacity` vectors (it grows as needed).
  static Result<std::unique_ptr<VectorStore>> create(size_t dimension, size_t capacity);
  // A graph saved by save(); any error (missing, truncated, corrupt) is returned, not thrown.
  static Result<std::unique_ptr<VectorStore>> load(const std::string& path, size_t dimension);
  ~VectorStore();

  // Adds vectors (labels.size() * dimension floats). Large batches are inserted by several
  // threads (hnswlib supports concurrent insertion); the graph grows first if it must.
  Status add(std::span<const int64_t> labels, std::span<const float> vectors);
  // Marks labels deleted; unknown or already deleted labels are ignored.
  Status remove(std::span<const int64_t> labels);
  // The n nearest live vectors, most similar first. The search list is at least kMinEf long.
  Result<std::vector<Hit>> search(std::span<const float> query, size_t n) const;
  // Writes the graph to path (via path.tmp, fsync, rename).
  Status save(const std::string& path) const;

  // The labels of the live (not deleted) vectors, in no particular order.
  std::vector<int64_t> live_labels() const;
  size_t dimension() const { return dimension_; }
  size_t size() const;     // elements in the graph, deleted included
  size_t deleted() const;  // elements marked deleted

  static constexpr size_t kMinEf = 64;

 private:
  struct Impl;
  explicit VectorStore(size_t dimension, std::unique_ptr<Impl> impl);
  size_t dimension_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::index
