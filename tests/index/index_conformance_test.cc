// The conformance suite every Index runs: `local` (SQLite + FTS5 + hnswlib) and `chroma` (a real
// Chroma server on loopback, tests/support/chroma_server.h, one per test suite; every test has a
// collection of its own). Upsert + get, version replacement (and under concurrent searches: one
// whole version, never two), delete, list, chunk counts, vector search ordering and the JSON
// fields, metadata with Chinese text, documents larger than Chroma's max batch size, embedder and
// dimension mismatches refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "embed/embedder.h"
#include "index/index.h"
#include "store/http_client.h"
#include "support/chroma_server.h"
#include "support/index_records.h"
#include "support/require_server.h"

namespace sluice::index {
namespace {

namespace fs = std::filesystem;
using Mode = SearchOptions::Mode;

class IndexConformance : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (!testing::ChromaServer::installed()) return;
    chroma_ = new testing::ChromaServer();
    Status st = chroma_->start();
    if (!st.is_ok()) {
      ADD_FAILURE() << st.to_string();
      delete chroma_;
      chroma_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete chroma_;
    chroma_ = nullptr;
  }

  void SetUp() override {
    static std::atomic<int> seq{0};
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    name_ = "conf-" + std::to_string(::getpid()) + "-" + std::to_string(seq++) + "-" +
            name.substr(0, std::min<size_t>(name.size(), 40));
    dir_ = fs::temp_directory_path() / ("sluice-" + name_);
    fs::remove_all(dir_);
    if (chroma()) {
      if (sluice::testing::skip_for_missing_program(testing::ChromaServer::installed(),
                                                    testing::ChromaServer::program()))
        GTEST_SKIP() << testing::ChromaServer::program() << " is missing (npm ci)";
      ASSERT_NE(chroma_, nullptr) << "the chroma server did not start";
    }
    auto e = embed::open_embedder("hash:256");
    ASSERT_TRUE(e.is_ok());
    embedder_ = std::move(e).value();
    index_ = open();
    ASSERT_NE(index_, nullptr);
  }
  void TearDown() override {
    index_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool chroma() const { return GetParam() == "chroma"; }
  // The index's URI; `variant` names a second index of the same backend (another collection).
  std::string uri(const std::string& variant = "", const std::string& query = "") const {
    if (chroma()) return chroma_->uri(name_ + variant, query);
    return "local:" + (dir_ / ("index" + variant)).string();
  }
  std::unique_ptr<Index> open(const std::string& variant = "", size_t dim = 0, const std::string& emb = "",
                              const std::string& query = "") {
    auto r = open_index(uri(variant, query), dim ? dim : embedder_->dimension(),
                        emb.empty() ? embedder_->name() : emb);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : nullptr;
  }

  std::vector<float> embed(std::string_view text) { return testing::embed_one(*embedder_, text); }

  DocumentRecord doc_record(const std::string& doc_id, const std::string& version, int pages = 1) {
    DocumentRecord d;
    d.doc_id = doc_id;
    d.version = version;
    d.source = "/docs/" + doc_id + ".md";
    d.pages = pages;
    d.metadata_json = R"({"lang":"en","team":"docs"})";
    return d;
  }
  std::vector<ChunkRecord> chunks_of(const std::string& doc_id, const std::string& version,
                                     const std::vector<std::string>& texts,
                                     const std::string& heading = "Intro") {
    return testing::chunk_records(*embedder_, doc_id, version, texts, heading);
  }
  Status upsert(Index& index, const std::string& doc_id, const std::string& version,
                const std::vector<std::string>& texts, const std::string& heading = "Intro") {
    return index.upsert_document(doc_record(doc_id, version, static_cast<int>(texts.size())),
                                 chunks_of(doc_id, version, texts, heading));
  }

  Result<std::vector<SearchHit>> vector_search(Index& index, std::string_view query, size_t k = 5) {
    SearchOptions opts;
    opts.k = k;
    opts.mode = Mode::kVector;
    return index.search(query, embed(query), opts);
  }

  static testing::ChromaServer* chroma_;
  std::string name_;
  fs::path dir_;
  std::unique_ptr<embed::Embedder> embedder_;
  std::unique_ptr<Index> index_;
};

testing::ChromaServer* IndexConformance::chroma_ = nullptr;

TEST_P(IndexConformance, UpsertThenGet) {
  ASSERT_TRUE(
      upsert(*index_, "guide", "v1", {"Rotate the write-ahead log every night.", "Keep backups."}).is_ok());
  auto got = index_->get_document("guide");
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->doc_id, "guide");
  EXPECT_EQ((*got)->version, "v1");
  EXPECT_EQ((*got)->source, "/docs/guide.md");
  EXPECT_EQ((*got)->pages, 2);
  EXPECT_EQ(nlohmann::json::parse((*got)->metadata_json),
            nlohmann::json::parse(R"({"lang":"en","team":"docs"})"));

