// Tests of the local index: keyword, vector and hybrid search in English and Chinese, atomic
// version replacement under concurrent searches, idempotent upserts, deletes, reopening with the
// saved vector graph and rebuilding it, embedder mismatches, FTS-hostile queries, and a 100k-chunk
// scale smoke (DISABLED_ unless asked for; see LocalIndexScaleTest below).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "embed/embedder.h"
#include "index/fts_text.h"
#include "index/index.h"
#include "support/index_records.h"

namespace sluice::index {
namespace {

namespace fs = std::filesystem;
using Mode = SearchOptions::Mode;

constexpr Mode kAllModes[] = {Mode::kKeyword, Mode::kVector, Mode::kHybrid};

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kKeyword: return "keyword";
    case Mode::kVector: return "vector";
    case Mode::kHybrid: return "hybrid";
  }
  return "?";
}

class LocalIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> seq{0};
    dir_ = fs::temp_directory_path() /
           ("sluice-index-" + std::to_string(::getpid()) + "-" + std::to_string(seq++) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto e = embed::open_embedder("hash:256");
    ASSERT_TRUE(e.is_ok());
    embedder_ = std::move(e).value();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string uri() const { return "local:" + dir_.string(); }

  std::unique_ptr<Index> open() {
    auto r = open_index(uri(), embedder_->dimension(), embedder_->name());
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : nullptr;
  }

  std::vector<float> embed(std::string_view text) { return testing::embed_one(*embedder_, text); }

  // A document whose chunk ids name doc, version and position (as hash(doc_id, version, seq) would).
  Status upsert(Index& index, const std::string& doc_id, const std::string& version,
                const std::vector<std::string>& texts, const std::string& heading = "Intro") {
    DocumentRecord doc;
    doc.doc_id = doc_id;
    doc.version = version;
    doc.source = "/docs/" + doc_id + ".md";
    doc.pages = static_cast<int>(texts.size());
    doc.metadata_json = R"({"lang":"any"})";
    return index.upsert_document(doc, testing::chunk_records(*embedder_, doc_id, version, texts, heading));
  }

  std::vector<SearchHit> search(Index& index, std::string_view query, Mode mode, size_t k = 5) {
    SearchOptions opts;
    opts.k = k;
    opts.mode = mode;
    std::vector<float> v = mode == Mode::kKeyword ? std::vector<float>() : embed(query);
    auto r = index.search(query, v, opts);
    EXPECT_TRUE(r.is_ok()) << mode_name(mode) << " '" << query << "': " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : std::vector<SearchHit>();
  }

  // Loads a small corpus: English and Chinese documents on distinct topics.
  void load_corpus(Index& index) {
    ASSERT_TRUE(
        upsert(index, "db", "v1",
               {"Configure the database connection pool size in pool.toml; the default pool holds ten "
                "connections.",
                "Database backups run nightly and are kept for thirty days."},
               "Operations > Database")
            .is_ok());
    ASSERT_TRUE(upsert(index, "fruit", "v1",
                       {"Bananas are rich in potassium and grow in tropical climates.",
                        "Apples keep for months in cold storage."},
                       "Food")
                    .is_ok());
    ASSERT_TRUE(upsert(index, "zh-db", "v1",
                       {"数据库连接池的大小在配置文件中设置，默认为十个连接。",
                        "数据库每天夜间自动备份，保留三十天。"},
                       "运维 > 数据库")
                    .is_ok());
    ASSERT_TRUE(upsert(index, "zh-weather", "v1",
                       {"今天天气晴朗，适合户外运动。", "明天有雨，记得带伞出门。", "索引"}, "天气")
                    .is_ok());
  }

  fs::path dir_;
  std::unique_ptr<embed::Embedder> embedder_;
};

TEST(LocalIndexFtsText, DerivedText) {
  EXPECT_EQ(fts_document_text("数据库"), " 数据 据库 数 据 库 ");
  EXPECT_EQ(fts_document_text("SQLite数据库, ok"), "SQLite 数据 据库 数 据 库 , ok");
  EXPECT_EQ(fts_document_text("ＳＱＬ：库"), "SQL: 库 ");
  EXPECT_EQ(fts_document_text("plain text"), "plain text");
}

