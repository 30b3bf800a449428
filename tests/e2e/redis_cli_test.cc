// The group operations on the `redis` backend, as a person runs them: produce, tail (with and
// without a group), groups, replay, dlq, against a real redis-server; and the errors a person meets
// first: nobody listening, a password missing or wrong.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "support/redis_server.h"
#include "support/require_server.h"

namespace {

using namespace sluice::test;
using nlohmann::json;

class RedisCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sluice::Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  RunResult sluice(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.end(), {"--queue", server_.uri(), "--data", tmp_.path()});
    RunOptions o;
    o.stdin_data = input;
    return run_sluice(args, o);
  }
  std::vector<std::string> values(const RunResult& r) {
    std::vector<std::string> out;
    for (const auto& l : split_lines(r.out)) out.push_back(json::parse(l)["value"].get<std::string>());
    return out;
  }

  sluice::testing::RedisServer server_;
  TempDir tmp_{"sluice-redis-cli"};
};

TEST_F(RedisCliTest, ProduceTailGroupsReplay) {
  RunResult p = sluice({"produce", "t", "--create", "--partitions", "1"}, "a\nb\nc\nd\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  RunResult r = sluice({"topics", "describe", "t", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("\"end\":4"), std::string::npos) << r.out;

  // A throwaway reader (no group) sees everything, twice.
  for (int i = 0; i < 2; ++i) {
    r = sluice({"tail", "t", "--from-beginning", "--max", "4"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_EQ(values(r), (std::vector<std::string>{"a", "b", "c", "d"}));
  }
  // A group reads three, commits, and shows committed offset, end and lag.
  r = sluice({"tail", "t", "--group", "g", "--from-beginning", "--max", "3"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = sluice({"groups", "g", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json g = json::parse(r.out);
  EXPECT_EQ(g["state"], "empty");
  EXPECT_EQ(g["lag"], 1);
  EXPECT_EQ(
      g["partitions"][0],
      json(
          {{"topic", "t"}, {"partition", 0}, {"committed", 3}, {"end", 4}, {"lag", 1}, {"member", nullptr}}));
  r = sluice({"groups"});
  EXPECT_NE(r.out.find("g "), std::string::npos) << describe(r);
  // It resumes where it committed.
  r = sluice({"tail", "t", "--group", "g", "--max", "1", "--timeout", "10"});
  EXPECT_EQ(values(r), std::vector<std::string>{"d"});
  // Replay: to the earliest offset, then to offset 2, then to a time before everything.
  r = sluice({"replay", "g", "--topic", "t", "--to", "earliest"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "GROUP  TOPIC  PARTITION  NEW-OFFSET\ng      t      0          0\n");
  r = sluice({"tail", "t", "--group", "g", "--max", "4", "--timeout", "10"});
  EXPECT_EQ(values(r), (std::vector<std::string>{"a", "b", "c", "d"}));
  r = sluice({"replay", "g", "--topic", "t", "--to", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["partitions"][0]["offset"], 2);
  r = sluice({"tail", "t", "--group", "g", "--max", "2", "--timeout", "10"});
  EXPECT_EQ(values(r), (std::vector<std::string>{"c", "d"}));
  r = sluice({"replay", "g", "--topic", "t", "--to", "2000-01-01T00:00:00Z", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["partitions"][0]["offset"], 0);
  // Bad input: an unknown topic, a partition out of range.
  r = sluice({"replay", "g", "--topic", "nope", "--to", "earliest"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("'nope'"), std::string::npos) << r.err;
  r = sluice({"produce", "t", "--partition", "5"}, "x\n");
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("partition 5"), std::string::npos) << r.err;
}

TEST_F(RedisCliTest, DeadLettersListedAndReplayed) {
  const std::string docs = tmp_.path() + "/docs";
  std::filesystem::create_directories(docs);
  std::FILE* f = std::fopen((docs + "/broken.pdf").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("%PDF-1.4\ngarbage", f);  // a PDF with no xref table
  std::fclose(f);
  f = std::fopen((docs + "/fine.md").c_str(), "w");
  std::fputs("# Fine\n\nA document sluice can read.\n", f);
  std::fclose(f);
  RunResult r = sluice({"ingest", docs, "--progress", "none"});
  json summary = json::parse(split_lines(r.out).back());
  EXPECT_EQ(summary["ok"], 1) << describe(r);
  EXPECT_EQ(summary["failed"], 1) << describe(r);
  r = sluice({"dlq", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> rows = split_lines(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  json row = json::parse(rows[0]);
  EXPECT_EQ(row["dlq_topic"], "doc_upload.dlq");
  EXPECT_EQ(row["error_class"], "bad_input");
  EXPECT_NE(row["error_message"].get<std::string>().find("broken.pdf"), std::string::npos) << row.dump();
  r = sluice({"dlq", "replay", "--all"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "replayed 1 dead letter: 1 to doc_upload\n");
}

TEST_F(RedisCliTest, ServerErrorsAreNamed) {
  // Nobody listens there: retriable, naming the server.
  RunResult r = run_sluice({"topics", "--queue", "redis://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("retriable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot reach redis 127.0.0.1:1/0"), std::string::npos) << r.err;
  r = run_sluice({"topics", "--queue", "rediss://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("TLS"), std::string::npos) << r.err;

  sluice::testing::RedisServer locked;
  locked.extra_args = {"--requirepass", "s3cret"};
  ASSERT_TRUE(locked.start().is_ok());
  const std::string port = std::to_string(locked.port());
  r = run_sluice({"produce", "t", "--create", "--queue", "redis://127.0.0.1:" + port},
                 RunOptions{.stdin_data = "x\n"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("NOAUTH"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("password"), std::string::npos) << r.err;
  r = run_sluice({"topics", "--queue", "redis://wrong@127.0.0.1:" + port});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("WRONGPASS"), std::string::npos) << r.err;
  // The right password, from the environment.
  RunOptions o;
  o.stdin_data = "x\n";
  o.env = {{"SLUICE_REDIS_PASSWORD", "s3cret"}};
  r = run_sluice({"produce", "t", "--create", "--queue", "redis://127.0.0.1:" + port}, o);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

}  // namespace
