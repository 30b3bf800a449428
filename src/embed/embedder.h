// Embedders turn texts into vectors. One interface: the offline `hash` embedder (feature hashing
// of words, word bigrams and CJK character bigrams — lexical, not semantic, and the docs say so)
// and, later, HTTP embedders (Ollama, OpenAI-compatible).
// Thread-safety: embed() may be called from several threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::embed {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual size_t dimension() const = 0;
  // Identifies model and dimension, e.g. "hash:512"; an index built with one refuses another.
  virtual std::string name() const = 0;
  // Appends texts.size() * dimension() floats (L2-normalised vectors, one per text) to out.
  [[nodiscard]] virtual Status embed(std::span<const std::string_view> texts, std::vector<float>* out) = 0;
};

// "hash:512" (also "hash" = 512). Other schemes are kUnsupported for now; bad dimensions kBadInput.
[[nodiscard]] Result<std::unique_ptr<Embedder>> open_embedder(std::string_view uri);

}  // namespace sluice::embed
