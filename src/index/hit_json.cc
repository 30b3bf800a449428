#include "index/index.h"

namespace sluice::index {

nlohmann::ordered_json search_hit_json(const SearchHit& h, int rank) {
  return {{"rank", rank},   {"score", h.score},     {"doc_id", h.doc_id},     {"source", h.source},
          {"page", h.page}, {"heading", h.heading}, {"chunk_id", h.chunk_id}, {"text", h.text}};
}

}  // namespace sluice::index
