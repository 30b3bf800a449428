// amqp_bench: what sluice's `amqp` backend costs over librabbitmq itself, on one RabbitMQ broker
// it starts (Debian's rabbitmq-server on free loopback ports, tests/support/rabbitmq_server.h) or
// one given with --uri. The same number of messages is produced and consumed twice per run, both
// durable and confirmed:
//   plain:  one connection, a channel in confirm mode, persistent publishes to one durable queue
//           per partition (the key's murmur2 picks it, as sluice places keys) with `--window`
//           unconfirmed at most; then basic.consume of every queue, prefetch `--prefetch`, one
//           basic.ack per message;
//   sluice: Producer (its confirm window the same) and a Consumer of a group declared before the
//           produce, acking each message.
// With --corpus DIR --sluice BIN it then runs the pipeline end to end, `sluice ingest DIR` with the
// stages in-process, on `--queue amqp://` (that broker) and on the embedded log, same workers.
// Prints one JSON line per run and a summary with medians, ratios and the target
// (RabbitMQ with publisher confirms >= 20k msgs/s).
//
// Usage: amqp_bench [--port P] [--messages N] [--size BYTES] [--partitions P] [--window W]
//                   [--prefetch N] [--repeats R] [--corpus DIR --sluice BIN --work DIR]
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bench_util.h"
#include "queue/partitioner.h"
#include "queue/queue.h"
#include "support/rabbitmq_server.h"

namespace {

using sluice::bench::Clock;
using sluice::bench::key_of;
using sluice::bench::seconds_since;
using json = nlohmann::ordered_json;

struct Options {
  std::string uri;
  int port = 0;
  int64_t messages = 200000;
  size_t size = 100;
  int partitions = 4;
  int window = 1024;
  int prefetch = 256;
  int repeats = 3;
  std::string corpus, sluice, work = ".";
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "amqp_bench: plain loop: %s\n", what);
  std::exit(1);
}

void check(amqp_rpc_reply_t r, const char* what) {
  if (r.reply_type != AMQP_RESPONSE_NORMAL) die(what);
}

amqp_connection_state_t connect(const Options& o) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(c);
  if (amqp_socket_open(s, "127.0.0.1", o.port) != AMQP_STATUS_OK) die("cannot connect");
  check(amqp_login(c, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 60, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
        "login");
  amqp_channel_open(c, 1);
  check(amqp_get_rpc_reply(c), "channel.open");
  return c;
}

void close(amqp_connection_state_t c) {
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

std::vector<std::string> plain_queues(const Options& o, const std::string& prefix) {
  std::vector<std::string> out;
  for (int p = 0; p < o.partitions; ++p) out.push_back(prefix + "." + std::to_string(p));
  return out;
}

double plain_produce(const Options& o, const std::string& prefix) {
  amqp_connection_state_t c = connect(o);
  const auto queues = plain_queues(o, prefix);
  for (const auto& q : queues) {
    // The same arguments as sluice's classic group queues (queue/amqp/amqp_client.cc).
    amqp_table_entry_t arg;
    arg.key = amqp_cstring_bytes("x-queue-version");
    arg.value.kind = AMQP_FIELD_KIND_I64;
    arg.value.value.i64 = 2;
    amqp_table_t args{1, &arg};
    amqp_queue_declare(c, 1, amqp_cstring_bytes(q.c_str()), 0, 1, 0, 0, args);
    check(amqp_get_rpc_reply(c), "queue.declare");
  }
  amqp_confirm_select(c, 1);
  check(amqp_get_rpc_reply(c), "confirm.select");
  const std::string value(o.size, 'x');
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;
  uint64_t sent = 0, confirmed = 0;
  std::set<uint64_t> unconfirmed;  // publish sequence numbers (1, 2, ...); acks may come out of order
  auto t0 = Clock::now();
  while (confirmed < static_cast<uint64_t>(o.messages)) {
    while (sent < static_cast<uint64_t>(o.messages) && sent - confirmed < static_cast<uint64_t>(o.window)) {
      const std::string key = key_of(static_cast<int64_t>(sent));
      const std::string& q =
          queues[static_cast<size_t>(sluice::queue::partition_for_key(key, o.partitions).value())];
      amqp_bytes_t body{value.size(), const_cast<char*>(value.data())};
      if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q.c_str()), 0, 0, &props, body) !=
          AMQP_STATUS_OK)
        die("publish");
      unconfirmed.insert(++sent);
    }
    amqp_frame_t f;
    if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) die("waiting for confirms");
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      auto end = a->multiple ? unconfirmed.upper_bound(a->delivery_tag) : unconfirmed.find(a->delivery_tag);
      auto begin = a->multiple ? unconfirmed.begin() : end;
      if (!a->multiple && end != unconfirmed.end()) ++end;
      confirmed += static_cast<uint64_t>(std::distance(begin, end));
      unconfirmed.erase(begin, end);
    } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      die("the broker nacked a publish");
    }
    amqp_maybe_release_buffers(c);
  }
  double secs = seconds_since(t0);
  close(c);
  return o.messages / secs;
}

