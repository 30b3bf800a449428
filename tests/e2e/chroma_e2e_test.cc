// End to end on a real Chroma server (tests/support/chroma_server.h): `sluice ingest DIR --index
// chroma://127.0.0.1:P/docs` indexes a folder into Chroma, `sluice search --json` answers from it
// (and no local index is made), a changed file replaces its old version, a deleted one goes with
// --prune, and keyword mode says why it is not there. With `--embedder ollama://` (the fake embedding
// service of tests/support/fake_embed_server.h) the two services are used together, as in production.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "store/http_client.h"
#include "support/chroma_server.h"
#include "support/fake_embed_server.h"
#include "support/require_server.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;
using sluice::testing::FakeEmbedServer;

class ChromaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sluice::testing::skip_for_missing_program(sluice::testing::ChromaServer::installed(),
                                                  sluice::testing::ChromaServer::program()))
      GTEST_SKIP() << sluice::testing::ChromaServer::program() << " is missing (npm ci)";
    sluice::Status st = chroma_.start();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    docs_ = dir_.path() + "/docs";
    data_ = dir_.path() + "/data";
    index_ = chroma_.uri("docs");
  }
  RunResult ingest(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"ingest",  docs_,  "--data",     data_,
                                     "--index", index_, "--progress", "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunOptions o;
    o.kill_after = std::chrono::milliseconds(180000);
    return run_sluice(args, o);
  }
  std::vector<json> search(const std::string& query, int k = 5, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"search", query, "--data",          data_,   "--index",
                                     index_,   "-k",  std::to_string(k), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = run_sluice(args);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> hits;
    for (const auto& line : split_lines(r.out)) hits.push_back(json::parse(line));
    return hits;
  }
  // Asks the Chroma server directly (behind sluice's back) for collection `name`: `path` under the
  // collection (e.g. "/count"), POSTed with `body` when it is not null. Null when there is no such
  // collection.
  json chroma_ask(const std::string& name, const std::string& path, const json& body = nullptr) {
    auto http = sluice::store::HttpClient::open(chroma_.url(), {});
    EXPECT_TRUE(http.is_ok());
    const std::string base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    sluice::store::HttpRequest list;
    list.path = base;
    auto colls = (*http)->send(list);
    EXPECT_TRUE(colls.is_ok()) << colls.status().to_string();
    for (const auto& c : json::parse(colls->body)) {
      if (c["name"] != name) continue;
      sluice::store::HttpRequest req;
      req.path = base + "/" + c["id"].get<std::string>() + path;
      if (!body.is_null()) {
        req.method = "POST";
        req.body = body.dump();
      }
      auto answer = (*http)->send(req);
      EXPECT_TRUE(answer.is_ok()) << answer.status().to_string();
      return answer.is_ok() ? json::parse(answer->body) : json();
    }
    return json();
  }
  // The records in the Chroma collection `name`, or -1 when there is none.
  int64_t chroma_count(const std::string& name) {
    json n = chroma_ask(name, "/count");
    return n.is_number() ? n.get<int64_t>() : -1;
  }

  sluice::testing::ChromaServer chroma_;
  TempDir dir_{"sluice-chroma-e2e"};
  std::string docs_, data_, index_;
};

TEST_F(ChromaE2eTest, IngestIntoChromaThenSearchAnswersFromIt) {
  write_file(
      docs_ + "/wal.md",
      "# Write-ahead log\n\nRotate the WAL segment when it reaches the size limit; the checkpoint thread "
      "truncates old segments after they are flushed.\n");
  write_file(docs_ + "/调度.txt",
             "任务调度\n\n消息队列把上传请求和耗时的解析工作隔离开，工作进程按自己的速度消费任务。\n");
  write_file(docs_ + "/fruit.txt", "Bananas are rich in potassium and grow in tropical climates.\n");
  RunResult r = ingest();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = summary_of(r);
  EXPECT_EQ(s["documents"], 3) << s.dump();
  EXPECT_EQ(s["ok"], 3) << s.dump();
  const int64_t chunks = chroma_count("docs");
  EXPECT_GE(chunks, 3);
  EXPECT_EQ(chroma_count("docs__docs"), 4);  // three documents and the commit token
  EXPECT_FALSE(fs::exists(data_ + "/index")) << "a local index was made as well";

  auto wal = search("how do I rotate the WAL segment");
  ASSERT_FALSE(wal.empty());
  EXPECT_EQ(wal[0]["source"], docs_ + "/wal.md") << wal[0].dump();
  EXPECT_EQ(wal[0]["heading"], "Write-ahead log");
  EXPECT_EQ(wal[0]["rank"], 1);
  for (const char* field : {"score", "doc_id", "source", "page", "heading", "chunk_id", "text"})
    EXPECT_TRUE(wal[0].contains(field)) << field;
  EXPECT_NE(wal[0]["text"].get<std::string>().find("Rotate the WAL segment"), std::string::npos);
  auto cn = search("消息队列 工作进程 解析");
  ASSERT_FALSE(cn.empty());
  EXPECT_EQ(cn[0]["source"], docs_ + "/调度.txt") << cn[0].dump();

  // Again, unchanged: skipped. Then a changed file replaces its old version, and a removed one goes.
  RunResult again = ingest();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_EQ(summary_of(again)["skipped"], 3) << again.out;
  write_file(
      docs_ + "/wal.md",
      "# Write-ahead log\n\nCompact the WAL segment nightly; rotation happens when a segment is full.\n");
  fs::remove(docs_ + "/fruit.txt");
  RunResult changed = ingest({"--prune"});
  ASSERT_EQ(changed.exit_code, 0) << describe(changed);
  auto after = search("WAL segment rotation compact nightly", 10);
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after[0]["source"], docs_ + "/wal.md");
  for (const auto& h : after) {
    EXPECT_EQ(h["text"].get<std::string>().find("checkpoint thread"), std::string::npos)
        << "old version: " << h.dump();
    EXPECT_NE(h["source"], docs_ + "/fruit.txt") << "pruned: " << h.dump();
  }
  EXPECT_EQ(chroma_count("docs__docs"), 3);  // two documents and the commit token

  // Keyword mode is not there on Chroma, and says so.
  RunResult kw = run_sluice({"search", "WAL", "--data", data_, "--index", index_, "--mode", "keyword"});
  EXPECT_NE(kw.exit_code, 0) << describe(kw);
  EXPECT_NE(kw.err.find("no keyword search"), std::string::npos) << describe(kw);
}

