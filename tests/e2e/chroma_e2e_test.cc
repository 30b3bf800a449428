// End to end on a real Chroma server (tests/support/chroma_server.h): `sluice ingest DIR --index
// chroma://127.0.0.1:P/docs` indexes a folder into Chroma, `sluice search --json` answers from it
// (and no local index is made), a changed file replaces its old version, a deleted one goes with
// --prune, and keyword mode says why it is not there.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "store/http_client.h"
#include "support/chroma_server.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;

class ChromaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sluice::testing::ChromaServer::installed())
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
  std::vector<json> search(const std::string& query, int k = 5) {
    RunResult r =
        run_sluice({"search", query, "--data", data_, "--index", index_, "-k", std::to_string(k), "--json"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> hits;
    for (const auto& line : split_lines(r.out)) hits.push_back(json::parse(line));
    return hits;
  }
  // The records in the Chroma collection `name`, asked of the server directly.
  int64_t chroma_count(const std::string& name) {
    auto http = sluice::store::HttpClient::open(chroma_.url(), {});
    EXPECT_TRUE(http.is_ok());
    const std::string base = "/api/v2/tenants/default_tenant/databases/default_database/collections";
    sluice::store::HttpRequest list;
    list.path = base;
    auto colls = (*http)->send(list);
    EXPECT_TRUE(colls.is_ok()) << colls.status().to_string();
    for (const auto& c : json::parse(colls->body)) {
      if (c["name"] != name) continue;
      sluice::store::HttpRequest count;
      count.path = base + "/" + c["id"].get<std::string>() + "/count";
      auto n = (*http)->send(count);
      EXPECT_TRUE(n.is_ok()) << n.status().to_string();
      return json::parse(n->body).get<int64_t>();
    }
    return -1;
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

TEST_F(ChromaE2eTest, AServerThatIsNotRunningIsAClearError) {
  chroma_.stop();
  RunResult r = run_sluice({"search", "anything", "--data", data_, "--index", index_});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find(chroma_.url()), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("chroma"), std::string::npos) << describe(r);
}

}  // namespace