// The MATCH expression of a query with all its terms (what the index builds before it chooses).
std::string fts_query(std::string_view query) {
  std::vector<std::string> texts;
  for (auto& t : fts_query_terms(query)) texts.push_back(std::move(t.text));
  return fts_match(texts);
}

TEST(LocalIndexFtsText, QueryIsQuotedAndOred) {
  EXPECT_EQ(fts_query("数据库"), R"("数据" OR "据库")");
  EXPECT_EQ(fts_query("库"), R"("库")");
  // Operators are words like any other (and "and"/"or" are stopwords); case is folded.
  EXPECT_EQ(fts_query("pool AND \"size\" OR col:x NOT (y)"),
            R"("pool" OR "size" OR "col" OR "x" OR "not" OR "y")");
  EXPECT_EQ(fts_query("SQLite数据库"), R"("sqlite" OR "数据" OR "据库")");
  EXPECT_EQ(fts_query("Is The GC generational? Is the gc"), R"("gc" OR "generational")");
  // Capitals are remembered: they mark the names a question is about.
  auto terms = fts_query_terms("Can R read CSV files from Python?");
  ASSERT_EQ(terms.size(), 5u);
  EXPECT_EQ(terms[0].text, "r");
  EXPECT_TRUE(terms[0].capitalized);
  EXPECT_EQ(terms[1].text, "read");
  EXPECT_FALSE(terms[1].capitalized);
  EXPECT_TRUE(terms[2].capitalized);   // csv
  EXPECT_FALSE(terms[3].capitalized);  // files
  EXPECT_TRUE(terms[4].capitalized);   // python
  // The same word written both ways counts as capitalised.
  auto twice = fts_query_terms("sqlite or SQLite");
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_TRUE(twice[0].capitalized);
  EXPECT_EQ(fts_query("***  ,.;:()\"'"), "");
  EXPECT_EQ(fts_query(""), "");
  EXPECT_EQ(fts_query("a a a"), R"("a")");
}

TEST_F(LocalIndexTest, EnglishSearchFindsTheRightDocumentInEveryMode) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  for (Mode mode : kAllModes) {
    auto hits = search(*index, "database connection pool size", mode);
    ASSERT_FALSE(hits.empty()) << mode_name(mode);
    const SearchHit& top = hits[0];
    EXPECT_EQ(top.doc_id, "db") << mode_name(mode);
    EXPECT_EQ(top.chunk_id, "db@v1#0") << mode_name(mode);
    EXPECT_EQ(top.source, "/docs/db.md");
    EXPECT_EQ(top.page, 1);
    EXPECT_EQ(top.heading, "Operations > Database");
    EXPECT_NE(top.text.find("connection pool"), std::string::npos);
    EXPECT_GT(top.score, 0) << mode_name(mode);
    for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score) << mode_name(mode);
  }
  // k bounds the results; a keyword that appears nowhere finds nothing.
  EXPECT_LE(search(*index, "database", Mode::kHybrid, 1).size(), 1u);
  EXPECT_TRUE(search(*index, "zeppelin", Mode::kKeyword).empty());
  SearchOptions zero;
  zero.k = 0;
  auto r = index->search("database", embed("database"), zero);
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(LocalIndexTest, ChineseSearchFindsTheRightDocumentInEveryMode) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  for (Mode mode : kAllModes) {
    auto hits = search(*index, "数据库", mode);
    ASSERT_FALSE(hits.empty()) << mode_name(mode);
    EXPECT_EQ(hits[0].doc_id, "zh-db") << mode_name(mode);

    hits = search(*index, "如何设置连接池的大小", mode);
    ASSERT_FALSE(hits.empty()) << mode_name(mode);
    EXPECT_EQ(hits[0].chunk_id, "zh-db@v1#0") << mode_name(mode);
    EXPECT_EQ(hits[0].heading, "运维 > 数据库");
  }
  // Two-character queries (most Chinese words) match: the reason for bigrams over trigrams.
  auto hits = search(*index, "备份", Mode::kKeyword);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, "zh-db@v1#1");
  hits = search(*index, "天气", Mode::kKeyword);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, "zh-weather@v1#0");
  hits = search(*index, "下雨", Mode::kKeyword);  // "雨" alone is not a query bigram: no match
  EXPECT_TRUE(hits.empty());
  hits = search(*index, "雨", Mode::kKeyword);  // a one-character query matches the unigram
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, "zh-weather@v1#1");
  // A Chinese chunk that is just the query.
  hits = search(*index, "索引", Mode::kHybrid);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, "zh-weather@v1#2");
  // The heading is searched too.
  hits = search(*index, "运维", Mode::kKeyword);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].doc_id, "zh-db");
}