  auto none = index_->get_document("no-such-doc");
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_FALSE(none->has_value());

  // Upserting the same version again changes nothing.
  ASSERT_TRUE(
      upsert(*index_, "guide", "v1", {"Rotate the write-ahead log every night.", "Keep backups."}).is_ok());
  auto n = index_->chunk_count("guide");
  ASSERT_TRUE(n.is_ok()) << n.status().to_string();
  EXPECT_EQ(*n, 2u);

  // Bad input is refused, not half-written.
  DocumentRecord bad = doc_record("bad", "v1");
  bad.metadata_json = "{not json";
  EXPECT_EQ(index_->upsert_document(bad, chunks_of("bad", "v1", {"x"})).error_class(), ErrorClass::kBadInput);
  auto short_vec = chunks_of("bad", "v1", {"x"});
  short_vec[0].vector.resize(3);
  EXPECT_EQ(index_->upsert_document(doc_record("bad", "v1"), short_vec).error_class(), ErrorClass::kBadInput);
  auto bad_doc = index_->get_document("bad");
  ASSERT_TRUE(bad_doc.is_ok());
  EXPECT_FALSE(bad_doc->has_value());
}

TEST_P(IndexConformance, NewVersionReplacesTheOld) {
  ASSERT_TRUE(upsert(*index_, "faq", "v1",
                     {"Old answer about kafka partitions one", "Old answer about kafka partitions two",
                      "Old answer about kafka partitions three"})
                  .is_ok());
  ASSERT_TRUE(upsert(*index_, "other", "v1", {"Bananas and potassium."}).is_ok());
  ASSERT_TRUE(
      upsert(*index_, "faq", "v2", {"New answer about kafka partitions", "Second new kafka paragraph"})
          .is_ok());

  auto got = index_->get_document("faq");
  ASSERT_TRUE(got.is_ok() && got->has_value());
  EXPECT_EQ((*got)->version, "v2");
  auto n = index_->chunk_count("faq");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 2u);
  auto total = index_->chunk_count();
  ASSERT_TRUE(total.is_ok());
  EXPECT_EQ(*total, 3u);

  auto hits = vector_search(*index_, "answer about kafka partitions", 10);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  std::set<std::string> ids;
  for (const auto& h : *hits) ids.insert(h.chunk_id);
  EXPECT_TRUE(ids.contains("faq@v2#0")) << ::testing::PrintToString(ids);
  EXPECT_TRUE(ids.contains("faq@v2#1")) << ::testing::PrintToString(ids);
  for (const auto& id : ids) EXPECT_FALSE(id.starts_with("faq@v1")) << id;
}

