// `sluice ingest` and `sluice search` with a remote embedder: the fake embedding service
// (tests/support/fake_embed_server.h) runs in this test process, the sluice binary talks to it
// over loopback with `--embedder ollama://127.0.0.1:P/test-model`. The documents are indexed with
// the service's vectors, search embeds its query with the same service, an index built with one
// model refuses another of a different dimension, and a service that throttles during the ingest
// still ends with every document indexed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "support/fake_embed_server.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;
using sluice::testing::FakeEmbedServer;

class EmbedServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(srv_.start());
    docs_ = dir_.path() + "/docs";
    data_ = dir_.path() + "/data";
    fs::create_directories(docs_);
    for (int i = 0; i < 12; ++i) {
      std::ofstream(docs_ + "/note" + std::to_string(i) + ".md")
          << "# Note " << i << "\n\nThis is ordinary note number " << i
          << " about queues, workers and the weather in spring.\n";
    }
    std::ofstream(docs_ + "/quokka.md")
        << "# Field report\n\nThe zanzibar quokka telemetry collar reports every ten minutes.\n";
    std::ofstream(docs_ + "/调度.txt") << "任务调度\n\n消息队列把上传请求和耗时的解析工作隔离开。\n";
  }
  std::string embedder(const std::string& model, const std::string& query = "") const {
    return "ollama://" + srv_.hostport() + "/" + model + query;
  }
  RunResult ingest(const std::string& emb) {
    return run_sluice({"ingest", docs_, "--data", data_, "--progress", "json", "--embedder", emb},
                      {.kill_after = std::chrono::milliseconds(120000)});
  }
  std::vector<json> search(const std::string& emb, const std::string& query) {
    RunResult r = run_sluice({"search", query, "--data", data_, "--embedder", emb, "-k", "3", "--json"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> hits;
    for (const auto& line : split_lines(r.out)) hits.push_back(json::parse(line));
    return hits;
  }

  FakeEmbedServer srv_;  // declared first: outlives nothing here but the children, which exit
  TempDir dir_{"sluice-embed-e2e"};
  std::string docs_, data_;
};

TEST_F(EmbedServiceTest, IngestAndSearchThroughOllamaThenAnotherDimensionIsRefused) {
  RunResult r = ingest(embedder("test-model"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = summary_of(r);
  EXPECT_EQ(s["documents"], 14);
  EXPECT_EQ(s["ok"], 14) << s.dump();
  EXPECT_EQ(s["failed"], 0);
  // Every chunk went through the service (and the probe).
  const int after_ingest = srv_.requests();
  EXPECT_GE(after_ingest, 2);
  EXPECT_GE(srv_.inputs().size(), 15u);

  auto hits = search(embedder("test-model"), "zanzibar quokka telemetry");
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(fs::path(hits[0]["source"].get<std::string>()).filename(), "quokka.md") << hits[0].dump();
  auto inputs = srv_.inputs();
  EXPECT_NE(std::find(inputs.begin(), inputs.end(), "zanzibar quokka telemetry"), inputs.end())
      << "the query was embedded by the service";

  // Another model, of another dimension, into the same local index: refused before any work.
  srv_.set_model("big-model", 32);
  RunResult other = ingest(embedder("big-model"));
  EXPECT_EQ(other.exit_code, 2) << describe(other);
  EXPECT_NE(other.err.find("ollama:test-model:16"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("ollama:big-model:32"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("use the same embedder or a new index directory"), std::string::npos) << other.err;
  // And search with it too.
  RunResult q = run_sluice({"search", "quokka", "--data", data_, "--embedder", embedder("big-model")});
  EXPECT_EQ(q.exit_code, 2) << describe(q);
  EXPECT_NE(q.err.find("ollama:big-model:32"), std::string::npos) << q.err;
}

TEST_F(EmbedServiceTest, AServiceThatThrottlesDuringTheIngestStillGetsEveryDocumentIndexed) {
  srv_.latency_ms = 20;
  srv_.throttle_above = 1;  // a second concurrent request is refused
  srv_.throttle_next = 6;   // and the first six are refused whatever
  srv_.retry_after_ms = 50;
  RunResult r = ingest(embedder("test-model", "?batch=1&max_attempts=20"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = summary_of(r);
  EXPECT_EQ(s["ok"], 14) << s.dump();
  EXPECT_EQ(s["failed"], 0) << s.dump();
  EXPECT_GE(srv_.throttled(), 6);
  srv_.throttle_above = 0;
  auto hits = search(embedder("test-model"), "zanzibar quokka telemetry");
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(fs::path(hits[0]["source"].get<std::string>()).filename(), "quokka.md");
  // The embedder said what it did with its limit in the stages' log.
  std::ifstream log(data_ + "/logs/sluice.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"msg\":\"embedder concurrency\""), std::string::npos);
}

TEST_F(EmbedServiceTest, AnEmbedderThatIsNotRunningFailsClearly) {
  const std::string uri = "ollama://" + srv_.hostport() + "/test-model?max_attempts=1";
  srv_.stop();
  RunResult r = ingest(uri);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("retriable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ollama serve"), std::string::npos) << r.err;
}

}  // namespace
