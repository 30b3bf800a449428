// End-to-end tests of the `sluice` command line: they run the built binary (SLUICE_BINARY) as a
// user would, each in its own temporary --data directory, and check stdout, stderr and exit codes
// of produce, tail, topics, groups and replay against the command-line contract (DESIGN.md).
//
// SLUICE_KEEP_TEST_DIRS=1 keeps the data directories for a look after a failure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/version.h"
#include "e2e/sluice_runner.h"

namespace {

using namespace std::chrono_literals;
using namespace sluice::test;
using nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ISO-8601 text of a time, shown in a zone `offset_min` minutes east of UTC.
std::string iso8601(int64_t ms, int offset_min, bool with_colon = true) {
  std::time_t secs = static_cast<std::time_t>((ms + int64_t{offset_min} * 60000) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  if (offset_min == 0) {
    std::snprintf(out, sizeof(out), "%s.%03dZ", date, static_cast<int>(ms % 1000));
  } else {
    int a = std::abs(offset_min);
    std::snprintf(out, sizeof(out), "%s.%03d%c%02d%s%02d", date, static_cast<int>(ms % 1000),
                  offset_min < 0 ? '-' : '+', a / 60, with_colon ? ":" : "", a % 60);
  }
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { started_ms_ = now_ms(); }

  // Runs sluice with --data pointing at this test's directory.
  RunResult sluice(std::vector<std::string> args, RunOptions opts = {}) {
    args.push_back("--data");
    args.push_back(dir_);
    return run_sluice(args, opts);
  }
  RunResult produce(std::vector<std::string> args, std::string input) {
    args.insert(args.begin(), "produce");
    RunOptions o;
    o.stdin_data = std::move(input);
    return sluice(std::move(args), o);
  }

  // tail's JSON lines with each timestamp checked to lie within the test's run and replaced by T,
  // so the rest of every line can be compared exactly.
  std::vector<std::string> normalized_lines(const std::string& out) {
    std::vector<std::string> lines;
    static const std::regex kTs("\"timestamp\":([0-9]+),");
    for (const std::string& line : split_lines(out)) {
      std::smatch m;
      if (!std::regex_search(line, m, kTs)) {
        ADD_FAILURE() << "no timestamp in " << line;
        lines.push_back(line);
        continue;
      }
      int64_t ts = std::stoll(m[1].str());
      EXPECT_GE(ts, started_ms_ - 1000) << line;
      EXPECT_LE(ts, now_ms() + 1000) << line;
      lines.push_back(std::regex_replace(line, kTs, "\"timestamp\":T,"));
    }
    return lines;
  }

  json group_json(const std::string& group) {
    RunResult r = sluice({"groups", group, "--json"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  TempDir tmp_{"sluice-cli"};
  const std::string dir_ = tmp_.path();
  int64_t started_ms_ = 0;
};

TEST_F(CliTest, VersionPrintsNameAndVersion) {
  RunResult r = run_sluice({"--version"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, std::string("sluice ") + sluice::kVersion + "\n");
}

TEST_F(CliTest, HelpOnEveryCommand) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "Usage: sluice [OPTIONS] SUBCOMMAND"},
      {{"ingest"}, "--include"},
      {{"search"}, "--json"},
      {{"produce"}, "--key-sep"},
      {{"tail"}, "--from-beginning"},
      {{"topics"}, "--json"},
      {{"topics", "create"}, "--partitions"},
      {{"topics", "describe"}, "NAME"},
      {{"groups"}, "GROUP"},
      {{"replay"}, "--to"},
  };
  for (const auto& [cmd, expect] : cases) expect_help(cmd, {expect, "--queue"});
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},                                              // no command
      {"frobnicate"},                                  // unknown command
      {"produce"},                                     // missing topic
      {"produce", "t", "--bogus"},                     // unknown option
      {"produce", "t", "--partitions", "3"},           // --partitions needs --create
      {"tail", "t", "--max", "0"},                     // not positive
      {"replay", "g", "--topic", "t"},                 // --to missing
      {"topics", "create", "x", "--partitions", "0"},  // out of range
  };
  for (const auto& args : cases) {
    RunResult r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_EQ(r.err.rfind("sluice: bad_input: ", 0), 0u) << describe(r);
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CliTest, ProduceThenTailRoundTrip) {
  // CRLF and LF endings are stripped, an empty line is an empty message, the last line needs no
  // newline, and Chinese text stays text.
  RunResult p = produce({"t", "--create"}, "hello\nworld\r\n\n中文 文本\nlast");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  EXPECT_EQ(p.err, "produced 5 messages to t\n");
  EXPECT_EQ(p.out, "");

  RunResult t = sluice({"tail", "t", "--from-beginning", "--max", "5"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(t.err, "");
  std::vector<std::string> expected = {
      R"({"topic":"t","partition":0,"offset":0,"timestamp":T,"key":null,"value":"hello","headers":{}})",
      R"({"topic":"t","partition":0,"offset":1,"timestamp":T,"key":null,"value":"world","headers":{}})",
      R"({"topic":"t","partition":0,"offset":2,"timestamp":T,"key":null,"value":"","headers":{}})",
      R"({"topic":"t","partition":0,"offset":3,"timestamp":T,"key":null,"value":"中文 文本","headers":{}})",
      R"({"topic":"t","partition":0,"offset":4,"timestamp":T,"key":null,"value":"last","headers":{}})",
  };
  EXPECT_EQ(normalized_lines(t.out), expected) << t.out;

  // A second produce appends; --max stops exactly there even with more messages waiting.
  p = produce({"t"}, "six\nseven\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  EXPECT_EQ(p.err, "produced 2 messages to t\n");
  t = sluice({"tail", "t", "--from-beginning", "--max", "6"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = normalized_lines(t.out);
  ASSERT_EQ(lines.size(), 6u) << t.out;
  EXPECT_EQ(lines[5],
            R"({"topic":"t","partition":0,"offset":5,"timestamp":T,"key":null,"value":"six","headers":{}})");
}

TEST_F(CliTest, KeySeparatorAndBadLine) {
  RunResult p = produce({"kv", "--create", "--key-sep", ":"}, "a:1\nnokey\nb:2:3\n:empty\n");
  EXPECT_EQ(p.exit_code, 2) << describe(p);
  EXPECT_NE(p.err.find("sluice: bad_input: line 2: no key separator ':'"), std::string::npos) << p.err;
  EXPECT_EQ(p.err.find("line 1"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("produced 3 messages to kv"), std::string::npos) << p.err;

  RunResult t = sluice({"tail", "kv", "--from-beginning", "--max", "3"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> expected = {
      R"({"topic":"kv","partition":0,"offset":0,"timestamp":T,"key":"a","value":"1","headers":{}})",
      R"({"topic":"kv","partition":0,"offset":1,"timestamp":T,"key":"b","value":"2:3","headers":{}})",
      R"({"topic":"kv","partition":0,"offset":2,"timestamp":T,"key":"","value":"empty","headers":{}})",
  };
  EXPECT_EQ(normalized_lines(t.out), expected) << t.out;

  // A multi-character separator, and "\t" meaning a tab.
  p = produce({"kv", "--key-sep", "=>"}, "k1=>v=1\n");
  EXPECT_EQ(p.exit_code, 0) << describe(p);
  p = produce({"kv", "--key-sep", "\\t"}, "k2\tv\t2\n");
  EXPECT_EQ(p.exit_code, 0) << describe(p);
  t = sluice({"tail", "kv", "--from-beginning", "--max", "5"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = normalized_lines(t.out);
  ASSERT_EQ(lines.size(), 5u) << t.out;
  EXPECT_EQ(lines[3],
            R"({"topic":"kv","partition":0,"offset":3,"timestamp":T,"key":"k1","value":"v=1","headers":{}})");
  EXPECT_EQ(
      lines[4],
      R"({"topic":"kv","partition":0,"offset":4,"timestamp":T,"key":"k2","value":"v\t2","headers":{}})");
}

TEST_F(CliTest, KeysChoosePartitionsAndHeadersAreCarried) {
  RunResult p = produce({"h", "--create", "--partitions", "4", "--key-sep", " ", "--header", "src=cli-test",
                         "--header", "lang=中文", "--header", "empty="},
                        "doc-1 first\ndoc-2 second\ndoc-1 third\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  RunResult t = sluice({"tail", "h", "--from-beginning", "--max", "3"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = split_lines(t.out);
  ASSERT_EQ(lines.size(), 3u) << t.out;
  std::map<std::string, std::vector<std::pair<int, std::string>>> by_key;  // key -> (partition, value)
  for (const std::string& line : lines) {
    json j = json::parse(line);
    EXPECT_EQ(j["headers"], json({{"src", "cli-test"}, {"lang", "中文"}, {"empty", ""}})) << line;
    by_key[j["key"].get<std::string>()].emplace_back(j["partition"].get<int>(),
                                                     j["value"].get<std::string>());
  }
  // One key, one partition, in send order.
  ASSERT_EQ(by_key["doc-1"].size(), 2u);
  EXPECT_EQ(by_key["doc-1"][0].first, by_key["doc-1"][1].first);
  EXPECT_EQ(by_key["doc-1"][0].second, "first");
  EXPECT_EQ(by_key["doc-1"][1].second, "third");

  // --partition overrides the key's partition.
  p = produce({"h", "--partition", "3", "--key-sep", " "}, "doc-1 pinned\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  RunResult d = sluice({"topics", "describe", "h", "--json"});
  ASSERT_EQ(d.exit_code, 0) << describe(d);
  json topic = json::parse(d.out);
  int64_t total = 0;
  for (const auto& part : topic["partition_info"]) total += part["end"].get<int64_t>();
  EXPECT_EQ(total, 4);
  EXPECT_GE(topic["partition_info"][3]["end"].get<int64_t>(), 1);

  RunResult bad = produce({"h", "--header", "novalue"}, "x\n");
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("--header 'novalue'"), std::string::npos) << bad.err;
}

TEST_F(CliTest, NonUtf8BytesAreShownAsBase64) {
  std::string input;
  input += "ok\xff\xfe\n";           // stray bytes
  input += "\xc3\x28\n";             // a broken two-byte sequence
  input += "\xed\xa0\x80\n";         // an encoded surrogate
  input += "\xc0\xaf\n";             // an overlong '/'
  input += "\xf0\x9f\x98\x80 ok\n";  // a valid four-byte character stays text
  input += "\xff:value\n";           // a binary key (with --key-sep below)
  RunResult p = produce({"bin", "--create"}, input.substr(0, input.rfind("\xff:")));
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  p = produce({"bin", "--key-sep", ":"}, "\xff:value\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);

  RunResult t = sluice({"tail", "bin", "--from-beginning", "--max", "6"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> expected = {
      R"({"topic":"bin","partition":0,"offset":0,"timestamp":T,"key":null,"value":{"base64":"b2v//g=="},"headers":{}})",
      R"({"topic":"bin","partition":0,"offset":1,"timestamp":T,"key":null,"value":{"base64":"wyg="},"headers":{}})",
      R"({"topic":"bin","partition":0,"offset":2,"timestamp":T,"key":null,"value":{"base64":"7aCA"},"headers":{}})",
      R"({"topic":"bin","partition":0,"offset":3,"timestamp":T,"key":null,"value":{"base64":"wK8="},"headers":{}})",
      "{\"topic\":\"bin\",\"partition\":0,\"offset\":4,\"timestamp\":T,\"key\":null,\"value\":"
      "\"\xf0\x9f\x98\x80 "
      "ok\",\"headers\":{}}",
      R"({"topic":"bin","partition":0,"offset":5,"timestamp":T,"key":{"base64":"/w=="},"value":"value","headers":{}})",
  };
  EXPECT_EQ(normalized_lines(t.out), expected) << t.out;
}

TEST_F(CliTest, OversizedLineIsSkippedAndTheRestSent) {
  const std::string queue = "log:" + dir_ + "/queue?max_message_bytes=1000";
  RunOptions o;
  o.stdin_data = "first\n" + std::string(2000, 'x') + "\nlast\n";
  RunResult p = run_sluice({"produce", "t", "--create", "--queue", queue}, o);
  EXPECT_EQ(p.exit_code, 2) << describe(p);
  EXPECT_NE(p.err.find("sluice: bad_input: line 2: "), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("produced 2 messages to t; bad lines not sent: 1\n"), std::string::npos) << p.err;
  RunResult t = run_sluice({"tail", "t", "--from-beginning", "--max", "2", "--queue", queue});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = split_lines(t.out);
  ASSERT_EQ(lines.size(), 2u) << t.out;
  EXPECT_EQ(json::parse(lines[0])["value"], "first");
  EXPECT_EQ(json::parse(lines[1])["value"], "last");
}

TEST_F(CliTest, UnknownTopicIsBadInput) {
  ASSERT_EQ(sluice({"topics", "create", "exists"}).exit_code, 0);
  RunResult p = produce({"nope"}, "x\n");
  EXPECT_EQ(p.exit_code, 2) << describe(p);
  EXPECT_EQ(p.err.rfind("sluice: bad_input: ", 0), 0u) << p.err;
  EXPECT_NE(p.err.find("'nope'"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("produced 0 messages to nope"), std::string::npos) << p.err;

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"tail", "nope", "--max", "1"},
                                             {"topics", "describe", "nope"},
                                             {"replay", "g", "--topic", "nope", "--to", "earliest"}}) {
    RunResult r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_EQ(r.err.rfind("sluice: bad_input: ", 0), 0u) << describe(r);
    EXPECT_NE(r.err.find("'nope'"), std::string::npos) << describe(r);
  }
  RunResult r = produce({"bad/name", "--create"}, "x\n");
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("[A-Za-z0-9._-]"), std::string::npos) << r.err;
  r = sluice({"groups", "no-such-group"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no-such-group"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadPartitionIsBadInput) {
  ASSERT_EQ(produce({"t", "--create", "--partitions", "2"}, "a\n").exit_code, 0);
  RunResult p = produce({"t", "--partition", "5"}, "x\ny\n");
  EXPECT_EQ(p.exit_code, 2) << describe(p);
  EXPECT_NE(p.err.find("partition 5"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("produced 0 messages to t"), std::string::npos) << p.err;
  RunResult r = sluice({"replay", "g", "--topic", "t", "--to", "earliest", "--partition", "7"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("partition 7"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadQueueUri) {
  RunResult r = run_sluice({"topics", "--queue", "foo://somewhere"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err.rfind("sluice: bad_input: opening queue 'foo://somewhere': ", 0), 0u) << r.err;
  // Nobody listens there: a retriable error naming the cluster, after librdkafka's own attempts.
  r = run_sluice({"tail", "t", "--queue", "kafka://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("sluice: retriable: opening queue 'kafka://127.0.0.1:1'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Kafka cluster at 127.0.0.1:1"), std::string::npos) << r.err;
  // A property librdkafka does not know is bad input, named.
  r = run_sluice({"tail", "t", "--queue", "kafka://127.0.0.1:1?no.such.property=1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no.such.property"), std::string::npos) << r.err;
  r = run_sluice({"produce", "t", "--queue", "redis://127.0.0.1:1"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err.rfind("sluice: ", 0), 0u) << r.err;
}

TEST_F(CliTest, TopicsCreateListDescribe) {
  // Looking at a data directory where nothing was produced is an error, not a new empty log.
  RunResult r = sluice({"topics"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no sluice log at"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/queue"));
  r = sluice({"topics", "create", "orders", "--partitions", "3"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "created topic orders with 3 partitions\n");
  r = sluice({"topics", "create", "orders", "--partitions", "3"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "topic orders already exists with 3 partitions\n");
  r = sluice({"topics", "create", "orders", "--partitions", "2"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err.rfind("sluice: bad_input: ", 0), 0u) << r.err;

  ASSERT_EQ(produce({"orders", "--partition", "1"}, "a\nb\n").exit_code, 0);
  ASSERT_EQ(produce({"a.log", "--create"}, "x\n").exit_code, 0);

  r = sluice({"topics"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out,
            "TOPIC   PARTITIONS  PARTITION  START  END  MESSAGES\n"
            "a.log   1           0          0      1    1\n"
            "orders  3           0          0      0    0\n"
            "orders  3           1          0      2    2\n"
            "orders  3           2          0      0    0\n");

  r = sluice({"topics", "--json"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(
      r.out,
      R"({"name":"a.log","partitions":1,"partition_info":[{"partition":0,"start":0,"end":1,"messages":1}]})"
      "\n"
      R"({"name":"orders","partitions":3,"partition_info":[{"partition":0,"start":0,"end":0,"messages":0},)"
      R"({"partition":1,"start":0,"end":2,"messages":2},{"partition":2,"start":0,"end":0,"messages":0}]})"
      "\n");

  r = sluice({"topics", "describe", "orders"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out,
            "Topic: orders\nPartitions: 3\n\n"
            "PARTITION  START  END  MESSAGES\n"
            "0          0      0    0\n"
            "1          0      2    2\n"
            "2          0      0    0\n");
}

TEST_F(CliTest, GroupsShowCommittedEndAndLag) {
  ASSERT_EQ(produce({"t", "--create"}, "1\n2\n3\n4\n5\n").exit_code, 0);
  RunResult t = sluice({"tail", "t", "--group", "g", "--from-beginning", "--max", "3"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(split_lines(t.out).size(), 3u);

  json g = group_json("g");
  EXPECT_EQ(g["group"], "g");
  EXPECT_EQ(g["state"], "empty");
  EXPECT_EQ(g["members"], json::array());
  EXPECT_EQ(g["lag"], 2);
  ASSERT_EQ(g["partitions"].size(), 1u) << g.dump();
  EXPECT_EQ(
      g["partitions"][0],
      json(
          {{"topic", "t"}, {"partition", 0}, {"committed", 3}, {"end", 5}, {"lag", 2}, {"member", nullptr}}));

  RunResult r = sluice({"groups", "g"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out,
            "Group: g\nState: empty\nMembers: (none)\n\n"
            "TOPIC  PARTITION  COMMITTED  END  LAG  MEMBER\n"
            "t      0          3          5    2    -\n");

  r = sluice({"groups"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("GROUP  STATE  MEMBERS  LAG\ng      empty  0        2\n"), std::string::npos) << r.out;

  // The group resumes where it committed, with or without --from-beginning.
  t = sluice({"tail", "t", "--group", "g", "--max", "2", "--timeout", "10"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = split_lines(t.out);
  ASSERT_EQ(lines.size(), 2u) << t.out;
  EXPECT_EQ(json::parse(lines[0])["value"], "4");
  EXPECT_EQ(json::parse(lines[1])["value"], "5");
  EXPECT_EQ(group_json("g")["lag"], 0);
}

TEST_F(CliTest, TailWithoutGroupLeavesNamedGroupsAlone) {
  ASSERT_EQ(produce({"t", "--create"}, "1\n2\n").exit_code, 0);
  RunResult t = sluice({"tail", "t", "--from-beginning", "--max", "2"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  // Twice: a throwaway reader does not resume, it starts again from the beginning.
  t = sluice({"tail", "t", "--from-beginning", "--max", "2"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  ASSERT_EQ(split_lines(t.out).size(), 2u) << t.out;
  EXPECT_EQ(json::parse(split_lines(t.out)[0])["offset"], 0);
  // Without --from-beginning it only sees new messages: none arrive, so the timeout ends it.
  t = sluice({"tail", "t", "--timeout", "0.5"});
  EXPECT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(t.out, "");
  EXPECT_LT(t.seconds, 10);
}

TEST_F(CliTest, ReplayToEarliestThenGroupRereads) {
  ASSERT_EQ(produce({"t", "--create"}, "a\nb\nc\n").exit_code, 0);
  RunResult t = sluice({"tail", "t", "--group", "g", "--from-beginning", "--max", "3"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  const std::vector<std::string> first = split_lines(t.out);
  ASSERT_EQ(first.size(), 3u);
  // Nothing left for the group.
  t = sluice({"tail", "t", "--group", "g", "--timeout", "0.5"});
  EXPECT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(t.out, "");

  RunResult r = sluice({"replay", "g", "--topic", "t", "--to", "earliest"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "GROUP  TOPIC  PARTITION  NEW-OFFSET\ng      t      0          0\n");
  t = sluice({"tail", "t", "--group", "g", "--max", "3", "--timeout", "10"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(split_lines(t.out), first);

  r = sluice({"replay", "g", "--topic", "t", "--to", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, R"({"group":"g","topic":"t","partitions":[{"partition":0,"offset":1}]})"
                   "\n");
  t = sluice({"tail", "t", "--group", "g", "--max", "2", "--timeout", "10"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(split_lines(t.out), std::vector<std::string>(first.begin() + 1, first.end()));

  r = sluice({"replay", "g", "--topic", "t", "--to", "latest", "--partition", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["partitions"][0]["offset"], 3);
  EXPECT_EQ(group_json("g")["lag"], 0);
}

TEST_F(CliTest, ReplayToTime) {
  ASSERT_EQ(produce({"t", "--create"}, "old1\nold2\n").exit_code, 0);
  std::this_thread::sleep_for(50ms);
  const int64_t cut = now_ms();
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(produce({"t"}, "new1\nnew2\n").exit_code, 0);

  // The same instant written five ways; each moves the group to the first message after it.
  const std::vector<std::string> forms = {"@" + std::to_string(cut), iso8601(cut, 0), iso8601(cut, 8 * 60),
                                          iso8601(cut, -(5 * 60 + 30)), iso8601(cut, 8 * 60, false)};
  for (const std::string& to : forms) {
    RunResult r = sluice({"replay", "g", "--topic", "t", "--to", to, "--json"});
    ASSERT_EQ(r.exit_code, 0) << to << "\n" << describe(r);
    EXPECT_EQ(r.out, R"({"group":"g","topic":"t","partitions":[{"partition":0,"offset":2}]})"
                     "\n")
        << to;
  }
  RunResult t = sluice({"tail", "t", "--group", "g", "--max", "2", "--timeout", "10"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  std::vector<std::string> lines = split_lines(t.out);
  ASSERT_EQ(lines.size(), 2u) << t.out;
  EXPECT_EQ(json::parse(lines[0])["value"], "new1");
  EXPECT_EQ(json::parse(lines[1])["value"], "new2");

  // A time before everything goes back to the start.
  RunResult r = sluice({"replay", "g", "--topic", "t", "--to", "2001-09-09T01:46:40Z", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["partitions"][0]["offset"], 0);
}

TEST_F(CliTest, BadToValuesAreRefused) {
  ASSERT_EQ(produce({"t", "--create"}, "a\n").exit_code, 0);
  const std::vector<std::string> bad = {
      "yesterday",                  // not a form at all
      "2026-11-21T10:00:00",        // no zone
      "2026-11-21",                 // no time
      "2026-13-01T00:00:00Z",       // no such month
      "2026-02-30T00:00:00Z",       // no such day
      "2026-11-21T24:00:00Z",       // no such hour
      "2026-11-21T10:00:00+25:00",  // no such zone
      "2026-11-21T10:00:00Zjunk",   // trailing text
      "@",                          // no number
      "@abc",                       // not a number
      "@-5",                        // before the epoch
      "-3",                         // a negative offset
      "12abc",                      // not an offset
      "99999999999999999999",       // overflows
      "",                           // empty
  };
  for (const std::string& to : bad) {
    RunResult r = sluice({"replay", "g", "--topic", "t", "--to", to});
    EXPECT_EQ(r.exit_code, 2) << "--to " << to << "\n" << describe(r);
    EXPECT_EQ(r.err.rfind("sluice: bad_input: --to '" + to + "'", 0), 0u) << describe(r);
    EXPECT_EQ(r.out, "");
  }
  // Nothing moved: the group was never created by a refused replay.
  RunResult g = sluice({"groups", "--json"});
  EXPECT_EQ(g.out, "");
}

TEST_F(CliTest, ReplayOfABusyGroupAsksToStopConsumers) {
  ASSERT_EQ(produce({"t", "--create"}, "a\n").exit_code, 0);
  std::atomic<bool> stop{false};
  RunResult tail;
  std::thread consumer([&] {
    RunOptions o;
    o.terminate = &stop;
    tail = sluice({"tail", "t", "--group", "busy", "--from-beginning"}, o);
  });
  // Wait until the tail has joined its group.
  bool active = false;
  for (auto deadline = Clock::now() + 20s; Clock::now() < deadline && !active;) {
    RunResult g = sluice({"groups", "busy", "--json"});
    if (g.exit_code == 0) active = json::parse(g.out, nullptr, false).value("state", "") == "active";
    if (!active) std::this_thread::sleep_for(100ms);
  }
  RunResult r = sluice({"replay", "busy", "--topic", "t", "--to", "earliest"});
  stop = true;
  consumer.join();
  ASSERT_TRUE(active) << "the tail never became an active member";
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_EQ(r.err.rfind("sluice: retriable: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("stop them first"), std::string::npos) << r.err;

  // SIGTERM ends the tail cleanly: exit 0, and what it printed was committed.
  EXPECT_EQ(tail.exit_code, 0) << describe(tail);
  EXPECT_EQ(split_lines(tail.out).size(), 1u) << tail.out;
  json g = group_json("busy");
  EXPECT_EQ(g["state"], "empty");
  EXPECT_EQ(g["partitions"][0]["committed"], 1);
}

TEST_F(CliTest, TailPrintsNewMessagesUntilSigterm) {
  ASSERT_EQ(produce({"t", "--create"}, "before\n").exit_code, 0);
  std::atomic<bool> stop{false};
  RunResult tail;
  std::thread consumer([&] {
    RunOptions o;
    o.terminate = &stop;
    tail = run_sluice({"tail", "t", "--data", dir_}, o);
  });
  // The throwaway group is ephemeral (invisible to `groups`) and starts at the end: keep producing
  // until the tail shows it follows, then check it printed a gap-free run of the new messages
  // that ends with the last one, and nothing from before it started.
  int produced = 0;
  for (auto deadline = Clock::now() + 3s; Clock::now() < deadline; ++produced) {
    RunResult p = produce({"t"}, "after-" + std::to_string(produced) + "\n");
    ASSERT_EQ(p.exit_code, 0) << describe(p);
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(1500ms);
  stop = true;
  consumer.join();
  EXPECT_EQ(tail.exit_code, 0) << describe(tail);
  EXPECT_FALSE(tail.killed_for_timeout);
  std::vector<std::string> lines = split_lines(tail.out);
  ASSERT_FALSE(lines.empty()) << describe(tail);
  int first = -1;
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = json::parse(lines[i], nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << lines[i];
    std::string v = j.value("value", "");
    ASSERT_EQ(v.rfind("after-", 0), 0u) << "printed a message from before the tail started: " << lines[i];
    int k = std::stoi(v.substr(6));
    if (first < 0) first = k;
    EXPECT_EQ(k, first + static_cast<int>(i)) << "gap in the tail's output";
    EXPECT_EQ(j["offset"], k + 1);
  }
  EXPECT_EQ(first + static_cast<int>(lines.size()), produced) << "the last message was not printed";
}

TEST_F(CliTest, ProduceStopsCleanlyOnSigterm) {
  ASSERT_EQ(sluice({"topics", "create", "t"}).exit_code, 0);
  std::atomic<bool> stop{false};
  RunResult p;
  std::thread producer([&] {
    RunOptions o;
    o.stdin_data = "a\nb\n";
    o.keep_stdin_open = true;  // a terminal: no end of input
    o.terminate = &stop;
    p = sluice({"produce", "t"}, o);
  });
  // Wait until both lines are stored, then interrupt while produce waits for more input.
  bool stored = false;
  for (auto deadline = Clock::now() + 20s; Clock::now() < deadline && !stored;) {
    RunResult d = sluice({"topics", "describe", "t", "--json"});
    json j = json::parse(d.out, nullptr, false);
    stored = !j.is_discarded() && j["partition_info"][0]["end"] == 2;
    if (!stored) std::this_thread::sleep_for(50ms);
  }
  stop = true;
  producer.join();
  ASSERT_TRUE(stored);
  EXPECT_FALSE(p.killed_for_timeout);
  EXPECT_EQ(p.exit_code, 1) << describe(p);
  EXPECT_NE(p.err.find("sluice: retriable: interrupted after 2 lines"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("produced 2 messages to t\n"), std::string::npos) << p.err;
}

TEST_F(CliTest, SettingsComeFromFlagThenEnvThenDefault) {
  // $SLUICE_DATA stands in for --data.
  RunOptions env_data;
  env_data.env = {{"SLUICE_DATA", dir_}};
  env_data.stdin_data = "x\n";
  RunResult r = run_sluice({"produce", "envtopic", "--create"}, env_data);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/queue")) << "the default queue is log:<data>/queue";

  // A flag beats the environment.
  RunOptions bogus;
  bogus.env = {{"SLUICE_DATA", dir_ + "/elsewhere"}};
  r = run_sluice({"topics", "--data", dir_}, bogus);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("envtopic"), std::string::npos) << r.out;

  // $SLUICE_QUEUE beats the default made from --data; --queue beats $SLUICE_QUEUE.
  RunOptions env_queue;
  env_queue.env = {{"SLUICE_QUEUE", "log:" + dir_ + "/other"}};
  env_queue.stdin_data = "y\n";
  r = run_sluice({"produce", "othertopic", "--create", "--data", dir_}, env_queue);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = sluice({"topics"});
  EXPECT_EQ(r.out.find("othertopic"), std::string::npos) << r.out;
  r = run_sluice({"topics", "--queue", "log:" + dir_ + "/other"});
  EXPECT_NE(r.out.find("othertopic"), std::string::npos) << r.out;
  env_queue.stdin_data.clear();
  r = run_sluice({"topics", "--queue", "log:" + dir_ + "/queue"}, env_queue);
  EXPECT_NE(r.out.find("envtopic"), std::string::npos) << r.out;

  // The options may also come before the command's name.
  r = run_sluice({"--data", dir_, "topics", "describe", "envtopic", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["partition_info"][0]["end"], 1);
}

}  // namespace