// A reader searching in a loop while a writer replaces a document over and over sees one whole
// version every time: v1's six chunks or v2's four, never a mix, never part of one.
TEST_P(IndexConformance, ConcurrentSearchesNeverSeeTwoVersions) {
  // Small batches on chroma: a version's chunks take several requests, so a search can fall
  // between them.
  index_ = open("-batched", 0, "", chroma() ? "batch=2" : "");
  ASSERT_NE(index_, nullptr);
  const std::vector<std::string> v1 = {"kafka partition leader one",   "kafka partition leader two",
                                       "kafka partition leader three", "kafka partition leader four",
                                       "kafka partition leader five",  "kafka partition leader six"};
  const std::vector<std::string> v2 = {"kafka partition leader alpha", "kafka partition leader beta",
                                       "kafka partition leader gamma", "kafka partition leader delta"};
  const auto c1 = chunks_of("doc", "v1", v1), c2 = chunks_of("doc", "v2", v2);
  ASSERT_TRUE(index_->upsert_document(doc_record("doc", "v1"), c1).is_ok());
  const std::vector<float> q = embed("kafka partition leader");

  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, mixed{0}, partial{0}, failed{0};
  std::string first_problem;
  std::mutex mu;
  std::thread reader([&] {
    SearchOptions opts;
    opts.k = 10;
    opts.mode = Mode::kVector;
    while (!stop.load()) {
      auto r = index_->search("kafka partition leader", q, opts);
      if (!r.is_ok()) {
        ++failed;
        std::lock_guard lock(mu);
        if (first_problem.empty()) first_problem = r.status().to_string();
        continue;
      }
      ++searches;
      std::set<std::string> versions;
      for (const auto& h : *r) versions.insert(h.chunk_id.substr(0, h.chunk_id.find('#')));
      if (versions.size() > 1) {
        ++mixed;
      } else if (versions.size() == 1) {
        const size_t want = *versions.begin() == "doc@v1" ? v1.size() : v2.size();
        if (r->size() != want) {
          ++partial;
          std::lock_guard lock(mu);
          if (first_problem.empty())
            first_problem =
                *versions.begin() + ": " + std::to_string(r->size()) + " of " + std::to_string(want);
        }
      } else {
        ++partial;  // the document vanished for a moment
        std::lock_guard lock(mu);
        if (first_problem.empty()) first_problem = "no hits";
      }
    }
  });
  const int rounds = chroma() ? 30 : 200;
  for (int i = 0; i < rounds; ++i) {
    const bool second = i % 2 == 0;
    Status st = index_->upsert_document(doc_record("doc", second ? "v2" : "v1"), second ? c2 : c1);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    std::this_thread::sleep_for(std::chrono::milliseconds(chroma() ? 5 : 1));
  }
  // Let the reader run at least a few searches after the last write.
  const int seen = searches.load();
  while (searches.load() < seen + 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  reader.join();
  EXPECT_GT(searches.load(), 10);
  EXPECT_EQ(failed.load(), 0) << first_problem;
  EXPECT_EQ(mixed.load(), 0) << "searches that returned two versions";
  EXPECT_EQ(partial.load(), 0) << "searches that returned part of a version: " << first_problem;
  auto n = index_->chunk_count("doc");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, v1.size());  // 30 / 200 rounds: the last one wrote v1
}

TEST_P(IndexConformance, DeleteDocument) {
  ASSERT_TRUE(
      upsert(*index_, "gone", "v1", {"Temporary text about lighthouses.", "More lighthouses."}).is_ok());
  ASSERT_TRUE(upsert(*index_, "kept", "v1", {"Permanent text about lighthouses."}).is_ok());
  ASSERT_TRUE(index_->delete_document("gone").is_ok());
  auto got = index_->get_document("gone");
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->has_value());
  auto n = index_->chunk_count("gone");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 0u);
  auto total = index_->chunk_count();
  ASSERT_TRUE(total.is_ok());
  EXPECT_EQ(*total, 1u);
  auto hits = vector_search(*index_, "text about lighthouses", 10);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].doc_id, "kept");
  // Deleting what is not there is not an error.
  EXPECT_TRUE(index_->delete_document("gone").is_ok());
  EXPECT_TRUE(index_->delete_document("never-was").is_ok());
}

TEST_P(IndexConformance, ListDocumentsAndChunkCounts) {
  auto empty = index_->list_documents();
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
  auto zero = index_->chunk_count();
  ASSERT_TRUE(zero.is_ok());
  EXPECT_EQ(*zero, 0u);

  ASSERT_TRUE(upsert(*index_, "c-doc", "v1", {"one", "two", "three"}).is_ok());
  ASSERT_TRUE(upsert(*index_, "a-doc", "v7", {"alpha"}).is_ok());
  ASSERT_TRUE(upsert(*index_, "b-doc", "v2", {"beta", "gamma"}).is_ok());
  auto docs = index_->list_documents();
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0].doc_id, "a-doc");
  EXPECT_EQ((*docs)[0].version, "v7");
  EXPECT_EQ((*docs)[0].source, "/docs/a-doc.md");
  EXPECT_EQ((*docs)[0].pages, 1);
  EXPECT_EQ((*docs)[1].doc_id, "b-doc");
  EXPECT_EQ((*docs)[2].doc_id, "c-doc");
  EXPECT_EQ((*docs)[2].pages, 3);
  EXPECT_EQ(nlohmann::json::parse((*docs)[2].metadata_json)["team"], "docs");

  std::map<std::string, size_t> want = {{"a-doc", 1}, {"b-doc", 2}, {"c-doc", 3}, {"nothing", 0}};
  for (const auto& [id, count] : want) {
    auto n = index_->chunk_count(id);
    ASSERT_TRUE(n.is_ok()) << n.status().to_string();
    EXPECT_EQ(*n, count) << id;
  }
  auto total = index_->chunk_count();
  ASSERT_TRUE(total.is_ok());
  EXPECT_EQ(*total, 6u);
}