// The production pairing of the README: Chroma for the index, an Ollama service for the vectors.
TEST_F(ChromaE2eTest, IngestWithTheOllamaEmbedderIntoChromaThenSearchThroughBoth) {
  FakeEmbedServer ollama;
  ASSERT_TRUE(ollama.start());
  const std::string embedder = "ollama://" + ollama.hostport() + "/test-model";
  write_file(docs_ + "/quokka.md",
             "# Field report\n\nThe zanzibar quokka telemetry collar reports every ten minutes.\n");
  write_file(docs_ + "/调度.txt", "任务调度\n\n消息队列把上传请求和耗时的解析工作隔离开。\n");
  for (int i = 0; i < 6; ++i)
    write_file(docs_ + "/note" + std::to_string(i) + ".md",
               "# Note " + std::to_string(i) + "\n\nAn ordinary note about queues and the weather.\n");
  RunResult r = ingest({"--embedder", embedder});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = summary_of(r);
  EXPECT_EQ(s["ok"], 8) << s.dump();
  EXPECT_EQ(s["failed"], 0) << s.dump();
  const int64_t chunks = chroma_count("docs");
  EXPECT_GE(chunks, 8);
  // Every chunk was embedded by the service, and Chroma holds the service's (normalised) vectors:
  // 16 dimensions, not the default hash embedder's 256.
  const std::vector<std::string> embedded = ollama.inputs();
  EXPECT_GE(embedded.size(), static_cast<size_t>(chunks));
  json got = chroma_ask("docs", "/get", {{"limit", 1}, {"include", {"embeddings", "metadatas"}}});
  ASSERT_TRUE(got.contains("embeddings")) << got.dump();
  ASSERT_EQ(got["embeddings"].size(), 1u) << got.dump();
  const std::vector<float> stored = got["embeddings"][0].get<std::vector<float>>();
  ASSERT_EQ(stored.size(), 16u);
  EXPECT_TRUE(got["metadatas"][0]["version"].is_string()) << got.dump();
  const bool from_service = std::any_of(embedded.begin(), embedded.end(), [&](const std::string& t) {
    const std::vector<float> want = FakeEmbedServer::unit_vector_for(t, 16);
    for (size_t i = 0; i < want.size(); ++i)
      if (std::abs(want[i] - stored[i]) > 1e-4) return false;
    return true;
  });
  EXPECT_TRUE(from_service) << "the stored vector is none of the service's";

  // A query is embedded by the same service and answered by Chroma. The fake service hashes whole
  // texts (no meaning), so a query finds a chunk when it is the very text embedded for that chunk.
  auto text_with = [&](const std::string& part) {
    for (const std::string& t : embedded)
      if (t.find(part) != std::string::npos) return t;
    ADD_FAILURE() << "the service never saw a text with " << part;
    return part;
  };
  const size_t before = ollama.inputs().size();
  for (const auto& [part, file] :
       {std::pair<std::string, std::string>{"zanzibar quokka", "/quokka.md"}, {"消息队列", "/调度.txt"}}) {
    auto hits = search(text_with(part), 3, {"--embedder", embedder});
    ASSERT_FALSE(hits.empty()) << part;
    EXPECT_EQ(hits[0]["source"], docs_ + file) << hits[0].dump();
    EXPECT_GT(hits[0]["score"].get<double>(), 0.99) << hits[0].dump();
  }
  EXPECT_EQ(ollama.inputs().size(), before + 4) << "each search embeds its query (after a probe)";

  // The collection remembers its embedder: another model of another dimension is refused, as is the
  // default one, before any work.
  ollama.set_model("big-model", 32);
  RunResult other = ingest({"--embedder", "ollama://" + ollama.hostport() + "/big-model"});
  EXPECT_EQ(other.exit_code, 2) << describe(other);
  EXPECT_NE(other.err.find("ollama:test-model:16"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("use the same embedder or another collection"), std::string::npos) << other.err;
  RunResult plain = run_sluice({"search", "quokka", "--data", data_, "--index", index_});
  EXPECT_EQ(plain.exit_code, 2) << describe(plain);
  EXPECT_EQ(chroma_count("docs"), chunks) << "a refused run changed the collection";
}

TEST_F(ChromaE2eTest, AServerThatIsNotRunningIsAClearError) {
  chroma_.stop();
  RunResult r = run_sluice({"search", "anything", "--data", data_, "--index", index_});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find(chroma_.url()), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("chroma"), std::string::npos) << describe(r);
}

}  // namespace
