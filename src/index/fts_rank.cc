// See fts_rank.h. The formula follows SQLite's fts5_aux.c (fts5Bm25Function) so that ranks do not
// change with the function; only which rows get their length read does.
#include "index/fts_rank.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

namespace sluice::index {
namespace {

constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

// What one query needs once: IDF per phrase, the average row length, and the best scores so far.
struct QueryState {
  std::vector<double> idf;
  double avgdl = 0;
  std::vector<double> freq;  // per phrase, reused for every row
  // Min-heap of the `keep` best scores computed so far; its top is the score to beat.
  std::priority_queue<double, std::vector<double>, std::greater<>> best;
};

int count_row(const Fts5ExtensionApi*, Fts5Context*, void* user) {
  ++*static_cast<sqlite3_int64*>(user);
  return SQLITE_OK;
}

// Builds the per-query state as bm25() does: N rows, n(q) rows with the phrase, IDF clamped to a
// tiny positive value for phrases in more than half the rows.
int make_state(const Fts5ExtensionApi* api, Fts5Context* fts, QueryState** out) {
  auto state = std::make_unique<QueryState>();
  sqlite3_int64 rows = 0, tokens = 0;
  int rc = api->xRowCount(fts, &rows);
  if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, -1, &tokens);
  if (rc != SQLITE_OK) return rc;
  state->avgdl = rows > 0 ? static_cast<double>(tokens) / static_cast<double>(rows) : 1.0;
  if (state->avgdl <= 0) state->avgdl = 1.0;
  const int phrases = api->xPhraseCount(fts);
  state->idf.resize(phrases);
  state->freq.resize(phrases);
  for (int i = 0; i < phrases; ++i) {
    sqlite3_int64 hits = 0;
    rc = api->xQueryPhrase(fts, i, &hits, count_row);
    if (rc != SQLITE_OK) return rc;
    double idf = std::log((static_cast<double>(rows - hits) + 0.5) / (static_cast<double>(hits) + 0.5));
    state->idf[i] = idf <= 0.0 ? 1e-6 : idf;
  }
  *out = state.get();
  rc = api->xSetAuxdata(fts, state.release(), [](void* p) { delete static_cast<QueryState*>(p); });
  return rc;
}

void rank(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int argc,
          sqlite3_value** argv) {
  if (argc < 1) {
    sqlite3_result_error(ctx, "sluice_bm25: usage sluice_bm25(fts_table, keep, weight...)", -1);
    return;
  }
  const sqlite3_int64 keep = std::max<sqlite3_int64>(sqlite3_value_int64(argv[0]), 1);
  auto* state = static_cast<QueryState*>(api->xGetAuxdata(fts, 0));
  if (state == nullptr) {
    if (int rc = make_state(api, fts, &state); rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
  }

  int instances = 0;
  if (int rc = api->xInstCount(fts, &instances); rc != SQLITE_OK) {
    sqlite3_result_error_code(ctx, rc);
    return;
  }
  std::fill(state->freq.begin(), state->freq.end(), 0.0);
  for (int i = 0; i < instances; ++i) {
    int phrase = 0, column = 0, offset = 0;
    if (int rc = api->xInst(fts, i, &phrase, &column, &offset); rc != SQLITE_OK) {
      sqlite3_result_error_code(ctx, rc);
      return;
    }
    double weight = column + 1 < argc ? sqlite3_value_double(argv[column + 1]) : 1.0;
    state->freq[phrase] += weight;
  }

  // The score as a function of the row length D: sum of idf * f * (k1 + 1) / (f + k1 * (1 - b +
  // b * D / avgdl)). It falls as D grows, and D >= the number of instances.
  auto score_at = [&](double length) {
    double s = 0;
    const double norm = kK1 * (1.0 - kB + kB * length / state->avgdl);
    for (size_t i = 0; i < state->freq.size(); ++i) {
      const double f = state->freq[i];
      if (f != 0.0) s += state->idf[i] * (f * (kK1 + 1.0)) / (f + norm);
    }
    return s;
  };
  const double bound = score_at(static_cast<double>(instances));
  if (static_cast<sqlite3_int64>(state->best.size()) >= keep && bound <= state->best.top()) {
    sqlite3_result_double(ctx, -bound);  // cannot enter the top `keep`: its length is not needed
    return;
  }
  int length = 0;
  if (int rc = api->xColumnSize(fts, -1, &length); rc != SQLITE_OK) {
    sqlite3_result_error_code(ctx, rc);
    return;
  }
  const double score = score_at(static_cast<double>(length));
  state->best.push(score);
  if (static_cast<sqlite3_int64>(state->best.size()) > keep) state->best.pop();
  sqlite3_result_double(ctx, -score);
}

}  // namespace

Status register_fts_rank(sqlite3* db) {
  // The documented way to reach the FTS5 API of a connection (sqlite.org/fts5.html, section 7).
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
    sqlite3_step(stmt);
  }
  sqlite3_finalize(stmt);
  if (api == nullptr || api->iVersion < 2) {
    return Status::internal("index: this SQLite has no FTS5 extension API (" +
                            std::string(sqlite3_errmsg(db)) + ")");
  }
  rc = api->xCreateFunction(api, kFtsRankFunction, nullptr, rank, nullptr);
  if (rc != SQLITE_OK) {
    return Status::internal("index: cannot register " + std::string(kFtsRankFunction) + ": " +
                            sqlite3_errstr(rc));
  }
  return Status::ok();
}

}  // namespace sluice::index