TEST_F(LocalIndexTest, ResultsAreDiverseAndShowARepeatedPassageOnce) {
  auto index = open();
  ASSERT_TRUE(index);
  // One document matches many times; the same passage is in two files; a third file matches once.
  std::vector<std::string> many;
  for (int i = 0; i < 8; ++i) many.push_back("checkpoint the write ahead log, part " + std::to_string(i));
  ASSERT_TRUE(upsert(*index, "big", "v1", many).is_ok());
  ASSERT_TRUE(upsert(*index, "copy-a", "v1", {"rotate the write ahead log segment"}).is_ok());
  ASSERT_TRUE(upsert(*index, "copy-b", "v1", {"rotate the write ahead log segment"}).is_ok());
  ASSERT_TRUE(upsert(*index, "other", "v1", {"the log of a write ahead system"}).is_ok());
  for (Mode mode : kAllModes) {
    auto hits = search(*index, "write ahead log", mode, 5);
    ASSERT_EQ(hits.size(), 5u) << mode_name(mode);
    std::map<std::string, int> per_doc;
    std::set<std::string> texts;
    for (const auto& h : hits) {
      ++per_doc[h.doc_id];
      EXPECT_TRUE(texts.insert(h.text).second) << mode_name(mode) << ": passage shown twice: " << h.text;
    }
    EXPECT_EQ(per_doc["copy-a"] + per_doc["copy-b"], 1) << mode_name(mode);
    EXPECT_EQ(per_doc["other"], 1) << mode_name(mode);
    // Only when the other documents are used up does "big" get more than two places.
    EXPECT_EQ(per_doc["big"], 3) << mode_name(mode);
    EXPECT_NE(hits[4].doc_id, "other") << mode_name(mode);
  }
}

TEST_F(LocalIndexTest, FtsHostileQueriesDoNotError) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  const char* queries[] = {"\"database",
                           "database\"",
                           "pool:size",
                           "(database",
                           "database)",
                           "AND",
                           "OR database",
                           "NOT",
                           "database NOT",
                           "a AND OR NOT b",
                           "*",
                           "data*",
                           "^database",
                           "NEAR(a b, 2)",
                           "{col}: x",
                           "!!!",
                           "...",
                           "，。？",
                           "'; DROP TABLE",
                           "\"\"",
                           "   ",
                           "",
                           "col:\"数据库\"",
                           "-database",
                           "+pool",
                           "\xff\xfe bad",
                           "😀 emoji 😀",
                           "a\"b\"c",
                           "x OR",
                           "rowid:1"};
  for (const char* q : queries) {
    for (Mode mode : kAllModes) {
      SearchOptions opts;
      opts.mode = mode;
      auto v = embed(q);
      auto r = index->search(q, v, opts);
      EXPECT_TRUE(r.is_ok()) << mode_name(mode) << " '" << q << "': " << r.status().to_string();
    }
  }
  // Quoted or decorated words are still found.
  for (const char* q :
       {"\"database\"", "database:", "(pool)", "NOT database", "数据库\"", "col:\"数据库\""}) {
    auto hits = search(*index, q, Mode::kKeyword);
    EXPECT_FALSE(hits.empty()) << q;
  }
}