TEST_P(IndexConformance, VectorSearchRanksTheClosestFirstWithTheJsonFields) {
  ASSERT_TRUE(upsert(*index_, "db", "v1",
                     {"Configure the database connection pool size in pool.toml.",
                      "Database backups run nightly and are kept for thirty days."},
                     "Operations > Database")
                  .is_ok());
  ASSERT_TRUE(upsert(*index_, "fruit", "v1", {"Bananas are rich in potassium and grow in tropical climates."},
                     "Food > Fruit")
                  .is_ok());
  ASSERT_TRUE(upsert(*index_, "space", "v1", {"The rocket reached orbit after a nine minute burn."}, "Space")
                  .is_ok());

  auto hits = vector_search(*index_, "database connection pool size", 5);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_FALSE(hits->empty());
  const SearchHit& top = (*hits)[0];
  EXPECT_EQ(top.chunk_id, "db@v1#0");
  EXPECT_EQ(top.doc_id, "db");
  EXPECT_EQ(top.source, "/docs/db.md");
  EXPECT_EQ(top.page, 1);
  EXPECT_EQ(top.heading, "Operations > Database");
  EXPECT_EQ(top.text, "Configure the database connection pool size in pool.toml.");
  EXPECT_GT(top.score, 0.3);
  EXPECT_LE(top.score, 1.0 + 1e-6);
  for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score) << i;

  auto fruit = vector_search(*index_, "bananas potassium tropical", 1);
  ASSERT_TRUE(fruit.is_ok());
  ASSERT_EQ(fruit->size(), 1u);
  EXPECT_EQ((*fruit)[0].doc_id, "fruit");

  const auto j = search_hit_json(top, 1);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"rank", "score", "doc_id", "source", "page", "heading",
                                            "chunk_id", "text"}));
  EXPECT_EQ(j["rank"], 1);
  EXPECT_EQ(j["chunk_id"], "db@v1#0");
  EXPECT_EQ(j["heading"], "Operations > Database");

  SearchOptions none;
  none.k = 0;
  none.mode = Mode::kVector;
  auto zero = index_->search("database", embed("database"), none);
  ASSERT_TRUE(zero.is_ok());
  EXPECT_TRUE(zero->empty());
  // A query vector of the wrong dimension is refused.
  SearchOptions opts;
  opts.mode = Mode::kVector;
  std::vector<float> short_vec(7, 0.1f);
  EXPECT_EQ(index_->search("database", short_vec, opts).status().error_class(), ErrorClass::kBadInput);
}

