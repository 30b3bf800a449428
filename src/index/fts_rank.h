// sluice_bm25: the keyword ranking of the local index, an FTS5 auxiliary function.
//
// It ranks exactly as FTS5's built-in bm25() (k1 = 1.2, b = 0.75, per-column weights, the same IDF
// and lengths) but skips most of its cost. bm25() reads every matching chunk's length from the
// %_docsize table, one B-tree lookup per row, which is most of a query's time (measured at 70k
// chunks: 8 ms of a 9 ms query of 5,000 matching rows). A chunk's score can only grow as its length
// shrinks, and its length is at least the number of query-term instances in it, so the function
// first computes that upper bound from the instances alone; when the bound cannot beat the `keep`
// best scores seen so far in the query, the chunk cannot be in the top `keep` either, and its length
// is never read. The top `keep` rows of `ORDER BY score LIMIT keep` are then the same as with
// bm25(); rows below them carry their bound, not their score.
//
// Usage:  SELECT rowid, sluice_bm25(chunks_fts, ?keep, w_col0, w_col1, ...) AS score
//         FROM chunks_fts WHERE chunks_fts MATCH ?q ORDER BY score LIMIT ?keep
// Like bm25(), lower is better (the score is negated). Weights default to 1.0 per column.
//
// Thread-safety: registration is per connection; SQLite serialises a connection's use.
#pragma once

#include <sqlite3.h>

#include "base/status.h"

namespace sluice::index {

inline constexpr const char* kFtsRankFunction = "sluice_bm25";

// Registers sluice_bm25 on db (which must have FTS5). Call once per connection.
[[nodiscard]] Status register_fts_rank(sqlite3* db);

}  // namespace sluice::index