TEST_F(LocalIndexTest, BadArguments) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  SearchOptions vec;
  vec.mode = Mode::kVector;
  auto r = index->search("x", {}, vec);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  std::vector<float> short_vector(10, 0.1f);
  r = index->search("x", short_vector, SearchOptions{});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  // Hybrid without a vector falls back to keywords.
  r = index->search("database", {}, SearchOptions{});
  ASSERT_TRUE(r.is_ok());
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].doc_id, "db");

  DocumentRecord doc{"bad", "v1", "/x", 0, "{}"};
  ChunkRecord c;
  c.chunk_id = "bad#0";
  c.text = "x";
  c.vector = short_vector;
  Status st = index->upsert_document(doc, std::span<const ChunkRecord>(&c, 1));
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  doc.metadata_json = "{not json";
  c.vector = embed("x");
  st = index->upsert_document(doc, std::span<const ChunkRecord>(&c, 1));
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  // A chunk id used by another document is refused, and nothing of the upsert remains.
  doc.metadata_json = "{}";
  c.chunk_id = "db@v1#0";
  st = index->upsert_document(doc, std::span<const ChunkRecord>(&c, 1));
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  auto got = index->get_document("bad");
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(*index->chunk_count("db"), 2u);

  for (std::string_view u : {"chroma:http://x", "pinecone://x/y", "local:", "nothing"}) {
    auto o = open_index(u, 256, "hash:256");
    ASSERT_FALSE(o.is_ok()) << u;
    EXPECT_EQ(o.status().error_class(), ErrorClass::kBadInput) << u;
  }
  EXPECT_EQ(open_index("pinecone://x/y", 256, "hash:256").status().code(), Code::kUnsupported);
  // A chroma URI that is not chroma://HOST[:PORT]/COLLECTION (chroma_index_test.cc has the rest).
  EXPECT_EQ(open_index("chroma:http://x", 256, "hash:256").status().code(), Code::kInvalidArgument);
}

TEST_F(LocalIndexTest, NewVersionReplacesOld) {
  auto index = open();
  ASSERT_TRUE(index);
  ASSERT_TRUE(upsert(*index, "doc", "v1", {"alpha one", "alpha two", "alpha three"}).is_ok());
  ASSERT_TRUE(upsert(*index, "doc", "v2", {"beta one", "beta two"}).is_ok());
  EXPECT_EQ(*index->chunk_count("doc"), 2u);
  EXPECT_EQ(*index->chunk_count(), 2u);
  auto doc = index->get_document("doc");
  ASSERT_TRUE(doc.is_ok() && doc->has_value());
  EXPECT_EQ((*doc)->version, "v2");
  EXPECT_EQ((*doc)->source, "/docs/doc.md");
  EXPECT_EQ((*doc)->pages, 2);
  EXPECT_EQ((*doc)->metadata_json, R"({"lang":"any"})");
  for (Mode mode : kAllModes) {
    for (const SearchHit& h : search(*index, "alpha one", mode, 10)) {
      EXPECT_NE(h.chunk_id.find("@v2#"), std::string::npos) << mode_name(mode) << " " << h.chunk_id;
    }
  }
  EXPECT_TRUE(search(*index, "alpha", Mode::kKeyword).empty());
  EXPECT_EQ(search(*index, "beta", Mode::kKeyword).size(), 2u);
  // Back to v1: old chunk ids come back (new rows, new graph labels).
  ASSERT_TRUE(upsert(*index, "doc", "v1", {"alpha one", "alpha two", "alpha three"}).is_ok());
  EXPECT_EQ(search(*index, "alpha", Mode::kKeyword).size(), 3u);
  auto hits = search(*index, "alpha two", Mode::kVector, 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, "doc@v1#1");
}

