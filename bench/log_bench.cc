// log_bench: throughput, latency and memory of the embedded `log` queue backend.
//
// Prints JSON lines on stdout: first {"type":"machine",...} (CPU, cores, kernel, the filesystem of
// the data directory, what one 128-byte append + fdatasync costs there, the flags), then one
// {"type":"scenario",...} per scenario with "median" (every numeric field's median over the
// --repeats runs) and "runs" (each run); a scenario that fails prints "error" instead and the exit
// status becomes 1. Last, {"type":"machine_end",...} repeats the load average and the fdatasync
// probe (a shared machine can change during a long run). Progress goes to stderr.
//
// Every run opens the backend with open_log_queue in a fresh directory under --dir (default
// $TMPDIR, else /tmp; keep it on the disk being measured) and deletes it afterwards. Topic
// "bench"; keys "key-<i % 1000>"; values are fixed pseudo-random bytes. A run stops after its
// message count or its time limit (--seconds), whichever comes first.
//
//   produce_<V>_<T>t_<P>p_<fsync>  V = 100B | 1KiB value, T producer threads (each its own
//       Producer), P partitions (1 thread: 1; 2 threads: 1 and 4), fsync = batch (the durable
//       default) | never. Timed from the first send until every thread's flush() returned;
//       msgs/s and MB/s (value bytes, 10^6) count only messages whose DeliveryReport said OK.
//   consume_100B  pre-fill N messages (durable default, not timed), then one Consumer of a new
//       group polls (max 4096) and acks each; timed from the first poll (group join included)
//       to the last ack. The final commit() is reported apart (commit_ms).
//   e2e_100B  one producer thread and one consumer (already assigned) at once, durable default;
//       timed from the first send until the consumer acked every message sent.
//   latency_100B  sends paced by the clock at --latency-rate (10,000/s) for --latency-seconds,
//       durable default; latency = delivery callback time - send time, p50/p99/p999/max in us
//       (100 warm-up messages first, not recorded). late_sends: sends issued more than one
//       interval behind schedule; send_call_*: time spent inside send() itself; disk_fdatasync_*:
//       a 50-append fdatasync probe in the run's directory just before (see bench_util.h).
//   rss_1KiB  re-executes itself (--scenario rss-child) so the figure is one process's: that
//       child produces --rss-bytes (2 GiB) of 1 KiB values with one producer thread while a
//       consumer acks them, default LogOptions; the parent reads the child's ru_maxrss (wait4).
//
// --quick shrinks every scenario (one repeat, 0.3 s, 200k messages, 64 MiB for rss) for a CI
// smoke run. Targets are not judged here: bench/run_queue_bench.sh compares the figures.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/version.h"
#include "bench_util.h"
#include "queue/log/log_queue.h"
#include "queue/queue.h"

#ifndef SLUICE_BENCH_BUILD_TYPE
#define SLUICE_BENCH_BUILD_TYPE "unknown"
#endif

namespace sluice::bench {
namespace {

namespace ql = ::sluice::queue::log;
using json = nlohmann::json;
using queue::Millis;

constexpr std::string_view kTopic = "bench";
constexpr size_t kKeyCount = 1000;
constexpr size_t kPollMax = 4096;
constexpr Millis kPollTimeout{100};
constexpr Millis kFlushTimeout{300000};
constexpr double kStallSeconds = 30;  // a consumer that receives nothing this long fails the run
constexpr uint64_t kMiB = 1ull << 20;

struct Flags {
  std::string dir;
  std::string scenarios = "all";
  int repeats = 3;
  double seconds = 4;
  uint64_t produce_messages = 20'000'000;
  uint64_t consume_messages = 5'000'000;
  uint64_t e2e_messages = 5'000'000;
  double latency_rate = 10000;
  double latency_seconds = 5;
  uint64_t rss_bytes = 2ull << 30;
  size_t rss_value_bytes = 1024;
  double rss_timeout = 600;
  bool quick = false;
};

std::chrono::nanoseconds to_duration(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

// The keys "key-0" ... "key-999" and one value, built once so that the send loops only send.
struct Payload {
  explicit Payload(size_t value_bytes) {
    keys.reserve(kKeyCount);
    for (size_t i = 0; i < kKeyCount; ++i) keys.push_back("key-" + std::to_string(i));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    value.resize(value_bytes);
    for (char& c : value) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>('!' + x % 94);  // printable, hardly compressible
    }
  }
  std::vector<std::string> keys;
  std::string value;
};

// Counts delivery reports; on_report runs on a backend thread.
struct alignas(64) DeliveryCounter {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::mutex mu;
  Status first_error;