double plain_consume(const Options& o, const std::string& prefix) {
  amqp_connection_state_t c = connect(o);
  amqp_basic_qos(c, 1, 0, static_cast<uint16_t>(o.prefetch), 1);
  check(amqp_get_rpc_reply(c), "basic.qos");
  for (const auto& q : plain_queues(o, prefix)) {
    amqp_basic_consume(c, 1, amqp_cstring_bytes(q.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "basic.consume");
  }
  int64_t got = 0;
  auto t0 = Clock::now();
  while (got < o.messages) {
    amqp_maybe_release_buffers(c);
    amqp_envelope_t e;
    check(amqp_consume_message(c, &e, nullptr, 0), "consume");
    if (amqp_basic_ack(c, 1, e.delivery_tag, 0) != AMQP_STATUS_OK) die("ack");
    amqp_destroy_envelope(&e);
    ++got;
  }
  double secs = seconds_since(t0);
  close(c);
  return got / secs;
}

// One fresh `sluice ingest` of the corpus; its summary line (seconds, ok, failed), or null.
json ingest(const Options& o, const std::string& queue) {
  const std::string data = o.work + "/amqp-bench-data";
  sluice::bench::remove_tree(data);
  std::string cmd = "'" + o.sluice + "' ingest '" + o.corpus + "' --include '*.html' --data '" + data +
                    "' --workers 2 --pool 2 --progress none --json";
  if (!queue.empty()) cmd += " --queue '" + queue + "'";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return nullptr;
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
  ::pclose(f);
  sluice::bench::remove_tree(data);
  const size_t end = out.find_last_not_of('\n');
  if (end != std::string::npos) {
    const size_t start = out.rfind('\n', end);
    last = out.substr(start == std::string::npos ? 0 : start + 1,
                      end + 1 - (start == std::string::npos ? 0 : start + 1));
  }
  auto j = json::parse(last, nullptr, false);
  if (!j.is_object()) {
    std::fprintf(stderr, "amqp_bench: ingest printed no summary: %s\n", out.substr(0, 500).c_str());
    return nullptr;
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"amqp_bench: sluice's amqp backend beside a plain librabbitmq loop on one RabbitMQ broker"};
  app.add_option("--port", o.port, "A broker's AMQP port on 127.0.0.1 (guest/guest); default: start one");
  app.add_option("--messages", o.messages, "Messages per run");
  app.add_option("--size", o.size, "Value bytes");
  app.add_option("--partitions", o.partitions, "Partitions of the topic");
  app.add_option("--window", o.window, "Unconfirmed publishes in flight (both sides)");
  app.add_option("--prefetch", o.prefetch, "Unacknowledged deliveries a consumer holds (both sides)");
  app.add_option("--repeats", o.repeats, "Runs (medians are reported)");
  app.add_option("--corpus", o.corpus, "Also run `sluice ingest` of this folder's HTML on amqp and on log");
  app.add_option("--sluice", o.sluice, "The sluice binary (with --corpus)");
  app.add_option("--work", o.work, "Where the ingest runs keep their data (with --corpus)");
  CLI11_PARSE(app, argc, argv);
  if (!o.corpus.empty() && o.sluice.empty()) {
    std::fprintf(stderr, "amqp_bench: --corpus needs --sluice\n");
    return 2;
  }

  sluice::testing::RabbitMqServer server;
  if (o.port == 0) {
    auto t0 = Clock::now();
    sluice::Status st = server.start();
    if (!st.is_ok()) {
      std::fprintf(stderr, "amqp_bench: %s\n", st.to_string().c_str());
      return 1;
    }
    o.port = server.port();
    std::fprintf(stderr, "amqp_bench: started rabbitmq-server on port %d in %.1f s\n", o.port,
                 seconds_since(t0));
  }

  std::vector<json> runs;
  for (int r = 0; r < o.repeats; ++r) {
    const std::string prefix = "bench" + std::to_string(r);
    auto q = sluice::queue::open_queue("amqp://guest:guest@127.0.0.1:" + std::to_string(o.port) +
                                       "?prefix=" + prefix + "&confirm_window=" + std::to_string(o.window) +
                                       "&prefetch=" + std::to_string(o.prefetch));
    if (!q.is_ok()) {
      std::fprintf(stderr, "amqp_bench: %s\n", q.status().to_string().c_str());
      return 1;
    }
    sluice::queue::TopicConfig cfg;
    cfg.partitions = o.partitions;
    const std::string topics[] = {"t"};
    const std::string group = "g";
    if (auto st = (*q)->admin().create_topic("t", cfg); !st.is_ok()) {
      std::fprintf(stderr, "amqp_bench: %s\n", st.to_string().c_str());
      return 1;
    }
    if (auto st = (*q)->admin().declare_group(group, topics); !st.is_ok()) {
      std::fprintf(stderr, "amqp_bench: %s\n", st.to_string().c_str());
      return 1;
    }
    json run = {{"type", "run"}, {"run", r + 1}, {"messages", o.messages}, {"value_bytes", o.size}};
    run["plain_produce_msgs_s"] = plain_produce(o, "plain" + std::to_string(r));
    run["sluice_produce_msgs_s"] = sluice::bench::sluice_produce(**q, "t", o.messages, o.size, "amqp_bench");
    run["plain_consume_msgs_s"] = plain_consume(o, "plain" + std::to_string(r));
    run["sluice_consume_msgs_s"] = sluice::bench::sluice_consume(**q, "t", group, o.messages, "amqp_bench");
    std::printf("%s\n", run.dump().c_str());
    std::fflush(stdout);
    runs.push_back(run);
  }
  json summary = sluice::bench::queue_summary(runs, {{"messages", o.messages},
                                                     {"value_bytes", o.size},
                                                     {"partitions", o.partitions},
                                                     {"window", o.window},
                                                     {"prefetch", o.prefetch},
                                                     {"repeats", o.repeats}});
  const json& med = summary["median"];
  const double pp = med.value("plain_produce_msgs_s", 0.0), sp = med.value("sluice_produce_msgs_s", 0.0);
  const double pc = med.value("plain_consume_msgs_s", 0.0), sc = med.value("sluice_consume_msgs_s", 0.0);
  if (!o.corpus.empty()) {
    std::vector<double> log_s, amqp_s;
    bool complete = true;
    int64_t documents = 0;
    for (int r = 0; r < o.repeats; ++r) {
      json l = ingest(o, "");
      json a = ingest(
          o, "amqp://guest:guest@127.0.0.1:" + std::to_string(o.port) + "?prefix=pipe" + std::to_string(r));
      if (l.is_null() || a.is_null()) return 1;
      documents = l.value("ok", int64_t{0});
      complete = complete && a.value("ok", int64_t{-1}) == documents && a.value("failed", int64_t{-1}) == 0;
      log_s.push_back(l.value("seconds", 0.0));
      amqp_s.push_back(a.value("seconds", 0.0));
      std::printf("%s\n", json({{"type", "pipeline_run"},
                                {"run", r + 1},
                                {"documents", documents},
                                {"amqp_documents", a.value("ok", int64_t{0})},
                                {"amqp_failed", a.value("failed", int64_t{0})},
                                {"log_s", log_s.back()},
                                {"amqp_s", amqp_s.back()}})
                              .dump()
                              .c_str());
      std::fflush(stdout);
    }
    const double lm = sluice::bench::median(log_s), am = sluice::bench::median(amqp_s);
    summary["pipeline"] = {{"corpus", o.corpus},
                           {"documents", documents},
                           {"log_seconds", log_s},
                           {"amqp_seconds", amqp_s},
                           {"every_document_ok_on_amqp", complete},
                           {"ratio_amqp_vs_log", am > 0 ? sluice::bench::round_to(lm / am) : 0.0}};
    std::fprintf(stderr, "amqp_bench: pipeline (%lld files): log %.2f s, amqp %.2f s -> %.2fx%s\n",
                 static_cast<long long>(documents), lm, am, am > 0 ? lm / am : 0.0,
                 complete ? "" : " (amqp runs INCOMPLETE)");
  }
  summary["targets"] = json::array({json{{"name", "produce_with_confirms_msgs_s"},
                                         {"target", ">= 20000"},
                                         {"measured", sp},
                                         {"status", sp >= 20000 ? "met" : "missed"}}});
  std::printf("%s\n", summary.dump().c_str());
  std::fprintf(
      stderr,
      "amqp_bench: produce (confirmed, persistent) plain %.0f msgs/s, sluice %.0f (%.2fx); consume "
      "plain %.0f, sluice %.0f (%.2fx); %lld x %zu B, %d partitions, window %d, prefetch %d, medians "
      "of %d\n  %s  produce_with_confirms >= 20000 msgs/s, measured %.0f\n",
      pp, sp, summary["ratio_produce_vs_plain"].get<double>(), pc, sc,
      summary["ratio_consume_vs_plain"].get<double>(), static_cast<long long>(o.messages), o.size,
      o.partitions, o.window, o.prefetch, o.repeats, sp >= 20000 ? "met" : "missed", sp);
  return 0;
}