int64_t write_counter(const fs::path& dir) {
  sqlite3* db = nullptr;
  int64_t v = -1;
  if (sqlite3_open_v2((dir / "index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='write_counter'", -1, &s, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return v;
}

TEST_F(LocalIndexTest, ReUpsertIsIdempotent) {
  auto index = open();
  ASSERT_TRUE(index);
  ASSERT_TRUE(upsert(*index, "doc", "v1", {"alpha one", "alpha two"}).is_ok());
  int64_t counter = write_counter(dir_);
  auto before = search(*index, "alpha", Mode::kHybrid);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(upsert(*index, "doc", "v1", {"alpha one", "alpha two"}).is_ok());
  EXPECT_EQ(write_counter(dir_), counter);  // nothing was written
  EXPECT_EQ(*index->chunk_count("doc"), 2u);
  auto after = search(*index, "alpha", Mode::kHybrid);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i].chunk_id, after[i].chunk_id);
  // Same version but another chunk count (say, a re-chunk): replaced.
  ASSERT_TRUE(upsert(*index, "doc", "v1", {"alpha one", "alpha two", "alpha three"}).is_ok());
  EXPECT_EQ(write_counter(dir_), counter + 1);
  EXPECT_EQ(*index->chunk_count("doc"), 3u);
  EXPECT_EQ(search(*index, "alpha", Mode::kKeyword).size(), 3u);
}

TEST_F(LocalIndexTest, DeleteAndList) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  auto docs = index->list_documents();
  ASSERT_TRUE(docs.is_ok());
  std::vector<std::string> ids;
  for (const auto& d : *docs) ids.push_back(d.doc_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"db", "fruit", "zh-db", "zh-weather"}));
  EXPECT_EQ(*index->chunk_count(), 9u);

  ASSERT_TRUE(index->delete_document("db").is_ok());
  ASSERT_TRUE(index->delete_document("db").is_ok());      // again: nothing to do
  ASSERT_TRUE(index->delete_document("absent").is_ok());  // never there
  auto got = index->get_document("db");
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(*index->chunk_count("db"), 0u);
  EXPECT_EQ(*index->chunk_count(), 7u);
  EXPECT_EQ(index->list_documents()->size(), 3u);
  for (Mode mode : kAllModes) {
    for (const SearchHit& h : search(*index, "database connection pool", mode, 20)) {
      EXPECT_NE(h.doc_id, "db") << mode_name(mode);
    }
  }
}

// Captures the log lines written while it lives (the index logs rebuilds and catch-ups).
class TempLog {
 public:
  TempLog() {
    char name[] = "/tmp/sluice-log-XXXXXX";
    fd_ = mkstemp(name);
    path_ = name;
    sluice::log::set_fd(fd_);
    // Info lines are what is looked for, whatever SLUICE_LOG_LEVEL says (the CI sets "error").
    saved_level_ = sluice::log::min_level();
    sluice::log::set_min_level(sluice::log::Level::kInfo);
  }
  ~TempLog() {
    sluice::log::set_min_level(saved_level_);
    sluice::log::set_fd(2);
    ::close(fd_);
    fs::remove(path_);
  }
  std::string text() const {
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  int fd_ = -1;
  std::string path_;
  sluice::log::Level saved_level_ = sluice::log::Level::kInfo;
};

TEST_F(LocalIndexTest, ReopenReusesTheSavedGraphAndRebuildsAMissingOrStaleOne) {
  std::vector<std::string> queries = {"database connection pool", "数据库", "bananas", "明天有雨"};
  auto collect = [&](Index& index) {
    std::vector<std::string> ids;
    for (const auto& q : queries) {
      for (Mode mode : kAllModes) {
        for (const SearchHit& h : search(index, q, mode)) ids.push_back(h.chunk_id);
        ids.push_back("|");
      }
    }
    return ids;
  };
  std::vector<std::string> expected;
  {
    auto index = open();
    ASSERT_TRUE(index);
    load_corpus(*index);
    expected = collect(*index);
  }
  fs::path graph = dir_ / "vectors.hnsw";
  fs::path sidecar = dir_ / "vectors.hnsw.meta";
  ASSERT_TRUE(fs::exists(graph));
  ASSERT_TRUE(fs::exists(sidecar));
  auto mtime = fs::last_write_time(graph);

  {  // Reopen: the saved graph is loaded, not rebuilt, and (no writes) not saved again.
    auto index = open();
    ASSERT_TRUE(index);
    EXPECT_EQ(collect(*index), expected);
  }
  EXPECT_EQ(fs::last_write_time(graph), mtime);

  fs::remove(graph);
  {  // Missing: rebuilt from SQLite (and saved at once).
    auto index = open();
    ASSERT_TRUE(index);
    EXPECT_TRUE(fs::exists(graph));
    EXPECT_EQ(collect(*index), expected);
  }

  // Stale: writes happen (a document added, one deleted) but the graph file and sidecar are put
  // back as they were before them (as if the process had died before saving). The counter no
  // longer matches: the saved graph is brought up to date with what changed, not rebuilt.
  fs::copy_file(graph, dir_ / "old.hnsw");
  fs::copy_file(sidecar, dir_ / "old.meta");
  {
    auto index = open();
    ASSERT_TRUE(index);
    ASSERT_TRUE(upsert(*index, "new", "v1", {"zeppelin airship history"}).is_ok());
    ASSERT_TRUE(index->delete_document("db").is_ok());
  }
  fs::copy_file(dir_ / "old.hnsw", graph, fs::copy_options::overwrite_existing);
  fs::copy_file(dir_ / "old.meta", sidecar, fs::copy_options::overwrite_existing);
  {
    TempLog log;
    auto index = open();
    ASSERT_TRUE(index);
    EXPECT_NE(log.text().find("brought the saved vector graph up to date"), std::string::npos) << log.text();
    EXPECT_EQ(log.text().find("rebuilt the vector graph"), std::string::npos) << log.text();
    auto hits = search(*index, "zeppelin airship", Mode::kVector, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].doc_id, "new");
    for (const SearchHit& h : search(*index, "database connection pool", Mode::kVector, 20)) {
      EXPECT_NE(h.doc_id, "db");  // the deleted document's vectors are gone from the graph
    }
  }
  {  // And saved: the next open loads it as it is.
    TempLog log;
    auto index = open();
    ASSERT_TRUE(index);
    EXPECT_EQ(log.text().find("vector graph"), std::string::npos) << log.text();
  }

