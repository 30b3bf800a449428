// kafka_bench: what sluice's `kafka` backend costs over librdkafka itself. On one 3-broker mock
// cluster (librdkafka's rdkafka_mock, in this process), the same messages are produced and
// consumed twice: by a plain librdkafka loop configured as sluice configures it (acks=all,
// idempotence, lz4, murmur2 keys; manual commits), and through sluice's Producer/Consumer
// interface. Prints one JSON line per run and a summary line with medians and the ratios.
//
// Usage: kafka_bench [--messages N] [--size BYTES] [--partitions P] [--repeats R]
//                    [--only produce|consume]
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "queue/queue.h"

namespace {

using sluice::bench::Clock;
using sluice::bench::seconds_since;
using json = nlohmann::ordered_json;

struct Options {
  int64_t messages = 200000;
  size_t size = 100;
  int partitions = 4;
  int repeats = 3;
  std::string only;  // "produce" or "consume" (which still produces its input first): for profiling
};

// Both consumers prefetch up to this many messages. With librdkafka 2.0.2's default (100,000), a
// consumer whose queue reaches it is not fetched for again until its broker thread's next wakeup,
// up to a second later, however fast the queue drains: that pause, not the loop, would decide the
// figure of both sides (measured: ~200k msgs/s for both with it, 0.1 s runs without).
constexpr const char* kQueuedMinMessages = "1000000";

using sluice::bench::key_of;

rd_kafka_conf_t* base_conf(const std::string& bootstrap) {
  char err[512];
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
  return c;
}

// The plain loop: a librdkafka producer set up as sluice sets up its own.
double plain_produce(const std::string& bootstrap, const std::string& topic, const Options& o) {
  char err[512];
  rd_kafka_conf_t* c = base_conf(bootstrap);
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{{"enable.idempotence", "true"},
                                                                      {"acks", "all"},
                                                                      {"compression.type", "lz4"},
                                                                      {"linger.ms", "5"},
                                                                      {"partitioner", "murmur2_random"}}) {
    rd_kafka_conf_set(c, k, v, err, sizeof err);
  }
  static std::atomic<int64_t> failed{0};
  rd_kafka_conf_set_dr_msg_cb(c, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err) ++failed;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  std::string value(o.size, 'x');
  auto t0 = Clock::now();
  for (int64_t i = 0; i < o.messages; ++i) {
    std::string key = key_of(i);
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                             RD_KAFKA_V_VALUE(value.data(), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  double secs = seconds_since(t0);
  rd_kafka_destroy(rk);
  if (failed.exchange(0) != 0) std::fprintf(stderr, "kafka_bench: plain producer had delivery failures\n");
  return o.messages / secs;
}

// The plain loops: a consumer in a new group reading everything, committing synchronously every
// 10,000 messages and at the end (sluice commits the acked prefix on an interval). `batched`: the
// messages are taken in batches of what is there (rd_kafka_consume_batch_queue, one lock of the
// queue per batch, as sluice's consumer takes them), waiting with consumer_poll only when nothing
// is; otherwise one rd_kafka_consumer_poll per message, the loop librdkafka's examples show.
double plain_consume(const std::string& bootstrap, const std::string& topic, const std::string& group,
                     const Options& o, bool batched) {
  char err[512];
  rd_kafka_conf_t* c = base_conf(bootstrap);
  rd_kafka_conf_set(c, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_conf_set(c, "queued.min.messages", kQueuedMinMessages, err, sizeof err);
  rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_conf_set(c, "partition.assignment.strategy", "cooperative-sticky", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> batch(256);
  int64_t got = 0;
  Clock::time_point t0;
  bool started = false;
  while (got < o.messages) {
    ssize_t n = batched ? rd_kafka_consume_batch_queue(queue, 0, batch.data(), batch.size()) : 0;
    if (n <= 0) {
      batch[0] = rd_kafka_consumer_poll(rk, 100);
      n = batch[0] != nullptr ? 1 : 0;
    }
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[static_cast<size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!started) {  // time from the first message: the group join is the cluster's, not the loop's
          t0 = Clock::now();
          started = true;
        }
        ++got;
        if (got % 10000 == 0) rd_kafka_commit_message(rk, m, 0);
      }
      rd_kafka_message_destroy(m);
    }
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_commit(rk, nullptr, 0);
  double secs = seconds_since(t0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got / secs;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"kafka_bench: sluice's kafka backend beside a plain librdkafka loop on one mock cluster"};
  app.add_option("--messages", o.messages, "Messages per run");
  app.add_option("--size", o.size, "Value bytes");
  app.add_option("--partitions", o.partitions, "Partitions of the topic");
  app.add_option("--repeats", o.repeats, "Runs (medians are reported)");
  app.add_option("--only", o.only, "Time only one path, sluice's and the plain loop's (for profiling)")
      ->check(CLI::IsMember({"produce", "consume"}));
  CLI11_PARSE(app, argc, argv);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_t* dummy = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(dummy, 3);
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

  std::vector<json> runs;
  for (int r = 0; r < o.repeats; ++r) {
    const std::string plain_topic = "plain-" + std::to_string(r), sl_topic = "sluice-" + std::to_string(r);
    rd_kafka_mock_topic_create(mc, plain_topic.c_str(), o.partitions, 3);
    rd_kafka_mock_topic_create(mc, sl_topic.c_str(), o.partitions, 3);
    auto q = sluice::queue::open_queue("kafka://" + bootstrap + "?queued.min.messages=" + kQueuedMinMessages);
    if (!q.is_ok()) {
      std::fprintf(stderr, "kafka_bench: %s\n", q.status().to_string().c_str());
      return 1;
    }
    json run = {{"type", "run"}, {"run", r + 1}, {"messages", o.messages}, {"value_bytes", o.size}};
    run["plain_produce_msgs_s"] = plain_produce(bootstrap, plain_topic, o);
    run["sluice_produce_msgs_s"] =
        sluice::bench::sluice_produce(**q, sl_topic, o.messages, o.size, "kafka_bench");
    if (o.only != "produce") {
      run["plain_consume_msgs_s"] =
          plain_consume(bootstrap, plain_topic, "plain-g" + std::to_string(r), o, true);
      run["plain_poll_consume_msgs_s"] =
          plain_consume(bootstrap, plain_topic, "plain-poll-g" + std::to_string(r), o, false);
      // The same topic as the plain loop's: the consumers' figures then differ only by the consumer.
      run["sluice_consume_msgs_s"] = sluice::bench::sluice_consume(
          **q, plain_topic, "sluice-g" + std::to_string(r), o.messages, "kafka_bench");
    }
    std::printf("%s\n", run.dump().c_str());
    std::fflush(stdout);
    runs.push_back(run);
  }
  json summary = sluice::bench::queue_summary(
      runs,
      {{"cluster", "librdkafka " + std::string(rd_kafka_version_str()) + " mock, 3 brokers, in process"},
       {"messages", o.messages},
       {"value_bytes", o.size},
       {"partitions", o.partitions},
       {"repeats", o.repeats}});
  const json& med = summary["median"];
  const double pp = med.value("plain_produce_msgs_s", 0.0), sp = med.value("sluice_produce_msgs_s", 0.0);
  const double pc = med.value("plain_consume_msgs_s", 0.0), sc = med.value("sluice_consume_msgs_s", 0.0);
  const double ppc = med.value("plain_poll_consume_msgs_s", 0.0);
  summary["ratio_consume_vs_poll_loop"] = ppc > 0 ? sc / ppc : 0;
  summary["targets"] = {
      {{"name", "produce_vs_plain"},
       {"target", ">= 0.8"},
       {"measured", summary["ratio_produce_vs_plain"]},
       {"status", summary["ratio_produce_vs_plain"].get<double>() >= 0.8 ? "met" : "missed"}},
      {{"name", "consume_vs_plain"},
       {"target", ">= 0.8"},
       {"measured", summary["ratio_consume_vs_plain"]},
       {"status", summary["ratio_consume_vs_plain"].get<double>() >= 0.8 ? "met" : "missed"}}};
  std::printf("%s\n", summary.dump().c_str());
  std::fprintf(
      stderr,
      "kafka_bench: produce plain %.0f msgs/s, sluice %.0f (%.2fx); consume plain batched %.0f, "
      "plain poll loop %.0f, sluice %.0f (%.2fx, %.2fx); %lld x %zu B, %d partitions, medians of %d\n",
      pp, sp, summary["ratio_produce_vs_plain"].get<double>(), pc, ppc, sc,
      summary["ratio_consume_vs_plain"].get<double>(), summary["ratio_consume_vs_poll_loop"].get<double>(),
      static_cast<long long>(o.messages), o.size, o.partitions, o.repeats);
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(dummy);
  return 0;
}
