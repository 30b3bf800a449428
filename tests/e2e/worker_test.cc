// `sluice worker` and `sluice ingest --no-workers`: the work done by a separate worker process,
// the way scale-out deployments run it (here on the embedded log; tests/e2e/kafka_* run it on a
// Kafka cluster).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/sluice_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;

const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/";

json last_json(const std::string& out) {
  json last;
  for (const auto& line : split_lines(out)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object()) last = j;
  }
  return last;
}

TEST(Worker, IngestWithoutWorkersIsDoneByAWorkerProcess) {
  TempDir dir("sluice-worker");
  const std::string docs = dir.path() + "/docs", data = dir.path() + "/data";
  fs::create_directories(docs);
  for (const char* f : {"english.pdf", "guide.md", "page.html"}) fs::copy_file(kFixtures + f, docs + "/" + f);

  BackgroundSluice background({"worker", "--data", data}, {.kill_after = std::chrono::milliseconds(120000)});
  RunResult ingest = run_sluice({"ingest", docs, "--data", data, "--no-workers", "--progress", "json"},
                                {.kill_after = std::chrono::milliseconds(90000)});
  const RunResult& worker = background.stop();

  ASSERT_EQ(ingest.exit_code, 0) << describe(ingest);
  json s = last_json(ingest.out);
  EXPECT_EQ(s["ok"], 3) << s.dump();
  EXPECT_EQ(s["failed"], 0);
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);  // SIGTERM: a clean stop
  EXPECT_NE(worker.err.find("\"worker started\""), std::string::npos) << worker.err;
  EXPECT_NE(worker.err.find("\"worker stopped\""), std::string::npos) << worker.err;
  EXPECT_NE(worker.err.find("\"document done\""), std::string::npos) << worker.err;  // it did the work

  RunResult found =
      run_sluice({"search", "dead letter queue after the last attempt", "--data", data, "--json"});
  ASSERT_EQ(found.exit_code, 0) << describe(found);
  auto lines = split_lines(found.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(fs::path(json::parse(lines[0])["source"].get<std::string>()).filename(), "english.pdf");
}

TEST(Worker, OnlyTheStagesAsked) {
  TempDir dir("sluice-worker");
  const std::string docs = dir.path() + "/docs", data = dir.path() + "/data";
  fs::create_directories(docs);
  fs::copy_file(kFixtures + "guide.md", docs + "/guide.md");
  // A worker of parse and embed only: the document stops at doc_embedded, no result yet.
  BackgroundSluice background({"worker", "--data", data, "--stages", "parse, embed"},
                              {.terminate_signal = SIGINT});
  RunOptions io;
  std::atomic<bool> stop_ingest{false};
  io.terminate = &stop_ingest;
  io.terminate_signal = SIGINT;
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop_ingest = true;
  });
  RunResult ingest = run_sluice({"ingest", docs, "--data", data, "--no-workers", "--progress", "json"}, io);
  timer.join();
  EXPECT_EQ(ingest.exit_code, 130) << describe(ingest);  // interrupted while it waited for the result
  // The embedded message is there, waiting for an index stage.
  RunResult tail = run_sluice(
      {"tail", "doc_embedded", "--data", data, "--from-beginning", "--max", "1", "--timeout", "10"});
  EXPECT_EQ(tail.exit_code, 0) << describe(tail);
  EXPECT_EQ(split_lines(tail.out).size(), 1u) << tail.out;
  const RunResult& worker = background.stop();
  EXPECT_EQ(worker.exit_code, 130) << describe(worker);  // SIGINT, as from a terminal

  // Another worker with the index stage finishes it.
  BackgroundSluice background2({"worker", "--data", data, "--stages", "index"});
  RunResult result = run_sluice(
      {"tail", "doc_results", "--data", data, "--from-beginning", "--max", "1", "--timeout", "30"});
  const RunResult& indexer = background2.stop();
  ASSERT_EQ(result.exit_code, 0) << describe(result);
  ASSERT_EQ(split_lines(result.out).size(), 1u) << result.out;
  json r = json::parse(json::parse(split_lines(result.out)[0])["value"].get<std::string>());
  EXPECT_EQ(r["status"], "success") << r.dump();
  EXPECT_EQ(indexer.exit_code, 0) << describe(indexer);
}

TEST(Worker, BadStagesAreRefused) {
  TempDir dir("sluice-worker");
  RunResult r = run_sluice({"worker", "--data", dir.path(), "--stages", "parse,ocr"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("unknown stage 'ocr'"), std::string::npos) << r.err;
  RunResult empty = run_sluice({"worker", "--data", dir.path(), "--stages", " , "});
  EXPECT_EQ(empty.exit_code, 2) << describe(empty);
  EXPECT_NE(empty.err.find("--stages is empty"), std::string::npos) << empty.err;
  expect_help({"worker"}, {"--stages", "--queue", "--data"});
}

}  // namespace
