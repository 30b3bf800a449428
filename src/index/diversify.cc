#include "index/diversify.h"

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace sluice::index {

void diversify_hits(std::vector<SearchHit>& hits, size_t k) {
  std::vector<SearchHit> picked, held;
  std::unordered_map<std::string, size_t> per_doc;
  std::unordered_set<std::string> texts;
  for (auto& h : hits) {
    if (picked.size() >= k) break;
    if (!texts.insert(h.text).second) continue;
    if (per_doc[h.doc_id]++ >= kMaxHitsPerDocument) {
      held.push_back(std::move(h));
      continue;
    }
    picked.push_back(std::move(h));
  }
  for (auto& h : held) {
    if (picked.size() >= k) break;
    picked.push_back(std::move(h));
  }
  hits = std::move(picked);
}

}  // namespace sluice::index