TEST_P(IndexConformance, MetadataRoundTripsWithChineseText) {
  DocumentRecord d;
  d.doc_id = "手册-1";
  d.version = "版本一";
  d.source = "/文档/消息队列 手册.pdf";
  d.pages = 12;
  d.metadata_json = R"({"作者":"张三","标签":["队列","日志"],"n":3})";
  std::vector<ChunkRecord> chunks;
  const std::vector<std::string> texts = {"消息队列是快慢两端之间的水坝，突发的上传被吸收。",
                                          "工作进程按自己的节奏消费任务，进程崩溃时不会丢失任何东西。"};
  for (size_t i = 0; i < texts.size(); ++i) {
    ChunkRecord c;
    c.chunk_id = "块-" + std::to_string(i);
    c.seq = static_cast<int>(i);
    c.page = 7 + static_cast<int>(i);
    c.heading = "第一章 > 消息队列";
    c.text = texts[i];
    c.vector = embed(texts[i]);
    chunks.push_back(std::move(c));
  }
  ASSERT_TRUE(index_->upsert_document(d, chunks).is_ok());
  auto got = index_->get_document("手册-1");
  ASSERT_TRUE(got.is_ok() && got->has_value()) << got.status().to_string();
  EXPECT_EQ((*got)->version, "版本一");
  EXPECT_EQ((*got)->source, "/文档/消息队列 手册.pdf");
  EXPECT_EQ((*got)->pages, 12);
  EXPECT_EQ(nlohmann::json::parse((*got)->metadata_json), nlohmann::json::parse(d.metadata_json));
  auto docs = index_->list_documents();
  ASSERT_TRUE(docs.is_ok());
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ((*docs)[0].doc_id, "手册-1");

  auto hits = vector_search(*index_, "消息队列的水坝", 5);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_FALSE(hits->empty());
  const SearchHit& h = (*hits)[0];
  EXPECT_EQ(h.chunk_id, "块-0");
  EXPECT_EQ(h.doc_id, "手册-1");
  EXPECT_EQ(h.source, "/文档/消息队列 手册.pdf");
  EXPECT_EQ(h.page, 7);
  EXPECT_EQ(h.heading, "第一章 > 消息队列");
  EXPECT_EQ(h.text, texts[0]);
  EXPECT_EQ(search_hit_json(h, 1).dump(), search_hit_json(h, 1).dump());  // valid UTF-8 all through
}

// More chunks than Chroma takes in one request (its max_batch_size, 5461 on chroma 1.0.x): the
// index splits them. Small vectors keep it quick.
TEST_P(IndexConformance, DocumentLargerThanTheServersMaxBatch) {
  size_t max_batch = 5461;
  if (chroma()) {
    auto http = store::HttpClient::open(chroma_->url(), {});
    ASSERT_TRUE(http.is_ok());
    store::HttpRequest req;
    req.path = "/api/v2/pre-flight-checks";
    auto r = (*http)->send(req);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    max_batch = nlohmann::json::parse(r->body).at("max_batch_size").get<size_t>();
  }
  const size_t n = max_batch + 123;
  constexpr size_t kDim = 8;
  auto index = open("-big", kDim, "test:8");
  ASSERT_NE(index, nullptr);
  DocumentRecord d = doc_record("big", "v1", 1);
  std::vector<ChunkRecord> chunks(n);
  for (size_t i = 0; i < n; ++i) {
    chunks[i].chunk_id = "big#" + std::to_string(i);
    chunks[i].seq = static_cast<int>(i);
    chunks[i].text = "chunk " + std::to_string(i);
    chunks[i].vector.assign(kDim, 0.01f);
    chunks[i].vector[i % kDim] = 1.0f;
    chunks[i].vector[(i / kDim) % kDim] += 0.5f;
  }
  Status st = index->upsert_document(d, chunks);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto count = index->chunk_count("big");
  ASSERT_TRUE(count.is_ok()) << count.status().to_string();
  EXPECT_EQ(*count, n);
  auto total = index->chunk_count();
  ASSERT_TRUE(total.is_ok());
  EXPECT_EQ(*total, n);
  // The last batch's chunks are there and searchable like the first's.
  SearchOptions opts;
  opts.k = 1;
  opts.mode = Mode::kVector;
  auto hits = index->search("", chunks[n - 1].vector, opts);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].doc_id, "big");
}

TEST_P(IndexConformance, AnotherEmbedderOrDimensionIsRefused) {
  ASSERT_TRUE(upsert(*index_, "doc", "v1", {"some text"}).is_ok());
  index_.reset();
  for (auto [dim, name] : {std::pair<size_t, std::string>{256, "hash:other"}, {128, "hash:128"}}) {
    auto r = open_index(uri(), dim, name);
    ASSERT_FALSE(r.is_ok()) << name;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << r.status().to_string();
    const std::string& msg = r.status().message();
    EXPECT_NE(msg.find(embedder_->name()), std::string::npos) << msg;  // the stored one
    EXPECT_NE(msg.find(name), std::string::npos) << msg;               // the one asked for
    EXPECT_NE(msg.find(std::to_string(dim)), std::string::npos) << msg;
  }
  // The right one still opens, with the data.
  auto again = open();
  ASSERT_NE(again, nullptr);
  auto n = again->chunk_count("doc");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, IndexConformance, ::testing::Values("local", "chroma"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sluice::index
