// redis_bench: what sluice's `redis` backend costs over hiredis itself, on one redis-server that
// bench/run_redis_bench.sh starts (and runs redis-benchmark XADD against, for the target). The same
// number of messages is produced and consumed twice per run: by a plain hiredis loop (one
// connection, XADD pipelined `--pipeline` deep; one XREADGROUP COUNT 4096 and one XACK per batch),
// and through sluice's Producer/Consumer interface (its producer keeps the same depth in flight).
// Prints one JSON line per run and a summary with medians and ratios.
//
// Usage: redis_bench --port P [--messages N] [--size BYTES] [--partitions P] [--pipeline D]
//                    [--repeats R]
#include <hiredis/hiredis.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "queue/partitioner.h"
#include "queue/queue.h"

namespace {

using sluice::bench::Clock;
using sluice::bench::key_of;
using sluice::bench::seconds_since;
using json = nlohmann::ordered_json;

struct Options {
  int port = 6379;
  int64_t messages = 200000;
  size_t size = 100;
  int partitions = 4;
  int pipeline = 64;
  int repeats = 3;
};

redisContext* connect(const Options& o) {
  redisContext* c = redisConnect("127.0.0.1", o.port);
  if (c == nullptr || c->err != 0) {
    std::fprintf(stderr, "redis_bench: cannot connect to 127.0.0.1:%d\n", o.port);
    std::exit(1);
  }
  return c;
}

// XADDs to one stream per partition (murmur2 of the key, as sluice places keys), `pipeline` deep.
double plain_produce(const Options& o, const std::string& prefix) {
  redisContext* c = connect(o);
  std::string value(o.size, 'x');
  std::vector<std::string> streams;
  for (int p = 0; p < o.partitions; ++p) streams.push_back(prefix + ":" + std::to_string(p));
  auto t0 = Clock::now();
  int64_t sent = 0, answered = 0;
  while (answered < o.messages) {
    while (sent < o.messages && sent - answered < o.pipeline) {
      std::string key = key_of(sent);
      const std::string& s =
          streams[static_cast<size_t>(sluice::queue::partition_for_key(key, o.partitions).value())];
      const char* argv[] = {"XADD", s.c_str(), "*", "k", key.c_str(), "v", value.c_str()};
      size_t lens[] = {4, s.size(), 1, 1, key.size(), 1, value.size()};
      redisAppendCommandArgv(c, 7, argv, lens);
      ++sent;
    }
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) {
      std::fprintf(stderr, "redis_bench: plain produce: %s\n", c->errstr);
      std::exit(1);
    }
    freeReplyObject(r);
    ++answered;
  }
  double secs = seconds_since(t0);
  redisFree(c);
  return o.messages / secs;
}