  // Corrupt: a truncated graph file is rebuilt too.
  fs::resize_file(graph, fs::file_size(graph) / 2);
  {
    auto index = open();
    ASSERT_TRUE(index);
    auto hits = search(*index, "zeppelin airship", Mode::kVector, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].doc_id, "new");
  }
}

// Two writers on one index (two `sluice worker` processes on one machine): a search takes in the
// other's writes, and a graph that lacks them is saved as stale, never as up to date.
TEST_F(LocalIndexTest, TwoWritersSeeEachOthersVectors) {
  {
    auto a = open();
    auto b = open();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(upsert(*a, "zep", "v1", {"zeppelin airship history"}).is_ok());
    ASSERT_TRUE(upsert(*b, "vol", "v1", {"volcano eruption lava"}).is_ok());
    ASSERT_TRUE(upsert(*a, "tea", "v1", {"green tea ceremony kyoto"}).is_ok());
    ASSERT_TRUE(b->delete_document("zep").is_ok());
    ASSERT_TRUE(upsert(*a, "bee", "v1", {"honey bee hive"}).is_ok());
    // a's graph has b's document (and lost the one b deleted) without any reopen.
    auto hits = search(*a, "volcano eruption lava", Mode::kVector, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].doc_id, "vol");
    for (const SearchHit& h : search(*a, "zeppelin airship history", Mode::kVector, 10))
      EXPECT_NE(h.doc_id, "zep");
  }  // both save on close: b (first, lacking a's last write) as stale, then a, whole
  TempLog log;
  auto c = open();
  ASSERT_TRUE(c);
  // The last save was whole: loaded as it is, neither caught up nor rebuilt.
  EXPECT_EQ(log.text().find("vector graph"), std::string::npos) << log.text();
  for (const char* q : {"volcano eruption lava", "green tea ceremony kyoto", "honey bee hive"}) {
    auto hits = search(*c, q, Mode::kVector, 1);
    ASSERT_EQ(hits.size(), 1u) << q;
  }
  for (const SearchHit& h : search(*c, "zeppelin airship history", Mode::kVector, 10))
    EXPECT_NE(h.doc_id, "zep");
}

