// End-to-end tests of `sluice dlq list` and `sluice dlq replay`. The dead letters are made the way
// the system makes them: a real StageRunner (in this process, on the log queue under the test's
// --data directory) whose process function fails with bad input or a retriable error; then the
// built `sluice` binary lists them and sends them back, and `sluice tail` / `sluice topics` show
// what arrived.
//
// SLUICE_KEEP_TEST_DIRS=1 keeps the data directories for a look after a failure.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "e2e/sluice_runner.h"
#include "pipeline/envelope.h"
#include "pipeline/stage_runner.h"
#include "queue/queue.h"

namespace {

using namespace std::chrono_literals;
using namespace sluice::test;
using nlohmann::json;
namespace queue = sluice::queue;
namespace pipeline = sluice::pipeline;
using sluice::Status;

// One task sent to a stage's input topic.
struct Doc {
  std::string key;
  std::string value;
  std::string trace_id;
};

// A long error message with Chinese text: the table shortens it, --json shows it whole.
const std::string kLongError =
    "无法解析文档：文件头损坏 (corrupt header at byte 0); the file claims to be a PDF but its first page "
    "object is truncated, so no text can be extracted from it";

// The n-th whitespace-separated cell of a table line (the columns before ERROR hold no spaces).
std::string cell(const std::string& line, size_t n) {
  std::istringstream in(line);
  std::string c;
  for (size_t i = 0; i <= n && in >> c;) ++i;
  return c;
}

class DlqTest : public ::testing::Test {
 protected:
  std::string queue_uri() const { return "log:" + dir_.path() + "/queue"; }

  RunResult sluice(std::vector<std::string> args) {
    args.push_back("--data");
    args.push_back(dir_.path());
    return run_sluice(args);
  }

