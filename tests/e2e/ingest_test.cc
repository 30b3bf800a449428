// End-to-end tests of `sluice ingest` and `sluice search` as a user runs them: a folder of real
// fixtures (English and Chinese; PDF, HTML, Markdown, text in UTF-8/UTF-16/GBK, CSV, JSON, DOCX),
// searches that must find the right file, every bad input ending as a failed or skipped result
// with a clear error while the rest succeeds, incremental runs, --prune, Ctrl-C and resume.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;

const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/";

// failed events on stderr (JSON progress mode), by file name.
std::map<std::string, json> failures_of(const RunResult& r) {
  std::map<std::string, json> out;
  for (const auto& line : split_lines(r.err)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "failed")
      out[fs::path(j.value("source", "")).filename()] = j;
  }
  return out;
}

std::vector<json> search(const std::string& data, const std::string& query, int k = 5) {
  RunResult r = run_sluice({"search", query, "--data", data, "-k", std::to_string(k), "--json"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  std::vector<json> hits;
  for (const auto& line : split_lines(r.out)) hits.push_back(json::parse(line));
  return hits;
}

// True when one of the hits comes from a file whose name is `name`.
bool found_in(const std::vector<json>& hits, const std::string& name, size_t within = 3) {
  for (size_t i = 0; i < hits.size() && i < within; ++i) {
    if (fs::path(hits[i]["source"].get<std::string>()).filename() == name) return true;
  }
  return false;
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = dir_.path() + "/docs";
    data_ = dir_.path() + "/data";
    fs::create_directories(docs_);
  }
  // A folder of good documents in every format.
  void make_good_folder() {
    for (const char* f : {"english.pdf", "chinese.pdf", "page.html", "guide.md", "people.csv", "items.json",
                          "sample.docx", "chinese_gbk.txt", "utf16le_bom.txt", "plain.txt"}) {
      fs::copy_file(kFixtures + f, docs_ + "/" + f);
    }
    write_file(docs_ + "/notes/wal.md",
               "# Write-ahead log\n\nRotate the WAL segment when it reaches the size limit; the checkpoint "
               "thread truncates old segments after they are flushed.\n");
    write_file(docs_ + "/notes/调度.txt",
               "任务调度\n\n消息队列把上传请求和耗时的解析工作隔离开，工作进程按自己的速度消费任务。\n");
  }
  RunResult ingest(std::vector<std::string> args, RunOptions opts = {}) {
    args.insert(args.begin(), "ingest");
    args.insert(args.end(), {"--data", data_, "--progress", "json"});
    opts.kill_after = std::chrono::milliseconds(120000);
    return run_sluice(args, opts);
  }

  TempDir dir_{"sluice-ingest"};
  std::string docs_, data_;
};

TEST_F(IngestTest, FolderOfEveryFormatThenSearchFindsTheRightFile) {
  make_good_folder();
  RunResult r = ingest({docs_});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = summary_of(r);
  EXPECT_EQ(s["documents"], 12);
  EXPECT_EQ(s["ok"], 12) << s.dump();
  EXPECT_EQ(s["failed"], 0);
  EXPECT_GT(s["chunks"].get<int>(), 12);
  EXPECT_GE(s["pages"].get<int>(), 4);  // the PDFs' pages
  EXPECT_FALSE(s["interrupted"].get<bool>());

  auto wal = search(data_, "how do I rotate the WAL segment");
  ASSERT_FALSE(wal.empty());
  EXPECT_TRUE(found_in(wal, "wal.md", 1)) << wal[0].dump();
  // Every field of the contract is there.
  for (const char* field : {"score", "doc_id", "source", "page", "heading", "chunk_id", "text"}) {
    EXPECT_TRUE(wal[0].contains(field)) << field;
  }
  EXPECT_EQ(wal[0]["heading"], "Write-ahead log");
  EXPECT_EQ(wal[0]["source"], docs_ + "/notes/wal.md");

  EXPECT_TRUE(found_in(search(data_, "消息队列 解析 工作进程"), "调度.txt", 1));
  // A PDF hit carries its page.
  auto pdf = search(data_, "dead letter queue after the last attempt");
  ASSERT_FALSE(pdf.empty());
  EXPECT_TRUE(found_in(pdf, "english.pdf", 1)) << pdf[0].dump();
  EXPECT_EQ(pdf[0]["page"], 2) << pdf[0].dump();

  // The readable table names the file.
  RunResult table = run_sluice({"search", "rotate the WAL", "--data", data_});
  EXPECT_EQ(table.exit_code, 0) << describe(table);
  EXPECT_NE(table.out.find("wal.md"), std::string::npos) << table.out;
}

TEST_F(IngestTest, SearchReadsOneQueryPerLineFromStdin) {
  make_good_folder();
  ASSERT_EQ(ingest({docs_}).exit_code, 0);
  RunOptions o;
  // Blank lines are skipped; a query of punctuation only has nothing to find but is answered.
  o.stdin_data = "how do I rotate the WAL segment\n\n消息队列 解析 工作进程\r\n;;;\n";
  RunResult r = run_sluice({"search", "-", "--data", data_, "-k", "3", "--json"}, o);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  std::vector<json> answers;
  for (const auto& line : lines) answers.push_back(json::parse(line));
  EXPECT_EQ(answers[0]["query"], "how do I rotate the WAL segment");
  EXPECT_EQ(answers[1]["query"], "消息队列 解析 工作进程");  // the \r of a CRLF line is not part of it
  EXPECT_EQ(answers[2]["query"], ";;;");
  EXPECT_TRUE(answers[2]["hits"].empty());
  ASSERT_FALSE(answers[0]["hits"].empty());
  EXPECT_EQ(fs::path(answers[0]["hits"][0]["source"].get<std::string>()).filename(), "wal.md");
  EXPECT_EQ(answers[0]["hits"][0]["rank"], 1);
  ASSERT_FALSE(answers[1]["hits"].empty());
  EXPECT_EQ(fs::path(answers[1]["hits"][0]["source"].get<std::string>()).filename(), "调度.txt");
  for (const auto& a : answers) EXPECT_GE(a["ms"].get<double>(), 0.0);
  EXPECT_NE(r.err.find("3 queries, 0 failed"), std::string::npos) << r.err;

  // Without --json: a table per query under its heading.
  o.stdin_data = "rotate the WAL\n";
  RunResult table = run_sluice({"search", "-", "--data", data_}, o);
  EXPECT_EQ(table.exit_code, 0) << describe(table);
  EXPECT_NE(table.out.find("== rotate the WAL"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("wal.md"), std::string::npos) << table.out;
}

TEST_F(IngestTest, BadInputsFailOrSkipWithAClearErrorWhileTheRestSucceeds) {
  write_file(docs_ + "/good.md", "# Good\n\nThis document is fine and must be indexed.\n");
  write_file(docs_ + "/empty.txt", "");
  fs::copy_file(kFixtures + "junk.txt", docs_ + "/junk.txt");
  fs::copy_file(kFixtures + "truncated.pdf", docs_ + "/truncated.pdf");
  fs::copy_file(kFixtures + "encrypted.pdf", docs_ + "/encrypted.pdf");
  write_file(docs_ + "/hang.txt", "SLUICE-TEST-FAULT hang\n");
  write_file(docs_ + "/crash.txt", "SLUICE-TEST-FAULT crash\n");
  {
    // 200 MB (sparse: the size is what matters; the limit is checked before reading).
    std::ofstream big(docs_ + "/big.txt", std::ios::binary);
    big.seekp(200ll << 20);
    big.put('x');
  }
  // The budget bounds hang.txt; it is generous for the rest (oom.txt touches 512 MiB before it
  // fails, which took over 2 s once on a loaded 2-core machine).
  std::vector<std::string> args = {docs_, "--parse-timeout", "5000"};
#if !defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer needs more address space than any budget; the memory blow-up runs without it.
  write_file(docs_ + "/oom.txt", "SLUICE-TEST-FAULT oom\n");
  args.insert(args.end(), {"--parse-memory", "512MiB"});
#endif
  RunOptions o;
  o.env = {{"SLUICE_TEST_FAULT_FILES", "1"}};
  RunResult r = ingest(args, o);
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  json s = summary_of(r);
  auto failed = failures_of(r);

  auto expect_failed = [&](const std::string& name, const std::string& cls, const std::string& words) {
    ASSERT_TRUE(failed.count(name)) << name << "\n" << describe(r);
    EXPECT_EQ(failed[name]["error_class"], cls) << failed[name].dump();
    EXPECT_NE(failed[name]["message"].get<std::string>().find(words), std::string::npos)
        << failed[name].dump();
  };
  expect_failed("junk.txt", "bad_input", "binary");
  expect_failed("truncated.pdf", "bad_input", "truncated");
  expect_failed("encrypted.pdf", "bad_input", "password");
  expect_failed("big.txt", "resource_limit", "max_file_size");
  expect_failed("hang.txt", "resource_limit", "hang.txt");
  expect_failed("crash.txt", "fatal", "crash.txt");
#if !defined(__SANITIZE_ADDRESS__)
  expect_failed("oom.txt", "resource_limit", "memory");
  EXPECT_EQ(s["failed"], 7) << s.dump();
#else
  EXPECT_EQ(s["failed"], 6) << s.dump();
#endif
  EXPECT_FALSE(failed.count("empty.txt"));
  EXPECT_EQ(s["ok"], 1);
  EXPECT_EQ(s["skipped"], 1);  // the empty file: nothing to index, not an error
  EXPECT_TRUE(found_in(search(data_, "document is fine"), "good.md", 1));

  // Every failure is in a dead-letter topic, ready for `sluice dlq replay`.
  RunResult tail = run_sluice(
      {"tail", "doc_upload.dlq", "--data", data_, "--from-beginning", "--max", "20", "--timeout", "2"});
  EXPECT_EQ(split_lines(tail.out).size(), failed.size()) << describe(tail);
}

TEST_F(IngestTest, SecondRunSkipsUnchangedReprocessesChangedAndPrunesDeleted) {
  write_file(docs_ + "/a.md", "# Alpha\n\nThe alpha document talks about reindeer migration.\n");
  write_file(docs_ + "/b.md", "# Beta\n\nThe beta document talks about glacier melt.\n");
  write_file(docs_ + "/c.md", "# Gamma\n\nThe gamma document talks about volcano ash.\n");
  ASSERT_EQ(ingest({docs_}).exit_code, 0);

  RunResult again = ingest({docs_});
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  json s = summary_of(again);
  EXPECT_EQ(s["skipped"], 3);
  EXPECT_EQ(s["ok"], 0);

  write_file(docs_ + "/b.md", "# Beta\n\nThe beta document now talks about desert dunes.\n");
  fs::remove(docs_ + "/c.md");
  RunResult third = ingest({docs_, "--prune"});
  ASSERT_EQ(third.exit_code, 0) << describe(third);
  s = summary_of(third);
  EXPECT_EQ(s["skipped"], 1);
  EXPECT_EQ(s["ok"], 1);
  EXPECT_EQ(s["pruned"], 1);
  EXPECT_TRUE(found_in(search(data_, "desert dunes"), "b.md", 1));
  for (const auto& h : search(data_, "glacier melt volcano ash", 10)) {
    std::string text = h["text"];
    EXPECT_EQ(text.find("glacier"), std::string::npos) << "old version still found: " << text;
    EXPECT_EQ(text.find("volcano"), std::string::npos) << "pruned document still found: " << text;
  }
}

TEST_F(IngestTest, IncludeExcludeAndMaxFiles) {
  write_file(docs_ + "/keep/one.md", "# One\n\nfirst kept file\n");
  write_file(docs_ + "/keep/two.txt", "second kept file\n");
  write_file(docs_ + "/skip/three.md", "# Three\n\nexcluded file\n");
  RunResult r = ingest({docs_, "--include", "*.md", "--exclude", "skip"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary_of(r)["documents"], 1);
  RunResult m = ingest({docs_, "--max-files", "2"});
  ASSERT_EQ(m.exit_code, 0) << describe(m);
  EXPECT_EQ(summary_of(m)["documents"], 2);
}

TEST_F(IngestTest, MaskPiiBeforeTextEntersTheQueue) {
  write_file(
      docs_ + "/contact.txt",
      "Contact alice@example.com or call 13812345678. 身份证 11010519491231002X belongs to the tester.\n");
  RunResult r = ingest({docs_, "--mask-pii"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto hits = search(data_, "contact tester");
  ASSERT_FALSE(hits.empty());
  std::string text = hits[0]["text"];
  EXPECT_EQ(text.find("alice@example.com"), std::string::npos) << text;
  EXPECT_EQ(text.find("13812345678"), std::string::npos) << text;
  EXPECT_EQ(text.find("11010519491231002X"), std::string::npos) << text;
  EXPECT_NE(text.find("[EMAIL]"), std::string::npos) << text;
  // Nothing unmasked went through the queue either.
  RunResult tail =
      run_sluice({"tail", "doc_parsed", "--data", data_, "--from-beginning", "--max", "5", "--timeout", "2"});
  EXPECT_EQ(tail.out.find("alice@example.com"), std::string::npos);
}

TEST_F(IngestTest, UsageAndSearchErrors) {
  RunResult missing = ingest({dir_.path() + "/no-such-dir"});
  EXPECT_EQ(missing.exit_code, 3) << describe(missing);
  EXPECT_NE(missing.err.find("no-such-dir"), std::string::npos) << missing.err;
  RunResult bad = ingest({docs_, "--pool", "zero"});
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("pool"), std::string::npos) << bad.err;
  RunResult alias = run_sluice({"ingest", docs_, "--data", data_}, {.env = {{"POOL_SIZE", "-1"}}});
  EXPECT_EQ(alias.exit_code, 2) << describe(alias);
  EXPECT_NE(alias.err.find("POOL_SIZE"), std::string::npos) << alias.err;

  RunResult noindex = run_sluice({"search", "anything", "--data", dir_.path() + "/empty"});
  EXPECT_EQ(noindex.exit_code, 2) << describe(noindex);
  EXPECT_NE(noindex.err.find("sluice ingest"), std::string::npos) << noindex.err;
}

TEST_F(IngestTest, CtrlCStopsCleanlyAndTheNextRunResumes) {
  for (int i = 0; i < 400; ++i) {
    std::string body = "# Note " + std::to_string(i) + "\n\n";
    for (int k = 0; k < 40; ++k)
      body += "Sentence " + std::to_string(k) + " of note " + std::to_string(i) + ". ";
    write_file(docs_ + "/n" + std::to_string(i) + ".md", body);
  }
  // One document the parser hangs on (the test-only fault format) for its 3 s budget: the run
  // cannot be over before the signal arrives, however fast the machine.
  write_file(docs_ + "/slow.txt", "SLUICE-TEST-FAULT hang\n");
  std::atomic<bool> term{false};
  RunOptions o;
  o.terminate = &term;
  o.env = {{"SLUICE_TEST_FAULT_FILES", "1"}};
  std::thread killer([&] {
    // Not before it can take the signal: the data directory is made after the handler is set (a
    // start under AddressSanitizer on a loaded machine has taken longer than a fixed pause).
    for (auto deadline = Clock::now() + std::chrono::seconds(60);
         Clock::now() < deadline && !fs::exists(data_ + "/logs");)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    term = true;
  });
  RunResult first = ingest({docs_, "--parse-timeout", "3000"}, o);
  killer.join();
  EXPECT_EQ(first.exit_code, 130) << describe(first);
  json s1 = summary_of(first);
  EXPECT_TRUE(s1["interrupted"].get<bool>());
  EXPECT_LT(s1["done"].get<int>(), 401);

  // Without the fault hook slow.txt is plain text, so this run must finish everything.
  RunResult second = ingest({docs_});
  ASSERT_EQ(second.exit_code, 0) << describe(second);
  json s2 = summary_of(second);
  EXPECT_EQ(s2["documents"], 401);
  EXPECT_EQ(s2["failed"], 0);
  // Everything the first run finished is skipped; the rest is done now.
  EXPECT_GE(s2["skipped"].get<int>(), s1["ok"].get<int>());
  EXPECT_EQ(s2["ok"].get<int>() + s2["skipped"].get<int>(), 401);
}

}  // namespace