// A writer that never searched saves a graph lacking the other's writes: it is marked stale,
// and the next open takes in what it lacks instead of trusting it.
TEST_F(LocalIndexTest, AGraphLackingAnotherWritersChunksIsSavedAsStale) {
  auto a = open();
  ASSERT_TRUE(a);
  {
    auto b = open();
    ASSERT_TRUE(b);
    ASSERT_TRUE(upsert(*b, "vol", "v1", {"volcano eruption lava"}).is_ok());
    ASSERT_TRUE(upsert(*a, "tea", "v1", {"green tea ceremony kyoto"}).is_ok());  // a lacks "vol"
  }
  a.reset();  // saved last, without "vol"
  TempLog log;
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_NE(log.text().find("brought the saved vector graph up to date"), std::string::npos) << log.text();
  auto hits = search(*c, "volcano eruption lava", Mode::kVector, 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].doc_id, "vol");
}

TEST_F(LocalIndexTest, EmbedderOrDimensionMismatchIsBadInput) {
  {
    auto index = open();
    ASSERT_TRUE(index);
    load_corpus(*index);
  }
  auto r = open_index(uri(), 128, "hash:128");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.status().message().find("hash:256"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("hash:128"), std::string::npos) << r.status().message();
  r = open_index(uri(), 256, "ollama:nomic");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.status().message().find("ollama:nomic"), std::string::npos) << r.status().message();
  // The right one still opens.
  auto index = open();
  ASSERT_TRUE(index);
  EXPECT_EQ(*index->chunk_count(), 9u);
}

