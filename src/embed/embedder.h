// Embedders turn texts into vectors. One interface: the offline `hash` embedder (feature hashing
// of words, word bigrams and CJK character bigrams — lexical, not semantic, and the docs say so)
// and the HTTP embedders (Ollama, OpenAI-compatible; http_embedder.h).
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

// "hash:512" (also "hash" = 512), "ollama://HOST[:PORT]/MODEL[?settings]",
// "openai://HOST[:PORT][/v1]?model=M[&settings]" (openais:// for HTTPS). An HTTP embedder sends
// one probe request here unless the URI gives `dimensions`. Unknown schemes are kUnsupported, a
// bad URI kBadInput; a service that cannot be reached is retriable.
[[nodiscard]] Result<std::unique_ptr<Embedder>> open_embedder(std::string_view uri);

}  // namespace sluice::embed
