// Records for the tests of the Index family (tests/index/): one text's vector, and a document's
// chunk records whose ids name doc, version and position (as hash(doc_id, version, seq) does in
// the pipeline), one page each. Thread-safety: as the embedder's.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "embed/embedder.h"
#include "index/index.h"

namespace sluice::testing {

inline std::vector<float> embed_one(embed::Embedder& embedder, std::string_view text) {
  std::vector<float> v;
  std::string_view texts[] = {text};
  EXPECT_TRUE(embedder.embed(texts, &v).is_ok());
  return v;
}

inline std::vector<index::ChunkRecord> chunk_records(embed::Embedder& embedder, const std::string& doc_id,
                                                     const std::string& version,
                                                     const std::vector<std::string>& texts,
                                                     const std::string& heading) {
  std::vector<index::ChunkRecord> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    index::ChunkRecord c;
    c.chunk_id = doc_id + "@" + version + "#" + std::to_string(i);
    c.seq = static_cast<int>(i);
    c.page = static_cast<int>(i + 1);
    c.heading = heading;
    c.text = texts[i];
    c.vector = embed_one(embedder, texts[i]);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace sluice::testing
