// The group operations on the `amqp` backend, as a person runs them against a real RabbitMQ:
// produce, tail with a group (a work queue: what one reader acknowledged is gone), groups (queue
// depths and consumer counts), replay to latest (skips what waits); and what RabbitMQ cannot do,
// refused with a message that says so and what to do instead: replay to an earlier position, a
// reader without a group from the beginning, `dlq`. Then the errors a person meets first: nobody
// listening, a wrong password, amqps://.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "support/rabbitmq_server.h"
#include "support/require_server.h"

namespace {

using namespace sluice::test;
using nlohmann::json;

class AmqpCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new sluice::testing::RabbitMqServer();
    start_status_ = server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (sluice::testing::skip_for_missing_server(start_status_)) GTEST_SKIP() << start_status_.to_string();
    ASSERT_TRUE(start_status_.is_ok()) << start_status_.to_string();
    static int n = 0;
    uri_ = server_->uri("prefix=cli" + std::to_string(++n));
  }
  RunResult sluice(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.end(), {"--queue", uri_, "--data", tmp_.path()});
    RunOptions o;
    o.stdin_data = input;
    return run_sluice(args, o);
  }
  std::vector<std::string> values(const RunResult& r) {
    std::vector<std::string> out;
    for (const auto& l : split_lines(r.out)) out.push_back(json::parse(l)["value"].get<std::string>());
    return out;
  }

  static inline sluice::testing::RabbitMqServer* server_ = nullptr;
  static inline sluice::Status start_status_;
  std::string uri_;
  TempDir tmp_{"sluice-amqp-cli"};
};

TEST_F(AmqpCliTest, ProduceTailGroupsAndWhatCannotBeDone) {
  // Sent before any group exists: kept (the topic's unrouted queue), not dropped.
  RunResult p = sluice({"produce", "t", "--create", "--partitions", "1"}, "a\nb\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  RunResult r = sluice({"topics", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(split_lines(r.out).at(0))["name"], "t") << r.out;
  EXPECT_EQ(json::parse(split_lines(r.out).at(0))["partitions"], 1) << r.out;
  // No offsets on RabbitMQ: shown as unknown, not as 0.
  EXPECT_EQ(json::parse(split_lines(r.out).at(0))["partition_info"][0]["end"], nullptr) << r.out;
  r = sluice({"topics", "describe", "t"});
  EXPECT_NE(r.out.find("0          -      -    -"), std::string::npos) << r.out;

  // A group reads them (from the beginning: the unrouted queue), then its own queue gets c, d.
  r = sluice({"tail", "t", "--group", "g", "--from-beginning", "--max", "2", "--timeout", "10"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(values(r), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(sluice({"produce", "t"}, "c\nd\ne\n").exit_code, 0);
  r = sluice({"groups", "g", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json g = json::parse(r.out);
  EXPECT_EQ(g["state"], "empty") << r.out;
  EXPECT_EQ(g["lag"], 3) << r.out;
  EXPECT_EQ(g["partitions"][0]["committed"], nullptr) << r.out;
  r = sluice({"groups"});
  EXPECT_NE(r.out.find("g "), std::string::npos) << describe(r);
  r = sluice({"tail", "t", "--group", "g", "--max", "1", "--timeout", "10"});
  EXPECT_EQ(values(r), std::vector<std::string>{"c"});

  // Replay to the latest position drops what waits; to anything earlier is refused, saying why.
  r = sluice({"replay", "g", "--topic", "t", "--to", "latest"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = sluice({"groups", "g", "--json"});
  EXPECT_EQ(json::parse(r.out)["lag"], 0) << r.out;
  for (const char* to : {"earliest", "0", "2000-01-01T00:00:00Z"}) {
    r = sluice({"replay", "g", "--topic", "t", "--to", to});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.err.find("RabbitMQ deletes a message once a group acknowledged it"), std::string::npos)
        << r.err;
  }
  // A reader without a group has no history to start from.
  r = sluice({"tail", "t", "--from-beginning", "--max", "1", "--timeout", "2"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("RabbitMQ keeps no history"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("--group"), std::string::npos) << r.err;
  // dlq needs offsets: it says so and how to read dead letters instead.
  r = sluice({"dlq", "list"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("sluice tail T.dlq --group"), std::string::npos) << r.err;

  // Bad input: an unknown topic, a partition out of range, an unknown group.
  r = sluice({"produce", "nope"}, "x\n");
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("'nope'"), std::string::npos) << r.err;
  r = sluice({"produce", "t", "--partition", "5"}, "x\n");
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("partition 5"), std::string::npos) << r.err;
  r = sluice({"groups", "nobody"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("'nobody'"), std::string::npos) << r.err;
}

TEST_F(AmqpCliTest, BrokerErrorsAreNamed) {
  // Nobody listens there: retriable, naming the broker.
  RunResult r = run_sluice({"topics", "--queue", "amqp://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("retriable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot reach amqp 127.0.0.1:1/"), std::string::npos) << r.err;
  r = run_sluice({"topics", "--queue", "amqps://127.0.0.1:1"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("TLS"), std::string::npos) << r.err;
  const std::string hostport = "127.0.0.1:" + std::to_string(server_->port());
  r = run_sluice({"topics", "--queue", "amqp://guest:wrong@" + hostport});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("logging in as user 'guest' answered 403 ACCESS_REFUSED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("password"), std::string::npos) << r.err;
  r = run_sluice({"topics", "--queue", "amqp://guest:guest@" + hostport + "/no-such-vhost"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("vhost"), std::string::npos) << r.err;
  r = run_sluice({"topics", "--queue", "amqp://" + hostport + "?queue_type=lazy"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("queue_type"), std::string::npos) << r.err;
  // The password from the environment.
  RunOptions o;
  o.env = {{"SLUICE_AMQP_PASSWORD", "guest"}};
  r = run_sluice({"topics", "--queue", "amqp://guest@" + hostport}, o);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

}  // namespace