  // Sends docs to `topic` (made with two partitions when missing) and runs a real StageRunner named
  // `stage` over it until `expected` inputs have either succeeded or been dead-lettered. `fail`
  // gives the outcome of one message by key.
  void run_stage(const std::string& stage, const std::string& topic, const std::vector<Doc>& docs,
                 size_t expected, std::function<Status(std::string_view key)> fail, int max_attempts = 3) {
    auto qr = queue::open_queue(queue_uri());
    ASSERT_TRUE(qr.is_ok()) << qr.status().to_string();
    queue::Queue& q = **qr;
    Status made = q.admin().create_topic(topic, {.partitions = 2});
    ASSERT_TRUE(made.is_ok() || made.code() == sluice::Code::kAlreadyExists) << made.to_string();
    if (!docs.empty()) {
      auto p = q.make_producer({});
      ASSERT_TRUE(p.is_ok()) << p.status().to_string();
      for (const Doc& d : docs) {
        auto hs_owned = pipeline::standard_headers(d.trace_id, 1);
        hs_owned.emplace_back("content_type", "application/pdf");  // a header of the uploader's own
        std::vector<queue::Header> hs;
        for (const auto& [k, v] : hs_owned) hs.push_back({k, v});
        ASSERT_TRUE((*p)->send({.topic = topic, .key = d.key, .value = d.value, .headers = hs}).is_ok());
      }
      ASSERT_TRUE((*p)->flush(queue::Millis(10000)).is_ok());
    }
    std::atomic<size_t> succeeded{0};
    pipeline::ProcessFn fn = [&](const queue::Message& m) -> pipeline::Outcome {
      Status st = fail(m.key.value_or(""));
      if (st.is_ok()) succeeded.fetch_add(1);
      return {st, {}};
    };
    pipeline::StageConfig cfg{.name = stage,
                              .input_topic = topic,
                              .workers = 2,
                              .max_attempts = max_attempts,
                              .backoff = queue::Millis(10),
                              .max_backoff = queue::Millis(50)};
    pipeline::StageRunner runner(q, cfg, fn);
    std::atomic<bool> stop{false};
    Status run_status;
    std::thread t([&] { run_status = runner.run(stop); });
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (succeeded.load() + runner.stats().dead_lettered.load() < expected &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    stop = true;  // run() finishes what is in flight, dead letters included, before it returns
    t.join();
    ASSERT_TRUE(run_status.is_ok()) << run_status.to_string();
    ASSERT_EQ(succeeded.load() + runner.stats().dead_lettered.load(), expected) << "stage " << stage;
  }

  // The parse stage over doc_upload dead-letters two documents for bad input (one keeps working);
  // the embed stage over doc_parsed gives up on one after two retriable failures.
  void make_dead_letters() {
    upload_ = {{"doc-ok-1", R"({"doc_id":"doc-ok-1","source":{"uri":"file:///docs/ok.txt"}})",
                pipeline::random_id()},
               {"doc-bad-1", R"({"doc_id":"doc-bad-1","source":{"uri":"file:///docs/扫描件.xyz"}})",
                pipeline::random_id()},
               {"doc-bad-2", R"({"doc_id":"doc-bad-2","source":{"uri":"file:///docs/broken.pdf"}})",
                pipeline::random_id()}};
    run_stage("parse", "doc_upload", upload_, 3, [](std::string_view key) {
      if (key == "doc-bad-1") return Status::unsupported("不支持的文件格式: .xyz");
      if (key == "doc-bad-2") return Status::invalid_argument(kLongError);
      return Status();
    });
    parsed_ = {{"doc-slow-1", R"({"doc_id":"doc-slow-1","text":"第一章"})", pipeline::random_id()}};
    run_stage(
        "embed", "doc_parsed", parsed_, 1,
        [](std::string_view) { return Status::timeout("embedder did not answer in 30 s"); },
        /*max_attempts=*/2);
  }

  // Messages stored in a topic, from `sluice topics --json`.
  int64_t count(const std::string& topic) {
    RunResult r = sluice({"topics", "--json"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    for (const std::string& line : split_lines(r.out)) {
      json j = json::parse(line);
      if (j["name"] != topic) continue;
      int64_t n = 0;
      for (const json& p : j["partition_info"]) n += p["messages"].get<int64_t>();
      return n;
    }
    return -1;
  }

  // The first n messages of a topic, through `sluice tail`.
  std::vector<json> tail(const std::string& topic, int64_t n) {
    RunResult r = sluice({"tail", topic, "--from-beginning", "--max", std::to_string(n), "--timeout", "5"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> out;
    for (const std::string& line : split_lines(r.out)) out.push_back(json::parse(line));
    EXPECT_EQ(out.size(), static_cast<size_t>(n)) << r.out;
    return out;
  }

  std::vector<json> list_json(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"dlq", "list", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = sluice(args);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> out;
    for (const std::string& line : split_lines(r.out)) {
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      out.push_back(j);
    }
    return out;
  }

  static const json* by_doc(const std::vector<json>& rows, const std::string& doc) {
    for (const json& j : rows)
      if (j["doc_id"] == doc) return &j;
    return nullptr;
  }

  TempDir dir_{"sluice-dlq"};
  std::vector<Doc> upload_, parsed_;
};

TEST_F(DlqTest, HelpOnDlqCommands) {
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"dlq"}, {"list", "replay"}},
      {{"dlq", "list"}, {"--topic", "--json", "--queue", "--data"}},
      {{"dlq", "replay"}, {"--doc", "--all", "--topic", "--queue", "--data"}},
  };
  for (const auto& [cmd, expect] : cases) expect_help(cmd, expect);
}

TEST_F(DlqTest, ListOnEmptyQueue) {
  // Nothing was ever produced: the queue is missing, as for every command that only looks.
  RunResult r = sluice({"dlq", "list"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no sluice log at"), std::string::npos) << r.err;

  // A queue whose stages have run without a failure: the DLQ topics exist and are empty.
  run_stage("parse", "doc_upload", {{"doc-ok-1", "{}", pipeline::random_id()}}, 1,
            [](std::string_view) { return Status(); });
  ASSERT_EQ(count("doc_upload.dlq"), 0);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"dlq", "list"},
                                               {"dlq", "list", "--json"},
                                               {"dlq", "list", "--topic", "doc_upload"}}) {
    r = sluice(args);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_EQ(r.out, "") << describe(r);
    EXPECT_NE(r.err.find("no dead letters"), std::string::npos) << describe(r);
  }
  // Replaying everything from an empty DLQ sends nothing and says so.
  r = sluice({"dlq", "replay", "--all"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 0 dead letters\n") << describe(r);
  EXPECT_NE(r.err.find("nothing to replay"), std::string::npos) << describe(r);
  EXPECT_EQ(count("doc_upload"), 1);
}

TEST_F(DlqTest, ListShowsEveryDeadLetterAsJsonAndTable) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  std::vector<json> rows = list_json();
  ASSERT_EQ(rows.size(), 3u);
  // Oldest first: the parse stage ran before the embed stage.
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_LE(rows[i - 1]["timestamp"].get<int64_t>(), rows[i]["timestamp"].get<int64_t>());
  }
  EXPECT_EQ(rows[2]["doc_id"], "doc-slow-1");

  const json* bad1 = by_doc(rows, "doc-bad-1");
  ASSERT_NE(bad1, nullptr);
  EXPECT_EQ((*bad1)["dlq_topic"], "doc_upload.dlq");
  EXPECT_TRUE((*bad1)["partition"].is_number_integer());
  EXPECT_TRUE((*bad1)["offset"].is_number_integer());
  EXPECT_EQ((*bad1)["failed_stage"], "parse");
  EXPECT_EQ((*bad1)["original_topic"], "doc_upload");
  EXPECT_EQ((*bad1)["error_class"], "bad_input");
  EXPECT_EQ((*bad1)["error_message"], "不支持的文件格式: .xyz");
  EXPECT_EQ((*bad1)["attempts"], 1);
  EXPECT_EQ((*bad1)["trace_id"], upload_[1].trace_id);
  EXPECT_EQ((*bad1)["replayed"], false);
  EXPECT_TRUE((*bad1)["replayed_at"].is_null());
  EXPECT_TRUE((*bad1)["time"].get<std::string>().ends_with("Z")) << (*bad1)["time"];

  const json* bad2 = by_doc(rows, "doc-bad-2");
  ASSERT_NE(bad2, nullptr);
  EXPECT_EQ((*bad2)["error_message"], kLongError) << "--json shows the whole message";
  EXPECT_EQ((*bad2)["trace_id"], upload_[2].trace_id);

  const json* slow = by_doc(rows, "doc-slow-1");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ((*slow)["dlq_topic"], "doc_parsed.dlq");
  EXPECT_EQ((*slow)["failed_stage"], "embed");
  EXPECT_EQ((*slow)["original_topic"], "doc_parsed");
  EXPECT_EQ((*slow)["error_class"], "retriable");
  EXPECT_EQ((*slow)["attempts"], 2);
  EXPECT_EQ(by_doc(rows, "doc-ok-1"), nullptr) << "a document that succeeded is no dead letter";

  // The table: a header, one row per dead letter, the long message shortened.
  RunResult r = sluice({"dlq", "list"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const std::vector<std::string> columns = {"DLQ-TOPIC", "PARTITION",      "OFFSET",      "DOC-ID",
                                            "STAGE",     "ORIGINAL-TOPIC", "ATTEMPTS",    "TIME",
                                            "TRACE-ID",  "REPLAYED",       "ERROR-CLASS", "ERROR"};
  std::vector<std::string> header;
  {
    std::istringstream in(lines[0]);
    for (std::string cell; in >> cell;) header.push_back(cell);
  }
  EXPECT_EQ(header, columns) << r.out;
  for (const char* doc : {"doc-bad-1", "doc-bad-2", "doc-slow-1"}) {
    EXPECT_NE(r.out.find(doc), std::string::npos) << doc << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("不支持的文件格式: .xyz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(upload_[1].trace_id), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(kLongError), std::string::npos) << "the table shortens long messages\n" << r.out;
  EXPECT_NE(r.out.find("无法解析文档"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("…"), std::string::npos) << r.out;
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(cell(lines[i], 9), "no") << lines[i];
  EXPECT_EQ(lines[3].rfind("doc_parsed.dlq", 0), 0u) << r.out;

  // --topic narrows to one DLQ, by its topic's name or the DLQ's own.
  for (const char* t : {"doc_parsed", "doc_parsed.dlq"}) {
    std::vector<json> only = list_json({"--topic", t});
    ASSERT_EQ(only.size(), 1u) << t;
    EXPECT_EQ(only[0]["doc_id"], "doc-slow-1");
  }
  r = sluice({"dlq", "list", "--topic", "no_such_topic"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no_such_topic"), std::string::npos) << describe(r);
  // Listing disturbs no consumer group and creates nothing.
  RunResult g = sluice({"groups", "--json"});
  ASSERT_EQ(g.exit_code, 0) << describe(g);
  EXPECT_EQ(g.out.find("sluice-dlq"), std::string::npos) << g.out;
  EXPECT_EQ(count("sluice.dlq.replayed"), -1);
}

TEST_F(DlqTest, ReplayDocSendsThatDocBackWithAttemptOneAndItsTrace) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  std::vector<json> before = tail("doc_upload", 3);
  json original;
  for (const json& m : before)
    if (m["key"] == "doc-bad-1") original = m;
  ASSERT_FALSE(original.is_null());

  RunResult r = sluice({"dlq", "replay", "--doc", "doc-bad-1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 1 dead letter: 1 to doc_upload\n") << describe(r);

  // Exactly that document went back, to its original topic only.
  ASSERT_EQ(count("doc_upload"), 4);
  EXPECT_EQ(count("doc_parsed"), 1);
  std::vector<json> after = tail("doc_upload", 4);
  std::vector<json> replayed;
  for (const json& m : after)
    if (m["headers"].contains("replayed_from")) replayed.push_back(m);
  ASSERT_EQ(replayed.size(), 1u);
  const json& m = replayed[0];
  EXPECT_EQ(m["key"], "doc-bad-1");
  EXPECT_EQ(m["value"], original["value"]);
  EXPECT_EQ(m["partition"], original["partition"]) << "the same key lands on the same partition";
  const json& h = m["headers"];
  EXPECT_EQ(h["attempt"], "1");
  EXPECT_EQ(h["trace_id"], upload_[1].trace_id);
  EXPECT_NE(h["event_id"], original["headers"]["event_id"]) << "fresh standard headers";
  EXPECT_EQ(h["schema"], "1");
  EXPECT_TRUE(h.contains("produced_at"));
  EXPECT_EQ(h["content_type"], "application/pdf") << "the uploader's own headers stay";
  for (const char* gone : {"error_class", "error_message", "original_topic", "failed_stage", "not_before"}) {
    EXPECT_FALSE(h.contains(gone)) << gone << ": " << h.dump();
  }

  // list marks it replayed, and only it.
  std::vector<json> rows = list_json();
  ASSERT_EQ(rows.size(), 3u);
  for (const json& row : rows) {
    const bool want = row["doc_id"] == "doc-bad-1";
    EXPECT_EQ(row["replayed"], want) << row.dump();
    EXPECT_EQ(row["replayed_at"].is_string(), want) << row.dump();
    if (want) {
      EXPECT_EQ(h["replayed_from"], row["dlq_topic"].get<std::string>() + "/" + row["partition"].dump() +
                                        "/" + row["offset"].dump());
    }
  }

  // The replayed document fails again in the parse stage (only it: the group is past the rest):
  // a new dead letter with attempt 1, not replayed, next to the old one.
  ASSERT_NO_FATAL_FAILURE(run_stage("parse", "doc_upload", {}, 1, [](std::string_view key) {
    return key == "doc-bad-1" ? Status::unsupported("不支持的文件格式: .xyz") : Status();
  }));
  rows = list_json({"--topic", "doc_upload"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2]["doc_id"], "doc-bad-1");
  EXPECT_EQ(rows[2]["replayed"], false);
  EXPECT_EQ(rows[2]["attempts"], 1);
  EXPECT_EQ(rows[2]["trace_id"], upload_[1].trace_id) << "one trace from upload to result";
}

TEST_F(DlqTest, ReplayAllThenAgainSendsNothingTheSecondTime) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  RunResult r = sluice({"dlq", "replay", "--all"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 3 dead letters: 1 to doc_parsed, 2 to doc_upload\n") << describe(r);
  EXPECT_EQ(count("doc_upload"), 5);
  EXPECT_EQ(count("doc_parsed"), 2);

  std::vector<json> parsed = tail("doc_parsed", 2);
  EXPECT_EQ(parsed[1]["key"], "doc-slow-1");
  EXPECT_EQ(parsed[1]["headers"]["attempt"], "1") << "the retriable failure starts over";
  EXPECT_EQ(parsed[1]["headers"]["trace_id"], parsed_[0].trace_id);

  // The ledger: one record per replayed dead letter.
  std::vector<json> ledger = tail("sluice.dlq.replayed", 3);
  std::vector<json> rows = list_json();
  ASSERT_EQ(rows.size(), 3u);
  for (const json& row : rows) {
    EXPECT_EQ(row["replayed"], true) << row.dump();
    bool found = false;
    for (const json& e : ledger) {
      json v = json::parse(e["value"].get<std::string>());
      if (v["dlq_topic"] == row["dlq_topic"] && v["partition"] == row["partition"] &&
          v["offset"] == row["offset"]) {
        found = true;
        EXPECT_EQ(v["replayed_at"], row["replayed_at"]);
      }
    }
    EXPECT_TRUE(found) << row.dump();
  }

  // Again: nothing is sent, by --all or by --doc.
  r = sluice({"dlq", "replay", "--all"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 0 dead letters\n") << describe(r);
  EXPECT_NE(r.err.find("already replayed"), std::string::npos) << describe(r);
  r = sluice({"dlq", "replay", "--doc", "doc-bad-2"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 0 dead letters\n") << describe(r);
  EXPECT_NE(r.err.find("doc-bad-2"), std::string::npos) << describe(r);
  EXPECT_EQ(count("doc_upload"), 5);
  EXPECT_EQ(count("doc_parsed"), 2);
  EXPECT_EQ(count("sluice.dlq.replayed"), 3);

  // The table says so too.
  r = sluice({"dlq", "list"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(cell(lines[i], 9), "yes") << lines[i];
}

TEST_F(DlqTest, ReplayScopedToOneTopic) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  RunResult r = sluice({"dlq", "replay", "--all", "--topic", "doc_parsed", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  json j = json::parse(lines[0]);
  EXPECT_EQ(j["doc_id"], "doc-slow-1");
  EXPECT_EQ(j["dlq_topic"], "doc_parsed.dlq");
  EXPECT_EQ(j["topic"], "doc_parsed");
  EXPECT_EQ(j["to_offset"], 1);
  EXPECT_EQ(count("doc_upload"), 3);
  EXPECT_EQ(count("doc_parsed"), 2);
  // A doc of another topic is not found in this one.
  r = sluice({"dlq", "replay", "--doc", "doc-bad-1", "--topic", "doc_parsed"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("doc-bad-1"), std::string::npos) << describe(r);
}

TEST_F(DlqTest, ReplayUnknownDocIsBadInputAndSendsNothing) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  RunResult r = sluice({"dlq", "replay", "--doc", "doc-nope-42"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err.rfind("sluice: bad_input: ", 0), 0u) << describe(r);
  EXPECT_NE(r.err.find("doc-nope-42"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out, "");
  // One known and one unknown id: nothing at all is sent.
  r = sluice({"dlq", "replay", "--doc", "doc-bad-1", "--doc", "doc-nope-42"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("doc-nope-42"), std::string::npos) << describe(r);
  EXPECT_EQ(r.err.find("'doc-bad-1'"), std::string::npos) << describe(r);
  // A document that succeeded has no dead letter either.
  r = sluice({"dlq", "replay", "--doc", "doc-ok-1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(count("doc_upload"), 3);
  EXPECT_EQ(count("sluice.dlq.replayed"), -1);
  for (const json& row : list_json()) EXPECT_EQ(row["replayed"], false) << row.dump();
}

TEST_F(DlqTest, ReplayNeedsDocOrAll) {
  ASSERT_NO_FATAL_FAILURE(make_dead_letters());
  const std::vector<std::vector<std::string>> cases = {
      {"dlq", "replay"},                                 // neither
      {"dlq", "replay", "--doc", "doc-bad-1", "--all"},  // both
      {"dlq", "replay", "--doc"},                        // --doc without an id
      {"dlq"},                                           // no subcommand
      {"dlq", "list", "--bogus"},                        // unknown option
  };
  for (const auto& args : cases) {
    RunResult r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_EQ(r.err.rfind("sluice: bad_input: ", 0), 0u) << describe(r);
    EXPECT_EQ(r.out, "") << describe(r);
  }
  EXPECT_EQ(count("doc_upload"), 3);
  EXPECT_EQ(count("doc_parsed"), 1);
}

}  // namespace
