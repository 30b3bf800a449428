// The last step of every index's search: the reader wants the k best places, not one file's k
// best paragraphs, so at most kMaxHitsPerDocument hits of one document are kept unless fewer
// documents match, and hits with the same text (the same passage in two files, e.g. two builds of
// one manual) are shown once. Shared by the local and chroma indexes so both answer alike.
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <vector>

#include "index/index.h"

namespace sluice::index {

inline constexpr size_t kMaxHitsPerDocument = 2;

// Keeps the first k hits of a ranked list under the rules above (a stable pass).
void diversify_hits(std::vector<SearchHit>& hits, size_t k);

}  // namespace sluice::index
