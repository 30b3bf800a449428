// The ingest crash test: `sluice ingest` is killed with SIGKILL at random moments several times,
// then run to completion; the index must equal a clean run's — the same documents at the same
// versions, the same chunk counts, no duplicate and no missing chunk.
// Rounds: SLUICE_INGEST_CRASH_ROUNDS (default 5).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "e2e/sluice_runner.h"
#include "index/index.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;

struct Snapshot {
  std::map<std::string, std::pair<std::string, size_t>> docs;  // source -> (version, chunks)
  size_t total_chunks = 0;
};

Snapshot snapshot(const std::string& data) {
  Snapshot s;
  auto index = sluice::index::open_index("local:" + data + "/index", 512, "hash:512");
  EXPECT_TRUE(index.is_ok()) << index.status().to_string();
  if (!index.is_ok()) return s;
  auto docs = (*index)->list_documents();
  EXPECT_TRUE(docs.is_ok());
  for (const auto& d : *docs) {
    auto n = (*index)->chunk_count(d.doc_id);
    EXPECT_TRUE(n.is_ok());
    s.docs[d.source] = {d.version, *n};
  }
  auto total = (*index)->chunk_count();
  EXPECT_TRUE(total.is_ok());
  s.total_chunks = *total;
  return s;
}

void make_corpus(const std::string& dir) {
  const std::string fixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/";
  std::mt19937 rng(42);
  const char* words[] = {"queue", "offset", "segment", "replica", "chunk",  "index", "vector", "parser",
                         "文档",  "队列",   "索引",    "分片",    "worker", "retry", "commit", "batch"};
  for (int i = 0; i < 240; ++i) {
    std::string body = "# Document " + std::to_string(i) + "\n\n";
    for (int p = 0; p < 12; ++p) {
      for (int w = 0; w < 60; ++w) body += std::string(words[rng() % 16]) + (w % 12 == 11 ? ". " : " ");
      body += "\n\n";
    }
    fs::create_directories(dir + "/d" + std::to_string(i % 8));
    std::ofstream(dir + "/d" + std::to_string(i % 8) + "/doc" + std::to_string(i) + ".md") << body;
  }
  for (const char* f : {"english.pdf", "chinese.pdf", "page.html", "people.csv", "sample.docx"}) {
    fs::copy_file(fixtures + f, dir + "/" + f);
  }
}

TEST(IngestCrash, KilledAtRandomThenResumedEqualsACleanRun) {
  TempDir tmp("sluice-ingest-crash");
  const std::string docs = tmp.path() + "/docs";
  make_corpus(docs);

  const std::string clean = tmp.path() + "/clean";
  RunResult c = run_sluice({"ingest", docs, "--data", clean, "--progress", "none"});
  ASSERT_EQ(c.exit_code, 0) << describe(c);
  const Snapshot want = snapshot(clean);
  ASSERT_EQ(want.docs.size(), 245u);

  int rounds = 5;
  if (const char* r = std::getenv("SLUICE_INGEST_CRASH_ROUNDS")) rounds = std::atoi(r);
  const std::string crashed = tmp.path() + "/crashed";
  std::mt19937 rng(std::random_device{}());
  int killed = 0;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> kill_now{false};
    RunOptions o;
    o.terminate = &kill_now;
    o.terminate_signal = SIGKILL;
    // Somewhere in the time a whole run takes (later runs are shorter: they skip finished files).
    const int span_ms = std::max(100, static_cast<int>(c.seconds * 1000 * 0.8));
    const int after_ms = 30 + static_cast<int>(rng() % span_ms);
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
      kill_now = true;
    });
    RunResult r = run_sluice({"ingest", docs, "--data", crashed, "--progress", "none"}, o);
    killer.join();
    if (r.signal == SIGKILL) {
      ++killed;
    } else {
      ASSERT_EQ(r.exit_code, 0) << "round " << round << "\n" << describe(r);
    }
  }
  RunResult last = run_sluice({"ingest", docs, "--data", crashed, "--progress", "none"});
  ASSERT_EQ(last.exit_code, 0) << describe(last);
  std::printf("killed %d of %d runs mid-ingest\n", killed, rounds);
  // A round that finished before its signal proves nothing about crashes; at least one must not.
  EXPECT_GE(killed, std::min(rounds, 1)) << "no run was killed mid-ingest";

  const Snapshot got = snapshot(crashed);
  EXPECT_EQ(got.docs.size(), want.docs.size());
  EXPECT_EQ(got.total_chunks, want.total_chunks);
  for (const auto& [source, vc] : want.docs) {
    auto it = got.docs.find(source);
    ASSERT_NE(it, got.docs.end()) << "missing after crashes: " << source;
    EXPECT_EQ(it->second, vc) << source;
  }
  // No duplicate left on the keyword or the vector side: a chunk is found at most once. (The hit
  // lists themselves may differ from the clean run's: the vector graph is approximate and its
  // shape depends on insertion order.)
  for (const char* mode : {"hybrid", "keyword", "vector"}) {
    for (const char* q : {"replica segment commit", "文档 队列", "dead letter queue"}) {
      RunResult b = run_sluice({"search", q, "--data", crashed, "--json", "-k", "50", "--mode", mode});
      ASSERT_EQ(b.exit_code, 0) << describe(b);
      std::vector<std::string> ids;
      for (const auto& line : split_lines(b.out))
        ids.push_back(nlohmann::json::parse(line)["chunk_id"].get<std::string>());
      EXPECT_FALSE(ids.empty()) << mode << " " << q;
      EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size())
          << "duplicate hits: " << mode << " " << q;
    }
  }
}

}  // namespace
