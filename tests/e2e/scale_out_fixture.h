// ScaleOutTest: what the scale-out end-to-end tests of every distributed queue backend share. A
// folder of documents (5 real fixtures and `notes_` generated notes, 40 unless a test says), the index of a
// clean run of it on the embedded log, `sluice worker` processes on threads of their own, `sluice ingest
// --no-workers`, and the check that a run under faults ended with the clean run's index: every document once,
// the same chunk counts, no chunk twice.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/sluice_runner.h"

namespace sluice::test {

// doc source -> chunk count, from the local index's SQLite file.
inline std::map<std::string, int> chunks_by_source(const std::string& data) {
  std::map<std::string, int> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((data + "/index/index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(
      db,
      "SELECT d.source, COUNT(c.id) FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id "
      "GROUP BY d.doc_id",
      -1, &s, nullptr);
  while (sqlite3_step(s) == SQLITE_ROW) {
    out[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] = sqlite3_column_int(s, 1);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

inline int duplicate_chunks(const std::string& data) {
  sqlite3* db = nullptr;
  sqlite3_open_v2((data + "/index/index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) - COUNT(DISTINCT chunk_id) FROM chunks", -1, &s, nullptr);
  int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = dir_.path() + "/docs";
    std::filesystem::create_directories(docs_);
    for (const char* f : {"english.pdf", "guide.md", "page.html", "people.csv", "chinese_gbk.txt"}) {
      std::filesystem::copy_file(std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/" + f,
                                 docs_ + "/" + f);
    }
    for (int i = 0; i < notes_; ++i) {
      std::string text = "# Note " + std::to_string(i) + "\n\n";
      for (int j = 0; j <= i % 5; ++j) {
        text += "Paragraph " + std::to_string(j) + " of note " + std::to_string(i) +
                " about partitions, consumer groups and rebalancing in a cluster.\n\n";
      }
      write_file(docs_ + "/note" + std::to_string(i) + ".md", text);
    }
    // The clean run: the same folder on the embedded log.
    RunResult clean = run_sluice({"ingest", docs_, "--data", dir_.path() + "/clean", "--progress", "none"});
    ASSERT_EQ(clean.exit_code, 0) << describe(clean);
    clean_ = chunks_by_source(dir_.path() + "/clean");
    ASSERT_EQ(clean_.size(), static_cast<size_t>(5 + notes_));
  }
  static void write_file(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  // A worker on a thread of its own; stop it with its flag (SIGTERM) or kill its process group.
  struct Worker {
    std::atomic<bool> stop{false};
    RunResult result;
    std::thread thread;
  };
  void start_worker(Worker& w, const std::string& queue, const std::string& data, int stop_signal = SIGTERM,
                    std::vector<std::string> extra = {}) {
    w.thread = std::thread([&w, queue, data, stop_signal, extra] {
      RunOptions o;
      o.terminate = &w.stop;
      o.terminate_signal = stop_signal;
      o.kill_after = std::chrono::milliseconds(240000);
      std::vector<std::string> args = {"worker", "--queue", queue, "--data", data};
      args.insert(args.end(), extra.begin(), extra.end());
      w.result = run_sluice(args, o);
    });
  }
  RunResult ingest(const std::string& queue, const std::string& data) {
    RunOptions o;
    o.kill_after = std::chrono::milliseconds(240000);
    return run_sluice(
        {"ingest", docs_, "--no-workers", "--queue", queue, "--data", data, "--progress", "none", "--json"},
        o);
  }

  // Waits (up to 60 s) until `sluice groups GROUP --json` shows what ready() wants.
  bool wait_for_group(const std::string& queue, const std::string& group,
                      const std::function<bool(const nlohmann::json&)>& ready) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      RunResult g = run_sluice({"groups", group, "--queue", queue, "--json"});
      if (g.exit_code == 0 && !g.out.empty()) {
        auto j = nlohmann::json::parse(split_lines(g.out).front(), nullptr, false);
        if (j.is_object() && ready(j)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // ... until `members` members each own a partition of topic (so a test that wants the work
  // shared does not race the workers' start).
  bool wait_for_owners(const std::string& queue, const std::string& group, const std::string& topic,
                       size_t members) {
    return wait_for_group(queue, group, [&](const nlohmann::json& j) {
      std::set<std::string> owners;
      if (j.contains("partitions"))
        for (const auto& p : j["partitions"])
          if (p["topic"] == topic && p["member"].is_string()) owners.insert(p["member"].get<std::string>());
      return owners.size() >= members;
    });
  }
  // ... until the group counts `members` members (for backends whose members share every
  // partition, so that no partition has one owner to wait for).
  bool wait_for_members(const std::string& queue, const std::string& group, size_t members) {
    return wait_for_group(queue, group, [&](const nlohmann::json& j) {
      return j["members"].is_array() && j["members"].size() >= members;
    });
  }

  // Two `sluice worker` processes and `sluice ingest --no-workers`: the index equals the clean
  // run's, both workers exit cleanly and each did some of the work. joined (when given) waits
  // until both are in the group, so the ingest does not race their start.
  void two_workers_share_the_work(const std::string& queue, const std::function<bool()>& joined = {}) {
    const std::string data = dir_.path() + "/data";
    Worker a, b;
    start_worker(a, queue, data);
    start_worker(b, queue, data);
    const bool both = !joined || joined();
    RunResult r = both ? ingest(queue, data) : RunResult{};
    a.stop = b.stop = true;
    a.thread.join();
    b.thread.join();
    ASSERT_TRUE(both) << "the two workers never both joined";
    expect_clean_run_equivalent(r, data);
    EXPECT_EQ(a.result.exit_code, 0) << describe(a.result);
    EXPECT_EQ(b.result.exit_code, 0) << describe(b.result);
    for (const Worker* w : {&a, &b}) {
      EXPECT_NE(w->result.err.find("\"document done\""), std::string::npos) << w->result.err.substr(0, 3000);
    }
  }

  // The messages stored in topic, summed over its partitions (-1 when it cannot be read).
  int64_t stored(const std::string& queue, const std::string& topic) {
    RunResult t = run_sluice({"topics", "--queue", queue, "--json"});
    if (t.exit_code != 0) return -1;
    for (const auto& line : split_lines(t.out)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || j["name"] != topic) continue;
      int64_t n = 0;
      for (const auto& p : j["partition_info"]) n += p["messages"].get<int64_t>();
      return n;
    }
    return 0;
  }

  // The ingest ended well and the index equals the clean run's: every document once, its chunk
  // count the same, no chunk twice. context (what the workers said, say) is printed when the ingest
  // did not end well.
  void expect_clean_run_equivalent(const RunResult& r, const std::string& data,
                                   const std::string& context = {}) {
    ASSERT_EQ(r.exit_code, 0) << describe(r) << context;
    nlohmann::json s = nlohmann::json::parse(split_lines(r.out).back());
    EXPECT_EQ(s["ok"], clean_.size()) << s.dump();
    EXPECT_EQ(chunks_by_source(data), clean_);
    EXPECT_EQ(duplicate_chunks(data), 0);
  }

  TempDir dir_{"sluice-scale-out-e2e"};
  int notes_ = 40;
  std::string docs_;
  std::map<std::string, int> clean_;
};

}  // namespace sluice::test