double plain_consume(const Options& o, const std::string& prefix) {
  redisContext* c = connect(o);
  std::vector<std::string> streams;
  for (int p = 0; p < o.partitions; ++p) {
    streams.push_back(prefix + ":" + std::to_string(p));
    freeReplyObject(redisCommand(c, "XGROUP CREATE %s g 0", streams.back().c_str()));
  }
  int64_t got = 0;
  auto t0 = Clock::now();
  while (got < o.messages) {
    std::vector<const char*> argv = {"XREADGROUP", "GROUP", "g", "me", "COUNT", "4096", "STREAMS"};
    for (const auto& s : streams) argv.push_back(s.c_str());
    for (size_t i = 0; i < streams.size(); ++i) argv.push_back(">");
    auto* r =
        static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), nullptr));
    if (r == nullptr) {
      std::fprintf(stderr, "redis_bench: plain consume: %s\n", c->errstr);
      std::exit(1);
    }
    if (r->type == REDIS_REPLY_ARRAY) {
      for (size_t s = 0; s < r->elements; ++s) {
        redisReply* entries = r->element[s]->element[1];
        if (entries->elements == 0) continue;
        std::vector<const char*> ack = {"XACK", r->element[s]->element[0]->str, "g"};
        for (size_t e = 0; e < entries->elements; ++e) ack.push_back(entries->element[e]->element[0]->str);
        freeReplyObject(redisCommandArgv(c, static_cast<int>(ack.size()), ack.data(), nullptr));
        got += static_cast<int64_t>(entries->elements);
      }
    }
    freeReplyObject(r);
  }
  double secs = seconds_since(t0);
  redisFree(c);
  return got / secs;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"redis_bench: sluice's redis backend beside a plain hiredis loop on one redis-server"};
  app.add_option("--port", o.port, "The redis-server's port on 127.0.0.1")->required();
  app.add_option("--messages", o.messages, "Messages per run");
  app.add_option("--size", o.size, "Value bytes");
  app.add_option("--partitions", o.partitions, "Partitions of the topic");
  app.add_option("--pipeline", o.pipeline, "Commands in flight (both sides)");
  app.add_option("--repeats", o.repeats, "Runs (medians are reported)");
  CLI11_PARSE(app, argc, argv);

  std::vector<json> runs;
  for (int r = 0; r < o.repeats; ++r) {
    const std::string prefix = "bench" + std::to_string(r);
    auto q = sluice::queue::open_queue("redis://127.0.0.1:" + std::to_string(o.port) + "?prefix=" + prefix +
                                       "&pipeline=" + std::to_string(o.pipeline));
    if (!q.is_ok()) {
      std::fprintf(stderr, "redis_bench: %s\n", q.status().to_string().c_str());
      return 1;
    }
    sluice::queue::TopicConfig cfg;
    cfg.partitions = o.partitions;
    if (auto st = (*q)->admin().create_topic("t", cfg); !st.is_ok()) {
      std::fprintf(stderr, "redis_bench: %s\n", st.to_string().c_str());
      return 1;
    }
    json run = {{"type", "run"}, {"run", r + 1}, {"messages", o.messages}, {"value_bytes", o.size}};
    run["plain_produce_msgs_s"] = plain_produce(o, "plain" + std::to_string(r));
    run["sluice_produce_msgs_s"] = sluice::bench::sluice_produce(**q, "t", o.messages, o.size, "redis_bench");
    run["plain_consume_msgs_s"] = plain_consume(o, "plain" + std::to_string(r));
    run["sluice_consume_msgs_s"] =
        sluice::bench::sluice_consume(**q, "t", "g" + std::to_string(r), o.messages, "redis_bench");
    std::printf("%s\n", run.dump().c_str());
    std::fflush(stdout);
    runs.push_back(run);
    redisContext* c = connect(o);
    freeReplyObject(redisCommand(c, "FLUSHALL"));  // the next run starts on an empty server
    redisFree(c);
  }
  json summary = sluice::bench::queue_summary(runs, {{"messages", o.messages},
                                                     {"value_bytes", o.size},
                                                     {"partitions", o.partitions},
                                                     {"pipeline", o.pipeline},
                                                     {"repeats", o.repeats}});
  const json& med = summary["median"];
  const double pp = med.value("plain_produce_msgs_s", 0.0), sp = med.value("sluice_produce_msgs_s", 0.0);
  const double pc = med.value("plain_consume_msgs_s", 0.0), sc = med.value("sluice_consume_msgs_s", 0.0);
  std::printf("%s\n", summary.dump().c_str());
  std::fprintf(stderr,
               "redis_bench: produce plain %.0f msgs/s, sluice %.0f (%.2fx); consume plain %.0f, sluice %.0f "
               "(%.2fx); %lld x %zu B, %d partitions, pipeline %d, medians of %d\n",
               pp, sp, summary["ratio_produce_vs_plain"].get<double>(), pc, sc,
               summary["ratio_consume_vs_plain"].get<double>(), static_cast<long long>(o.messages), o.size,
               o.partitions, o.pipeline, o.repeats);
  return 0;
}
