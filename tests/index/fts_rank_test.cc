// sluice_bm25 must rank exactly as FTS5's bm25(): same top rows, same scores, whatever the row
// lengths and however many rows it skips reading the length of.
#include "index/fts_rank.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sluice::index {
namespace {

struct Db {
  sqlite3* db = nullptr;
  Db() { EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK); }
  ~Db() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  }
  // (rowid, score) of a ranked query.
  std::vector<std::pair<int64_t, double>> ranked(const std::string& sql, const std::string& match, int keep) {
    std::vector<std::pair<int64_t, double>> out;
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_bind_text(s, 1, match.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, keep);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
      out.emplace_back(sqlite3_column_int64(s, 0), sqlite3_column_double(s, 1));
    EXPECT_EQ(rc, SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(s);
    return out;
  }
};

// A corpus with a skewed vocabulary (a few common words, many rare ones) and rows half very short
// (1 to 4 words) and half up to 300 words long, so that length normalisation decides many ranks and
// short rows with few matches beat long rows with more.
void fill(Db& d, int rows, std::mt19937& rng) {
  d.exec("CREATE VIRTUAL TABLE t USING fts5(heading, body, content='')");
  d.exec("BEGIN");
  std::uniform_int_distribution<int> len(1, 300);
  std::geometric_distribution<int> word(0.02);
  for (int r = 1; r <= rows; ++r) {
    std::string heading = "w" + std::to_string(word(rng)) + " w" + std::to_string(word(rng));
    std::string body;
    int n = r % 2 == 0 ? 1 + r % 4 : len(rng);
    for (int i = 0; i < n; ++i) body += "w" + std::to_string(word(rng)) + " ";
    d.exec("INSERT INTO t(rowid, heading, body) VALUES(" + std::to_string(r) + ", '" + heading + "', '" +
           body + "')");
  }
  d.exec("COMMIT");
}

TEST(FtsRank, SameTopRowsAndScoresAsBm25) {
  Db d;
  ASSERT_TRUE(register_fts_rank(d.db).is_ok());
  std::mt19937 rng(7);
  fill(d, 3000, rng);
  const std::string builtin =
      "SELECT rowid, bm25(t, 0.5, 1.0) AS s FROM t WHERE t MATCH ?1 ORDER BY s, rowid LIMIT ?2";
  const std::string ours =
      "SELECT rowid, sluice_bm25(t, ?2, 0.5, 1.0) AS s FROM t WHERE t MATCH ?1 ORDER BY s, rowid LIMIT ?2";
  std::uniform_int_distribution<int> term(0, 120);
  int compared = 0;
  for (int q = 0; q < 60; ++q) {
    std::string match = "w" + std::to_string(term(rng));
    for (int extra = q % 4; extra > 0; --extra) match += " OR w" + std::to_string(term(rng));
    for (int keep : {1, 5, 20}) {
      auto want = d.ranked(builtin, match, keep);
      auto got = d.ranked(ours, match, keep);
      ASSERT_EQ(got.size(), want.size()) << match;
      for (size_t i = 0; i < want.size(); ++i) {
        // Equal scores may come in either order; the scores themselves must match.
        EXPECT_NEAR(got[i].second, want[i].second, 1e-9) << match << " keep " << keep << " rank " << i;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 500);  // the queries matched something
}

TEST(FtsRank, WrongUsageIsAnError) {
  Db d;
  ASSERT_TRUE(register_fts_rank(d.db).is_ok());
  d.exec("CREATE VIRTUAL TABLE t USING fts5(body)");
  d.exec("INSERT INTO t(body) VALUES('hello world')");
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(d.db, "SELECT sluice_bm25(t) FROM t WHERE t MATCH 'hello'", -1, &s, nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_step(s), SQLITE_ERROR);
  EXPECT_NE(std::string(sqlite3_errmsg(d.db)).find("usage"), std::string::npos) << sqlite3_errmsg(d.db);
  sqlite3_finalize(s);
}

}  // namespace
}  // namespace sluice::index