  void on_report(const queue::DeliveryReport& r) {
    if (r.status.is_ok()) {
      ok.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (failed.fetch_add(1, std::memory_order_relaxed) == 0) {
      std::lock_guard lock(mu);
      first_error = r.status;
    }
  }
  Status check(uint64_t sent) {
    if (failed.load() != 0) {
      std::lock_guard lock(mu);
      return first_error.with_context(std::to_string(failed.load()) + " delivery reports failed, first");
    }
    if (ok.load() != sent) {
      return Status::internal(std::to_string(sent) + " messages sent but " + std::to_string(ok.load()) +
                              " delivery reports after flush");
    }
    return {};
  }
};

queue::ProducerOptions producer_options(DeliveryCounter& counter) {
  queue::ProducerOptions po;
  po.on_delivery = [&counter](const queue::DeliveryReport& r) { counter.on_report(r); };
  return po;
}

Result<std::unique_ptr<queue::Queue>> open_with_topic(const std::string& dir, ql::FsyncMode fsync,
                                                      int32_t partitions) {
  ql::LogOptions opts;
  opts.dir = dir;
  opts.fsync = fsync;
  auto q = ql::open_log_queue(opts);
  if (!q.is_ok()) return q.status().with_context("open_log_queue(" + dir + ")");
  queue::TopicConfig cfg;
  cfg.partitions = partitions;
  SLUICE_RETURN_IF_ERROR(q.value()->admin().create_topic(kTopic, cfg).with_context("create_topic"));
  return q;
}

struct SendOutcome {
  uint64_t sent = 0;
  Status status;
};

// Sends up to count messages, stopping early at deadline (checked every 256 sends).
SendOutcome send_loop(queue::Producer& producer, const Payload& payload, uint64_t count,
                      Clock::time_point deadline) {
  queue::OutMessage msg;
  msg.topic = kTopic;
  msg.value = payload.value;
  for (uint64_t i = 0; i < count; ++i) {
    if ((i & 255) == 0 && Clock::now() >= deadline) return {i, {}};
    msg.key = payload.keys[i % kKeyCount];
    auto r = producer.send(msg);
    if (!r.is_ok()) return {i, r.status().with_context("send #" + std::to_string(i))};
  }
  return {count, {}};
}

struct ConsumeOutcome {
  uint64_t acked = 0;
  double first_message_s = -1;  // since the loop began
  Status status;
};

// Polls and acks until `target` messages are acked or deadline passes; a consumer receiving nothing
// for kStallSeconds is an error.
ConsumeOutcome consume_loop(queue::Consumer& consumer, const std::atomic<uint64_t>& target,
                            Clock::time_point deadline) {
  ConsumeOutcome out;
  std::vector<queue::Message> batch;
  batch.reserve(kPollMax);
  auto t0 = Clock::now();
  auto last_progress = t0;
  while (out.acked < target.load(std::memory_order_acquire) && Clock::now() < deadline) {
    batch.clear();
    Status st = consumer.poll(batch, kPollMax, kPollTimeout);
    if (!st.is_ok()) {
      out.status = st.with_context("poll after " + std::to_string(out.acked) + " messages");
      return out;
    }
    if (batch.empty()) {
      if (seconds_since(last_progress) > kStallSeconds) {
        out.status = Status::timeout("consumer received nothing for " + std::to_string(kStallSeconds) +
                                     " s after " + std::to_string(out.acked) + " messages");
        return out;
      }
      continue;
    }
    if (out.first_message_s < 0) out.first_message_s = seconds_since(t0);
    for (const auto& m : batch) {
      Status a = consumer.ack(m);
      if (!a.is_ok()) {
        out.status = a.with_context("ack");
        return out;
      }
    }
    out.acked += batch.size();
    last_progress = Clock::now();
  }
  return out;
}

Result<std::unique_ptr<queue::Consumer>> make_consumer(queue::Queue& q, const std::string& group) {
  queue::ConsumerOptions co;
  co.group = group;
  co.topics = {std::string(kTopic)};
  auto c = q.make_consumer(co);
  if (!c.is_ok()) return c.status().with_context("make_consumer");
  return c;
}

// Waits until the consumer owns a partition (the topic must still be empty).
Status wait_for_assignment(queue::Consumer& consumer) {
  auto t0 = Clock::now();
  std::vector<queue::Message> scratch;
  while (consumer.assignment().empty()) {
    if (seconds_since(t0) > kStallSeconds) return Status::timeout("consumer got no partition in time");
    scratch.clear();
    SLUICE_RETURN_IF_ERROR(consumer.poll(scratch, 1, Millis(10)).with_context("poll while joining"));
    if (!scratch.empty()) return Status::internal("the topic was expected empty before the run");
  }
  return {};
}

json cpu_fields(const CpuTimes& before) {
  CpuTimes now = cpu_times();
  return {{"cpu_user_s", round_to(now.user_s - before.user_s)},
          {"cpu_sys_s", round_to(now.sys_s - before.sys_s)}};
}

std::string fsync_name(ql::FsyncMode m) {
  switch (m) {
    case ql::FsyncMode::kBatch: return "batch";
    case ql::FsyncMode::kInterval: return "interval";
    case ql::FsyncMode::kNever: return "never";
  }
  return "?";
}

std::string size_name(size_t bytes) {
  return bytes % 1024 == 0 ? std::to_string(bytes / 1024) + "KiB" : std::to_string(bytes) + "B";
}

// ---- produce ----

struct ProduceParams {
  size_t value_bytes = 100;
  int threads = 1;
  int32_t partitions = 1;
  ql::FsyncMode fsync = ql::FsyncMode::kBatch;
  uint64_t max_messages = 0;  // over all threads
  double seconds = 0;
};

Result<json> run_produce(const std::string& dir, const ProduceParams& pp) {
  SLUICE_ASSIGN_OR_RETURN(auto q, open_with_topic(dir, pp.fsync, pp.partitions));
  Payload payload(pp.value_bytes);
  std::vector<std::unique_ptr<DeliveryCounter>> counters;
  std::vector<std::unique_ptr<queue::Producer>> producers;
  for (int t = 0; t < pp.threads; ++t) {
    counters.push_back(std::make_unique<DeliveryCounter>());
    auto p = q->make_producer(producer_options(*counters.back()));
    if (!p.is_ok()) return p.status().with_context("make_producer");
    producers.push_back(std::move(p).value());
  }
  uint64_t per_thread = pp.max_messages / pp.threads;
  std::vector<SendOutcome> sends(pp.threads);
  std::vector<Status> flushes(pp.threads);
  std::vector<std::thread> threads;
  CpuTimes cpu0 = cpu_times();
  auto t0 = Clock::now();
  auto deadline = t0 + to_duration(pp.seconds);
  for (int t = 0; t < pp.threads; ++t) {
    threads.emplace_back([&, t] {
      sends[t] = send_loop(*producers[t], payload, per_thread, deadline);
      flushes[t] = producers[t]->flush(kFlushTimeout);
    });
  }
  for (auto& th : threads) th.join();
  double elapsed = seconds_since(t0);
  json cpu = cpu_fields(cpu0);
  uint64_t delivered = 0;
  for (int t = 0; t < pp.threads; ++t) {
    SLUICE_RETURN_IF_ERROR(sends[t].status);
    SLUICE_RETURN_IF_ERROR(flushes[t].with_context("flush"));
    SLUICE_RETURN_IF_ERROR(counters[t]->check(sends[t].sent));
    delivered += counters[t]->ok.load();
  }
  producers.clear();
  json run = {{"messages", delivered},
              {"seconds", round_to(elapsed, 4)},
              {"msgs_per_s", round_to(delivered / elapsed, 0)},
              {"mb_per_s", round_to(static_cast<double>(delivered) * pp.value_bytes / elapsed / 1e6, 1)}};
  run.update(cpu);
  return run;
}

// ---- consume ----

Result<json> run_consume(const std::string& dir, uint64_t count, double seconds) {
  SLUICE_ASSIGN_OR_RETURN(auto q, open_with_topic(dir, ql::FsyncMode::kBatch, 1));
  Payload payload(100);
  DeliveryCounter counter;
  auto p = q->make_producer(producer_options(counter));
  if (!p.is_ok()) return p.status().with_context("make_producer");
  auto t_fill = Clock::now();
  SendOutcome fill = send_loop(*p.value(), payload, count, t_fill + to_duration(2 * seconds));
  SLUICE_RETURN_IF_ERROR(fill.status);
  SLUICE_RETURN_IF_ERROR(p.value()->flush(kFlushTimeout).with_context("flush"));
  SLUICE_RETURN_IF_ERROR(counter.check(fill.sent));
  double fill_s = seconds_since(t_fill);
  p.value().reset();

  SLUICE_ASSIGN_OR_RETURN(auto c, make_consumer(*q, "bench-consume"));
  std::atomic<uint64_t> target{fill.sent};
  CpuTimes cpu0 = cpu_times();
  auto t0 = Clock::now();
  ConsumeOutcome got = consume_loop(*c, target, t0 + to_duration(seconds));
  double elapsed = seconds_since(t0);
  json cpu = cpu_fields(cpu0);
  SLUICE_RETURN_IF_ERROR(got.status);
  auto t_commit = Clock::now();
  SLUICE_RETURN_IF_ERROR(c->commit().with_context("commit"));
  double commit_s = seconds_since(t_commit);
  SLUICE_RETURN_IF_ERROR(c->close().with_context("close"));
  json run = {{"messages", got.acked},
              {"seconds", round_to(elapsed, 4)},
              {"msgs_per_s", round_to(got.acked / elapsed, 0)},
              {"mb_per_s", round_to(got.acked * 100.0 / elapsed / 1e6, 1)},
              {"first_message_ms", round_to(got.first_message_s * 1e3)},
              {"commit_ms", round_to(commit_s * 1e3)},
              {"prefill_messages", fill.sent},
              {"prefill_msgs_per_s", round_to(fill.sent / fill_s, 0)}};
  run.update(cpu);
  return run;
}

// ---- end to end ----

Result<json> run_e2e(const std::string& dir, uint64_t count, double seconds) {
  SLUICE_ASSIGN_OR_RETURN(auto q, open_with_topic(dir, ql::FsyncMode::kBatch, 1));
  Payload payload(100);
  SLUICE_ASSIGN_OR_RETURN(auto c, make_consumer(*q, "bench-e2e"));
  SLUICE_RETURN_IF_ERROR(wait_for_assignment(*c));
  DeliveryCounter counter;
  auto p = q->make_producer(producer_options(counter));
  if (!p.is_ok()) return p.status().with_context("make_producer");

  std::atomic<uint64_t> target{UINT64_MAX};
  SendOutcome sent;
  Status flushed;
  double produce_s = 0;
  CpuTimes cpu0 = cpu_times();
  auto t0 = Clock::now();
  std::thread producer([&] {
    sent = send_loop(*p.value(), payload, count, t0 + to_duration(seconds));
    target.store(sent.sent, std::memory_order_release);
    flushed = p.value()->flush(kFlushTimeout);
    produce_s = seconds_since(t0);
  });
  ConsumeOutcome got = consume_loop(*c, target, t0 + to_duration(seconds + 120));
  double elapsed = seconds_since(t0);
  producer.join();
  json cpu = cpu_fields(cpu0);
  SLUICE_RETURN_IF_ERROR(sent.status);
  SLUICE_RETURN_IF_ERROR(flushed.with_context("flush"));
  SLUICE_RETURN_IF_ERROR(counter.check(sent.sent));
  SLUICE_RETURN_IF_ERROR(got.status);
  if (got.acked < sent.sent) {
    return Status::timeout("consumer acked " + std::to_string(got.acked) + " of " +
                           std::to_string(sent.sent));
  }
  SLUICE_RETURN_IF_ERROR(c->close().with_context("close"));
  p.value().reset();
  json run = {{"messages", got.acked},
              {"seconds", round_to(elapsed, 4)},
              {"msgs_per_s", round_to(got.acked / elapsed, 0)},
              {"produce_seconds", round_to(produce_s, 4)},
              {"first_message_ms", round_to(got.first_message_s * 1e3)}};
  run.update(cpu);
  return run;
}

// ---- produce-ack latency ----

Result<json> run_latency(const std::string& dir, double rate, double seconds) {
  SLUICE_ASSIGN_OR_RETURN(auto q, open_with_topic(dir, ql::FsyncMode::kBatch, 1));
  Payload payload(100);
  const auto n = static_cast<size_t>(rate * seconds);
  std::vector<int64_t> sent_at(n, 0);
  std::vector<int64_t> latency(n, -1);
  std::vector<int64_t> send_call(n, 0);  // how long send() itself took
  std::atomic<uint64_t> failed{0};
  queue::ProducerOptions po;
  // opaque carries index + 1; warm-up messages carry nullptr.
  po.on_delivery = [&](const queue::DeliveryReport& r) {
    auto i = reinterpret_cast<uintptr_t>(r.opaque);
    if (!r.status.is_ok()) failed.fetch_add(1, std::memory_order_relaxed);
    if (i != 0) latency[i - 1] = now_ns() - sent_at[i - 1];
  };
  auto p = q->make_producer(po);
  if (!p.is_ok()) return p.status().with_context("make_producer");
  queue::Producer& producer = *p.value();
  queue::OutMessage msg;
  msg.topic = kTopic;
  msg.value = payload.value;

  // Warm-up (not recorded): creates the segment files and starts the backend's threads.
  for (size_t i = 0; i < 100; ++i) {
    msg.key = payload.keys[i % kKeyCount];
    auto r = producer.send(msg);
    if (!r.is_ok()) return r.status().with_context("warm-up send");
  }
  SLUICE_RETURN_IF_ERROR(producer.flush(kFlushTimeout).with_context("warm-up flush"));

  // What the disk charges for one durable append right now: the floor of a durable ack.
  json disk = fdatasync_probe(dir, 50);

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake up on time for the pacing
  const double interval_ns = 1e9 / rate;
  uint64_t late = 0;
  CpuTimes cpu0 = cpu_times();
  const int64_t t0 = now_ns() + 1'000'000;
  for (size_t i = 0; i < n; ++i) {
    const int64_t due = t0 + static_cast<int64_t>(i * interval_ns);
    if (now_ns() < due) std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(due)));
    const int64_t now = now_ns();
    if (now - due > interval_ns) ++late;
    sent_at[i] = now;
    msg.key = payload.keys[i % kKeyCount];
    auto r = producer.send(msg, reinterpret_cast<void*>(static_cast<uintptr_t>(i + 1)));
    if (!r.is_ok()) return r.status().with_context("send #" + std::to_string(i));
    send_call[i] = now_ns() - now;
  }
  const double send_s = (now_ns() - t0) / 1e9;
  SLUICE_RETURN_IF_ERROR(producer.flush(kFlushTimeout).with_context("flush"));
  json cpu = cpu_fields(cpu0);
  p.value().reset();
  if (failed.load() != 0) return Status::internal(std::to_string(failed.load()) + " deliveries failed");
  std::vector<int64_t> sorted = latency;
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty() && sorted.front() < 0) return Status::internal("a message got no delivery report");
  double sum = 0;
  for (int64_t v : sorted) sum += static_cast<double>(v);
  auto us = [](int64_t ns) { return round_to(ns / 1e3, 1); };
  std::sort(send_call.begin(), send_call.end());
  json run = {{"messages", n},
              {"achieved_msgs_per_s", round_to(n / send_s, 0)},
              {"late_sends", late},
              {"p50_us", us(percentile_sorted(sorted, 0.50))},
              {"p99_us", us(percentile_sorted(sorted, 0.99))},
              {"p999_us", us(percentile_sorted(sorted, 0.999))},
              {"max_us", us(sorted.empty() ? 0 : sorted.back())},
              {"mean_us", round_to(n ? sum / n / 1e3 : 0, 1)},
              {"send_call_p99_us", us(percentile_sorted(send_call, 0.99))},
              {"send_call_max_us", us(send_call.empty() ? 0 : send_call.back())},
              {"disk_fdatasync_p50_us", disk.value("p50_us", -1.0)},
              {"disk_fdatasync_p99_us", disk.value("p99_us", -1.0)}};
  run.update(cpu);
  return run;
}

