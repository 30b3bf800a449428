// sluice-kafka-mock: librdkafka's mock cluster as a program, so Kafka mode can be tried (and
// failures injected by hand or by a script) without a Kafka cluster. It starts N brokers on
// loopback, prints their bootstrap servers as its first line, then reads one command per line on
// stdin and answers "ok" or "error: ..." per command, until SIGINT, SIGTERM or end of input.
//
// The mock is librdkafka's test cluster: data lives in memory only and dies with the program, and
// librdkafka 2.0.2's mock does not answer CreateTopics, ListGroups or DescribeGroups (create
// topics here with `create-topic` or --topic; see docs/kafka.md).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/stages.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

constexpr const char* kHelp =
    R"(usage: sluice-kafka-mock [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]... [--pipeline-topics P[:R]] [--json]

Starts librdkafka's in-memory mock Kafka cluster on 127.0.0.1 and prints its bootstrap servers as
the first line of output (with --json: {"bootstrap_servers": "..."}). Use them as
  sluice ... --queue kafka://<bootstrap servers>
Runs until SIGINT/SIGTERM or the end of standard input. Data is kept in memory only.

Options:
  --brokers N                     number of brokers (default 3)
  --topic NAME:PARTITIONS[:REPL]  create a topic at start (repeatable; replication default 1)
  --pipeline-topics PARTITIONS[:REPL]
                                 create every topic sluice's pipeline uses (doc_upload ...
                                 doc_results, the stages' .retry and .dlq, the dlq ledger)
  --json                          print the first line as JSON
  --help                          this text

Commands on standard input, one per line; each is answered "ok" or "error: <why>":
  create-topic TOPIC PARTITIONS [REPLICATION]   create a topic (the mock has no CreateTopics)
  broker-down ID                                a broker stops answering (IDs are 1..N)
  broker-up ID                                  it comes back
  leader TOPIC PARTITION BROKER                 move a partition's leader (-1: none)
  errors APIKEY ERRCODE COUNT                   the next COUNT requests of APIKEY fail with ERRCODE;
                                                APIKEY is a number or a name (Produce, Fetch,
                                                OffsetCommit, JoinGroup, Heartbeat, Metadata...),
                                                ERRCODE a number or a name (NOT_LEADER_FOR_PARTITION,
                                                REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE...).
                                                The mock does not check idempotent sequences: a
                                                Produce error loses the batch when a later request
                                                to the partition was already in flight, so give
                                                producers max.in.flight.requests.per.connection=1
  rtt ID MILLISECONDS                           add latency to a broker's answers
  help                                          list the commands
  quit                                          stop
)";

// Kafka protocol API keys by name (the ones worth failing on purpose).
int api_key(const std::string& s) {
  static const std::pair<const char*, int> kKeys[] = {
      {"Produce", 0},      {"Fetch", 1},        {"ListOffsets", 2},      {"Metadata", 3},
      {"OffsetCommit", 8}, {"OffsetFetch", 9},  {"FindCoordinator", 10}, {"JoinGroup", 11},
      {"Heartbeat", 12},   {"LeaveGroup", 13},  {"SyncGroup", 14},       {"DescribeGroups", 15},
      {"ListGroups", 16},  {"ApiVersions", 18}, {"CreateTopics", 19},    {"InitProducerId", 22},
  };
  for (const auto& [name, key] : kKeys)
    if (strcasecmp(name, s.c_str()) == 0) return key;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  return end != s.c_str() && *end == '\0' && v >= 0 ? static_cast<int>(v) : -1;
}

// An rd_kafka_resp_err_t by number or by name (with or without RD_KAFKA_RESP_ERR_).
bool error_code(std::string s, rd_kafka_resp_err_t* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (end != s.c_str() && *end == '\0') {
    *out = static_cast<rd_kafka_resp_err_t>(v);
    return true;
  }
  if (s.rfind("RD_KAFKA_RESP_ERR_", 0) == 0) s = s.substr(18);
  const rd_kafka_err_desc* descs = nullptr;
  size_t n = 0;
  rd_kafka_get_err_descs(&descs, &n);
  for (size_t i = 0; i < n; ++i) {
    if (descs[i].name != nullptr && strcasecmp(descs[i].name, s.c_str()) == 0) {
      *out = descs[i].code;
      return true;
    }
  }
  return false;
}

bool parse_int(const std::string& s, long* out) {
  char* end = nullptr;
  *out = std::strtol(s.c_str(), &end, 10);
  return !s.empty() && end != s.c_str() && *end == '\0';
}

std::string create_topic(rd_kafka_mock_cluster_t* mc, const std::string& name, long partitions, long repl,
                         int brokers) {
  if (name.empty() || partitions < 1 || partitions > 10000) return "error: partitions must be 1..10000";
  if (repl < 1 || repl > brokers) return "error: replication must be 1.." + std::to_string(brokers);
  rd_kafka_resp_err_t e =
      rd_kafka_mock_topic_create(mc, name.c_str(), static_cast<int>(partitions), static_cast<int>(repl));
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : std::string("error: ") + rd_kafka_err2str(e);
}