// A writer flips one document between two versions 200 times while a reader searches all the
// time: every search sees exactly one version, never both and never none.
TEST_F(LocalIndexTest, ConcurrentSearchNeverSeesTwoVersions) {
  auto index = open();
  ASSERT_TRUE(index);
  load_corpus(*index);
  auto texts = [](int v) {
    std::string tag = v % 2 ? "odd" : "even";
    return std::vector<std::string>{"flip marker shared text " + tag + " first", "flip marker shared " + tag,
                                    "flip marker 翻转 " + tag + " third", "flip marker last " + tag};
  };
  ASSERT_TRUE(upsert(*index, "flip", "v0", texts(0)).is_ok());

  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, mixed{0}, empty{0}, errors{0};
  std::vector<float> qv = embed("flip marker shared");
  auto reader = [&](Mode mode) {
    SearchOptions opts;
    opts.k = 10;
    opts.mode = mode;
    while (!done.load()) {
      auto r = index->search("flip marker", qv, opts);
      if (!r.is_ok()) {
        ++errors;
        continue;
      }
      std::set<std::string> versions;
      for (const SearchHit& h : *r) {
        if (h.doc_id != "flip") continue;
        versions.insert(h.chunk_id.substr(0, h.chunk_id.find('#')));
      }
      if (versions.size() > 1) ++mixed;
      if (versions.empty()) ++empty;
      ++searches;
    }
  };
  std::vector<std::thread> readers;
  for (Mode mode : kAllModes) readers.emplace_back(reader, mode);
  for (int i = 1; i <= 200; ++i) {
    Status st = upsert(*index, "flip", "v" + std::to_string(i), texts(i));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  done = true;
  for (auto& t : readers) t.join();
  std::printf("[ flip ] %d searches during 200 version flips\n", searches.load());
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_EQ(empty.load(), 0);
  EXPECT_EQ(*index->chunk_count("flip"), 4u);
  auto doc = index->get_document("flip");
  ASSERT_TRUE(doc.is_ok() && doc->has_value());
  EXPECT_EQ((*doc)->version, "v200");
}

// 100k chunks, then search latency percentiles (printed; no timing asserts). Disabled by default
// because it takes tens of seconds; run with
//   unit_tests --gtest_also_run_disabled_tests --gtest_filter='LocalIndexScale*'
// or set SLUICE_SCALE_CHUNKS to run a smaller or larger one.
TEST_F(LocalIndexTest, DISABLED_ScaleSmoke100k) {
  size_t total = 100000;
  if (const char* env = std::getenv("SLUICE_SCALE_CHUNKS")) total = std::strtoul(env, nullptr, 10);
  const size_t per_doc = 500;
  auto index = open();
  ASSERT_TRUE(index);

  // Synthetic text: words from a Zipf-ish vocabulary, every fourth chunk Chinese.
  std::vector<std::string> vocab;
  for (int i = 0; i < 5000; ++i) vocab.push_back("w" + std::to_string(i * 7919 % 100003));
  const char* han = "数据库连接池配置文件索引检索向量文档中文分词摄取引擎系统服务器网络安全性能测试";
  std::vector<uint32_t> han_cps;
  std::string han_s(han);
  for (size_t i = 0; i < han_s.size(); i += 3) han_cps.push_back(static_cast<uint32_t>(i));
  uint64_t rng = 42;
  auto next = [&] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
  };
  auto make_text = [&](size_t n) {
    std::string t;
    bool zh = n % 4 == 0;
    for (int w = 0; w < 60; ++w) {
      if (zh) {
        for (int c = 0; c < 3; ++c) t += han_s.substr(han_cps[next() % han_cps.size()], 3);
      } else {
        size_t r = next() % 5000;
        t += vocab[r * r / 5000];
        t += ' ';
      }
    }
    return t;
  };

  auto start = std::chrono::steady_clock::now();
  double embed_secs = 0;
  for (size_t d = 0; d * per_doc < total; ++d) {
    DocumentRecord doc{"doc" + std::to_string(d), "v1", "/scale/" + std::to_string(d), 0, "{}"};
    std::vector<ChunkRecord> chunks;
    std::vector<std::string> texts;
    for (size_t i = 0; i < per_doc && d * per_doc + i < total; ++i)
      texts.push_back(make_text(d * per_doc + i));
    std::vector<std::string_view> views(texts.begin(), texts.end());
    std::vector<float> vectors;
    auto e0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(embedder_->embed(views, &vectors).is_ok());
    embed_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    for (size_t i = 0; i < texts.size(); ++i) {
      ChunkRecord c;
      c.chunk_id = doc.doc_id + "#" + std::to_string(i);
      c.seq = static_cast<int>(i);
      c.text = std::move(texts[i]);
      c.vector.assign(vectors.begin() + i * 256, vectors.begin() + (i + 1) * 256);
      chunks.push_back(std::move(c));
    }
    ASSERT_TRUE(index->upsert_document(doc, chunks).is_ok());
  }
  double load_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(*index->chunk_count(), total);
  std::printf("[ scale ] loaded %zu chunks in %.1f s (embedding %.1f s)\n", total, load_secs, embed_secs);

  std::vector<std::string> queries;
  for (int q = 0; q < 100; ++q) {
    if (q % 4 == 0) {
      queries.push_back(han_s.substr(han_cps[next() % han_cps.size()], 3) +
                        han_s.substr(han_cps[next() % han_cps.size()], 3) + "的" +
                        han_s.substr(han_cps[next() % han_cps.size()], 3));
    } else {
      queries.push_back(vocab[next() % 5000] + " " + vocab[next() % 5000] + " " + vocab[next() % 200]);
    }
  }
  for (Mode mode : kAllModes) {
    std::vector<double> ms;
    size_t found = 0;
    for (int round = 0; round < 3; ++round) {
      for (const auto& q : queries) {
        auto v = embed(q);
        SearchOptions opts;
        opts.k = 10;
        opts.mode = mode;
        auto t0 = std::chrono::steady_clock::now();
        auto r = index->search(q, mode == Mode::kKeyword ? std::span<const float>() : v, opts);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
        found += !r->empty();
      }
    }
    std::sort(ms.begin(), ms.end());
    std::printf("[ scale ] %-7s search k=10 over %zu chunks: p50 %.2f ms, p99 %.2f ms (%zu/%zu found)\n",
                mode_name(mode), total, ms[ms.size() / 2], ms[ms.size() * 99 / 100], found, ms.size());
    EXPECT_GT(found, ms.size() / 2);
  }

  auto t0 = std::chrono::steady_clock::now();
  index.reset();  // saves the graph
  double close_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();
  index = open();
  double open_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::remove(dir_ / "vectors.hnsw");
  index.reset();
  t0 = std::chrono::steady_clock::now();
  index = open();
  double rebuild_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ scale ] close (save graph) %.2f s, reopen (load graph) %.2f s, reopen with rebuild %.2f s\n",
              close_secs, open_secs, rebuild_secs);
}

}  // namespace
}  // namespace sluice::index