// ---- peak RSS (child side) ----

// Samples /proc/self/status every 20 ms and keeps the maxima of the anonymous and file-backed RSS.
class RssSampler {
 public:
  RssSampler() : thread_([this] { loop(); }) {}
  ~RssSampler() { stop(); }
  void stop() {
    if (!stop_.exchange(true)) thread_.join();
  }
  int64_t max_anon_kib() const { return max_anon_.load(); }
  int64_t max_file_kib() const { return max_file_.load(); }

 private:
  void loop() {
    while (!stop_.load()) {
      max_anon_.store(std::max(max_anon_.load(), proc_status_kib("RssAnon")));
      max_file_.store(std::max(max_file_.load(), proc_status_kib("RssFile")));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> max_anon_{0};
  std::atomic<int64_t> max_file_{0};
  std::thread thread_;
};

Result<json> run_rss_child(const Flags& f) {
  const int64_t baseline_kib = proc_status_kib("VmRSS");
  RssSampler sampler;
  SLUICE_ASSIGN_OR_RETURN(auto q, open_with_topic(f.dir, ql::FsyncMode::kBatch, 1));
  Payload payload(f.rss_value_bytes);
  const uint64_t count = f.rss_bytes / f.rss_value_bytes;
  SLUICE_ASSIGN_OR_RETURN(auto c, make_consumer(*q, "bench-rss"));
  SLUICE_RETURN_IF_ERROR(wait_for_assignment(*c));
  DeliveryCounter counter;
  auto p = q->make_producer(producer_options(counter));
  if (!p.is_ok()) return p.status().with_context("make_producer");

  std::atomic<uint64_t> target{count};
  SendOutcome sent;
  Status flushed;
  auto t0 = Clock::now();
  auto deadline = t0 + to_duration(f.rss_timeout);
  std::thread producer([&] {
    sent = send_loop(*p.value(), payload, count, deadline);
    if (sent.sent < count) target.store(sent.sent);
    flushed = p.value()->flush(kFlushTimeout);
  });
  ConsumeOutcome got = consume_loop(*c, target, deadline);
  double elapsed = seconds_since(t0);
  producer.join();
  SLUICE_RETURN_IF_ERROR(sent.status);
  SLUICE_RETURN_IF_ERROR(flushed.with_context("flush"));
  SLUICE_RETURN_IF_ERROR(counter.check(sent.sent));
  SLUICE_RETURN_IF_ERROR(got.status);
  if (got.acked < count) {
    return Status::timeout("only " + std::to_string(got.acked) + " of " + std::to_string(count) +
                           " messages passed within --rss-timeout");
  }
  SLUICE_RETURN_IF_ERROR(c->close().with_context("close"));
  p.value().reset();
  c.reset();
  q.reset();
  sampler.stop();
  const double bytes = static_cast<double>(count) * f.rss_value_bytes;
  return json{{"messages", count},
              {"value_bytes_total", static_cast<uint64_t>(bytes)},
              {"seconds", round_to(elapsed, 4)},
              {"msgs_per_s", round_to(count / elapsed, 0)},
              {"mb_per_s", round_to(bytes / elapsed / 1e6, 1)},
              {"baseline_rss_kib", baseline_kib},
              {"child_vm_hwm_kib", proc_status_kib("VmHWM")},
              {"max_rss_anon_kib", sampler.max_anon_kib()},
              {"max_rss_file_kib", sampler.max_file_kib()}};
}

int rss_child_main(const Flags& f) {
  auto r = run_rss_child(f);
  json out = r.is_ok() ? r.value() : json{{"error", r.status().to_string()}};
  std::cout << out.dump() << std::endl;
  return r.is_ok() ? 0 : 1;
}

// ---- peak RSS (parent side) ----

Result<json> run_rss(const std::string& dir, const Flags& f, const std::string& argv0) {
  std::vector<std::string> args = {argv0,
                                   "--scenario",
                                   "rss-child",
                                   "--dir",
                                   dir,
                                   "--rss-bytes",
                                   std::to_string(f.rss_bytes),
                                   "--rss-value-bytes",
                                   std::to_string(f.rss_value_bytes),
                                   "--rss-timeout",
                                   std::to_string(f.rss_timeout)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::io_error(std::string("pipe2: ") + std::strerror(errno));
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::io_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t k = read(fds[0], buf, sizeof buf);
    if (k > 0) {
      out.append(buf, static_cast<size_t>(k));
    } else if (k == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int wstatus = 0;
  struct rusage ru {};
  while (wait4(pid, &wstatus, 0, &ru) < 0) {
    if (errno != EINTR) return Status::io_error(std::string("wait4: ") + std::strerror(errno));
  }
  json child = json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (child.is_discarded() || !child.is_object()) {
    return Status::internal("rss child (status " + std::to_string(wstatus) + ") printed: " + out);
  }
  if (child.contains("error")) return Status::internal("rss child: " + child["error"].get<std::string>());
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::internal("rss child ended with status " + std::to_string(wstatus));
  }
  child["peak_rss_kib"] = ru.ru_maxrss;  // KiB on Linux
  child["peak_rss_mib"] = round_to(ru.ru_maxrss / 1024.0, 1);
  return child;
}

// ---- driver ----

struct Scenario {
  std::string kind;
  std::string name;
  json params;
  std::function<Result<json>(const std::string& dir)> run;
};

std::vector<Scenario> build_scenarios(const Flags& f, const std::set<std::string>& wanted,
                                      const std::string& argv0) {
  std::vector<Scenario> out;
  auto want = [&](const std::string& kind) { return wanted.count("all") || wanted.count(kind); };
  if (want("produce")) {
    for (size_t value : {size_t{100}, size_t{1024}}) {
      for (auto fsync : {ql::FsyncMode::kBatch, ql::FsyncMode::kNever}) {
        for (auto [threads, partitions] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{2, 4}}) {
          ProduceParams pp{value, threads, partitions, fsync, f.produce_messages, f.seconds};
          std::string name = "produce_" + size_name(value) + "_" + std::to_string(threads) + "t_" +
                             std::to_string(partitions) + "p_" + fsync_name(fsync);
          json params = {{"value_bytes", value},
                         {"threads", threads},
                         {"partitions", partitions},
                         {"fsync", fsync_name(fsync)},
                         {"max_messages", f.produce_messages},
                         {"max_seconds", f.seconds}};
          out.push_back(
              {"produce", name, params, [pp](const std::string& dir) { return run_produce(dir, pp); }});
        }
      }
    }
  }
  if (want("consume")) {
    json params = {{"value_bytes", 100},
                   {"partitions", 1},
                   {"poll_max", kPollMax},
                   {"max_messages", f.consume_messages},
                   {"max_seconds", f.seconds}};
    out.push_back({"consume", "consume_100B", params,
                   [f](const std::string& dir) { return run_consume(dir, f.consume_messages, f.seconds); }});
  }
  if (want("e2e")) {
    json params = {{"value_bytes", 100},
                   {"partitions", 1},
                   {"fsync", "batch"},
                   {"max_messages", f.e2e_messages},
                   {"max_seconds", f.seconds}};
    out.push_back({"e2e", "e2e_100B", params,
                   [f](const std::string& dir) { return run_e2e(dir, f.e2e_messages, f.seconds); }});
  }
  if (want("latency")) {
    json params = {{"value_bytes", 100},
                   {"partitions", 1},
                   {"fsync", "batch"},
                   {"rate_msgs_per_s", f.latency_rate},
                   {"seconds", f.latency_seconds}};
    out.push_back({"latency", "latency_100B", params, [f](const std::string& dir) {
                     return run_latency(dir, f.latency_rate, f.latency_seconds);
                   }});
  }
  if (want("rss")) {
    json params = {{"value_bytes", f.rss_value_bytes},
                   {"bytes", f.rss_bytes},
                   {"partitions", 1},
                   {"fsync", "batch"},
                   {"separate_process", true}};
    out.push_back({"rss", "rss_" + size_name(f.rss_value_bytes), params,
                   [f, argv0](const std::string& dir) { return run_rss(dir, f, argv0); }});
  }
  return out;
}

// Runs a scenario --repeats times, each in a fresh directory, and prints its line.
bool run_scenario(const Scenario& s, const std::string& root, int repeats) {
  json line = {{"type", "scenario"}, {"scenario", s.kind}, {"name", s.name}, {"params", s.params}};
  std::vector<json> runs;
  for (int r = 0; r < repeats; ++r) {
    std::fprintf(stderr, "log_bench: %s run %d/%d\n", s.name.c_str(), r + 1, repeats);
    auto dir = make_temp_dir(root, s.name + "-");
    Result<json> result = dir.is_ok() ? s.run(dir.value()) : Result<json>(dir.status());
    if (dir.is_ok()) remove_tree(dir.value());
    if (!result.is_ok()) {
      line["error"] = result.status().to_string();
      std::fprintf(stderr, "log_bench: %s failed: %s\n", s.name.c_str(), result.status().to_string().c_str());
      break;
    }
    runs.push_back(std::move(result).value());
  }
  if (!runs.empty()) line["median"] = median_of_runs(runs);
  line["runs"] = runs;
  std::cout << line.dump() << std::endl;
  return !line.contains("error");
}

int bench_main(int argc, char** argv) {
  Flags f;
  CLI::App app{"Benchmarks the embedded `log` queue backend; prints JSON lines (see the file comment)."};
  app.add_option("--dir", f.dir, "Where the per-run data directories go (default $TMPDIR, else /tmp)");
  app.add_option("--scenario", f.scenarios,
                 "Comma-separated: all, produce, consume, e2e, latency, rss (rss-child is internal)");
  app.add_option("--repeats", f.repeats, "Runs per scenario; the median is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", f.seconds, "Time limit of one produce/consume/e2e run")
      ->check(CLI::PositiveNumber);
  app.add_option("--produce-messages", f.produce_messages, "Message limit of one produce run");
  app.add_option("--consume-messages", f.consume_messages, "Messages pre-filled for one consume run");
  app.add_option("--e2e-messages", f.e2e_messages, "Message limit of one end-to-end run");
  app.add_option("--latency-rate", f.latency_rate, "Paced send rate (msgs/s)")->check(CLI::PositiveNumber);
  app.add_option("--latency-seconds", f.latency_seconds, "Length of one latency run")
      ->check(CLI::PositiveNumber);
  app.add_option("--rss-bytes", f.rss_bytes, "Value bytes passed through the log in the rss scenario");
  app.add_option("--rss-value-bytes", f.rss_value_bytes, "Value size of the rss scenario")
      ->check(CLI::PositiveNumber);
  app.add_option("--rss-timeout", f.rss_timeout, "Give up the rss scenario after this many seconds");
  app.add_flag("--quick", f.quick, "Shrink every scenario for a smoke run (< 20 s in all)");
  CLI11_PARSE(app, argc, argv);

  if (f.scenarios == "rss-child") return rss_child_main(f);

  if (f.quick) {
    auto unset = [&](const char* opt) { return app.count(opt) == 0; };
    if (unset("--repeats")) f.repeats = 1;
    if (unset("--seconds")) f.seconds = 0.3;
    if (unset("--produce-messages")) f.produce_messages = 1'000'000;
    if (unset("--consume-messages")) f.consume_messages = 200'000;
    if (unset("--e2e-messages")) f.e2e_messages = 200'000;
    if (unset("--latency-seconds")) f.latency_seconds = 1;
    if (unset("--rss-bytes")) f.rss_bytes = 64 * kMiB;
  }
  if (f.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    f.dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::set<std::string> wanted;
  for (size_t pos = 0; pos <= f.scenarios.size();) {
    size_t comma = std::min(f.scenarios.find(',', pos), f.scenarios.size());
    std::string s = f.scenarios.substr(pos, comma - pos);
    if (!s.empty()) wanted.insert(s);
    pos = comma + 1;
  }
  for (const auto& s : wanted) {
    static const std::set<std::string> kKnown = {"all", "produce", "consume", "e2e", "latency", "rss"};
    if (!kKnown.count(s)) {
      std::fprintf(stderr, "log_bench: unknown scenario '%s'\n", s.c_str());
      return 2;
    }
  }
  auto root = make_temp_dir(f.dir, "sluice-log-bench-");
  if (!root.is_ok()) {
    std::fprintf(stderr, "log_bench: %s\n", root.status().to_string().c_str());
    return 1;
  }

  json machine = machine_facts(root.value());
  machine["type"] = "machine";
  machine["dir"] = root.value();
  machine["sluice_version"] = kVersion;
  machine["build_type"] = SLUICE_BENCH_BUILD_TYPE;
  machine["fdatasync_probe"] = fdatasync_probe(root.value(), f.quick ? 50 : 200);
  machine["flags"] = {{"scenario", f.scenarios},
                      {"repeats", f.repeats},
                      {"seconds", f.seconds},
                      {"produce_messages", f.produce_messages},
                      {"consume_messages", f.consume_messages},
                      {"e2e_messages", f.e2e_messages},
                      {"latency_rate", f.latency_rate},
                      {"latency_seconds", f.latency_seconds},
                      {"rss_bytes", f.rss_bytes},
                      {"rss_value_bytes", f.rss_value_bytes},
                      {"quick", f.quick}};
  std::cout << machine.dump() << std::endl;

  bool all_ok = true;
  for (const auto& s : build_scenarios(f, wanted, argv[0]))
    all_ok = run_scenario(s, root.value(), f.repeats) && all_ok;
  json end = {{"type", "machine_end"},
              {"loadavg", load_average()},
              {"fdatasync_probe", fdatasync_probe(root.value(), f.quick ? 50 : 200)}};
  std::cout << end.dump() << std::endl;
  remove_tree(root.value());
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  return sluice::bench::bench_main(argc, argv);
}