std::string run(rd_kafka_mock_cluster_t* mc, int brokers, const std::string& line, bool* quit) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  if (w.empty()) return "";
  const std::string& cmd = w[0];
  long a = 0;
  long b = 0;
  long c = 0;
  auto status = [](rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? std::string("ok") : std::string("error: ") + rd_kafka_err2str(e);
  };
  if (cmd == "quit" || cmd == "exit") {
    *quit = true;
    return "ok";
  }
  if (cmd == "help") return std::string(kHelp) + "ok";
  if (cmd == "create-topic" && (w.size() == 3 || w.size() == 4) && parse_int(w[2], &a)) {
    if (w.size() == 4 && !parse_int(w[3], &b)) return "error: REPLICATION must be a number";
    return create_topic(mc, w[1], a, w.size() == 4 ? b : 1, brokers);
  }
  if ((cmd == "broker-down" || cmd == "broker-up") && w.size() == 2 && parse_int(w[1], &a)) {
    if (a < 1 || a > brokers) return "error: broker IDs are 1.." + std::to_string(brokers);
    return status(cmd == "broker-down" ? rd_kafka_mock_broker_set_down(mc, static_cast<int32_t>(a))
                                       : rd_kafka_mock_broker_set_up(mc, static_cast<int32_t>(a)));
  }
  if (cmd == "leader" && w.size() == 4 && parse_int(w[2], &a) && parse_int(w[3], &b)) {
    return status(rd_kafka_mock_partition_set_leader(mc, w[1].c_str(), static_cast<int32_t>(a),
                                                     static_cast<int32_t>(b)));
  }
  if (cmd == "errors" && w.size() == 4 && parse_int(w[3], &c)) {
    int key = api_key(w[1]);
    if (key < 0) return "error: unknown API key '" + w[1] + "'";
    rd_kafka_resp_err_t code;
    if (!error_code(w[2], &code)) return "error: unknown error code '" + w[2] + "'";
    if (c < 1) return "error: COUNT must be at least 1";
    std::vector<rd_kafka_resp_err_t> errs(static_cast<size_t>(c), code);
    rd_kafka_mock_push_request_errors_array(mc, static_cast<int16_t>(key), errs.size(), errs.data());
    return "ok";
  }
  if (cmd == "rtt" && w.size() == 3 && parse_int(w[1], &a) && parse_int(w[2], &b)) {
    return status(rd_kafka_mock_broker_set_rtt(mc, static_cast<int32_t>(a), static_cast<int>(b)));
  }
  return "error: cannot read '" + line + "' (type help)";
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  bool json = false;
  std::vector<std::string> topics;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (arg == "--json") {
      json = true;
    } else if (arg == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
      if (brokers < 1 || brokers > 32) {
        std::fprintf(stderr, "sluice-kafka-mock: --brokers takes 1..32\n");
        return 2;
      }
    } else if (arg == "--topic" && i + 1 < argc) {
      topics.push_back(argv[++i]);
    } else if (arg == "--pipeline-topics" && i + 1 < argc) {
      const std::string spec = std::string(":") + argv[++i];
      for (const auto& name : sluice::pipeline::pipeline_topic_names()) topics.push_back(name + spec);
    } else {
      std::fprintf(stderr, "sluice-kafka-mock: unknown argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
  }

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);  // errors only: the mock is chatty
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::fprintf(stderr, "sluice-kafka-mock: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::fprintf(stderr, "sluice-kafka-mock: the mock cluster did not start (see the log above)\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const auto& t : topics) {
    // NAME:PARTITIONS[:REPLICATION]; the name itself has no ':' (Kafka forbids it).
    std::string name = t.substr(0, t.find(':'));
    long parts = 1;
    long repl = 1;
    std::sscanf(t.c_str() + name.size(), ":%ld:%ld", &parts, &repl);
    std::string r = create_topic(mc, name, parts, repl, brokers);
    if (r != "ok") {
      std::fprintf(stderr, "sluice-kafka-mock: --topic %s: %s\n", t.c_str(), r.c_str());
      rd_kafka_mock_cluster_destroy(mc);
      rd_kafka_destroy(rk);
      return 2;
    }
  }

  const char* bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  if (json) {
    std::printf("{\"bootstrap_servers\": \"%s\", \"brokers\": %d}\n", bootstrap, brokers);
  } else {
    std::printf("%s\n", bootstrap);
  }
  std::fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // stdin is polled so a signal ends the program even while nobody types.
  std::string buffer;
  bool quit = false;
  while (!g_stop && !quit) {
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    int n = ::poll(&pfd, 1, 200);
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
    if (got <= 0) break;  // end of input
    buffer.append(chunk, static_cast<size_t>(got));
    for (size_t nl; !quit && (nl = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string reply = run(mc, brokers, line, &quit);
      if (!reply.empty()) {
        std::printf("%s\n", reply.c_str());
        std::fflush(stdout);
      }
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
