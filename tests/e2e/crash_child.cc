// crash_child: the producer and consumer processes that crash_test.cc starts and SIGKILLs.
//
// Everything the parent must learn is written to stdout as one line per event with a single
// write(2): a line either reached the pipe before the kill or it did not, and lines of several
// threads never interleave (they are far below PIPE_BUF). Nothing is buffered in stdio, because a
// buffered line would die with the process.
//
//   crash_child produce DIR TOPIC SEQS [--keys FIRST-LAST] [--count N] [--pause-us U]
//       SEQS: 16 comma-separated next sequence numbers for keys k0..k15. Sends "<key>:<seq>"
//       round robin over keys kFIRST..kLAST (default k0..k15; producers running at once get
//       disjoint ranges, so each key has one writer and one sequence); prints "TRY key seq" before each send
//       and "ACK key seq partition offset" (or "NACK key seq error") from the delivery report. With
//       --count it stops after N messages, flushes, prints "DONE" and exits 0; otherwise it runs
//       until killed. --pause-us (default 1000) sleeps after every 16 sends, so the consumer keeps
//       up and a kill lands in every phase: sending, writing, syncing, reporting.
//   crash_child consume DIR GROUP TOPIC [--max-poll N] [--stop-after N]
//       Prints "STARTED", then "MSG partition offset key value" for every message before acking it,
//       and "ASSIGNED n" whenever the number of owned partitions changes. With --stop-after it
//       commits after N acks, prints "PAUSED" and sleeps until killed (a member that hangs on to
//       the group).
//   crash_child drain DIR GROUP TOPIC TIMEOUT_MS
//       Like consume, and exits 0 ("DRAINED") once the group has no lag on any partition of
//       TOPIC; exit 4 when TIMEOUT_MS passes first.
// Exit codes: 0 done, 2 usage, 3 a queue call failed (message on stderr), 4 drain timeout.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "queue/queue.h"

namespace {

using sluice::Status;
using namespace sluice::queue;

constexpr int kKeys = 16;

void emit(const std::string& line) {
  std::string l = line + "\n";
  const char* p = l.data();
  size_t left = l.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::_Exit(5);  // the parent is gone; nobody is listening
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

[[noreturn]] void fail(std::string_view what, const Status& st) {
  std::fprintf(stderr, "crash_child[%d]: %.*s: %s\n", static_cast<int>(getpid()),
               static_cast<int>(what.size()), what.data(), st.to_string().c_str());
  std::_Exit(3);
}

[[noreturn]] void usage() {
  std::fputs(
      "usage: crash_child produce DIR TOPIC SEQS [--keys FIRST-LAST] [--count N] [--pause-us U]\n"
      "       crash_child consume DIR GROUP TOPIC [--max-poll N] [--stop-after N]\n"
      "       crash_child drain DIR GROUP TOPIC TIMEOUT_MS\n",
      stderr);
  std::_Exit(2);
}

// Value of "--name N" among args, or def.
int64_t flag(const std::vector<std::string>& args, std::string_view name, int64_t def) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == name) return std::stoll(args[i + 1]);
  return def;
}

std::unique_ptr<Queue> open(const std::string& dir) {
  auto q = open_queue("log:" + dir);
  if (!q.is_ok()) fail("open_queue", q.status());
  return std::move(q).value();
}

int produce(const std::vector<std::string>& args) {
  if (args.size() < 3) usage();
  const std::string& topic = args[1];
  std::vector<int64_t> next(kKeys, 0);
  {
    size_t pos = 0;
    for (int k = 0; k < kKeys; ++k) {
      size_t comma = args[2].find(',', pos);
      next[k] = std::stoll(args[2].substr(pos, comma - pos));
      pos = comma == std::string::npos ? args[2].size() : comma + 1;
    }
  }
  int first_key = 0;
  int last_key = kKeys - 1;
  for (size_t i = 3; i + 1 < args.size(); ++i) {
    if (args[i] != "--keys") continue;
    first_key = std::stoi(args[i + 1]);
    last_key = std::stoi(args[i + 1].substr(args[i + 1].find('-') + 1));
  }
  if (first_key < 0 || last_key >= kKeys || first_key > last_key) usage();
  const int key_count = last_key - first_key + 1;
  const int64_t count = flag(args, "--count", -1);
  const int64_t pause_us = flag(args, "--pause-us", 1000);

  auto q = open(args[0]);
  ProducerOptions opts;
  // The opaque carries key and seq, so the report needs no shared table.
  opts.on_delivery = [](const DeliveryReport& r) {
    auto bits = reinterpret_cast<uintptr_t>(r.opaque);
    int key = static_cast<int>(bits >> 40);
    int64_t seq = static_cast<int64_t>(bits & ((uintptr_t{1} << 40) - 1));
    std::string k = "k" + std::to_string(key);
    if (r.status.is_ok()) {
      emit("ACK " + k + " " + std::to_string(seq) + " " + std::to_string(r.partition.value()) + " " +
           std::to_string(r.offset.value()));
    } else {
      emit("NACK " + k + " " + std::to_string(seq) + " " + std::string(sluice::code_name(r.status.code())));
    }
  };
  auto p = q->make_producer(std::move(opts));
  if (!p.is_ok()) fail("make_producer", p.status());

  for (int64_t i = 0; count < 0 || i < count; ++i) {
    int key = first_key + static_cast<int>(i % key_count);
    int64_t seq = next[key]++;
    std::string k = "k" + std::to_string(key);
    std::string value = k + ":" + std::to_string(seq);
    // Announced before the send: whatever the log holds was announced, so the parent can tell a
    // value that was never sent.
    emit("TRY " + k + " " + std::to_string(seq));
    OutMessage m;
    m.topic = topic;
    m.key = std::string_view(k);
    m.value = value;
    auto t = (*p)->send(
        m, reinterpret_cast<void*>((static_cast<uintptr_t>(key) << 40) | static_cast<uintptr_t>(seq)));
    if (!t.is_ok()) fail("send", t.status());
    if (pause_us > 0 && i % 16 == 15) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
  Status st = (*p)->flush(std::chrono::seconds(30));
  if (!st.is_ok()) fail("flush", st);
  p->reset();
  emit("DONE");
  return 0;
}

// consume and drain share the loop; drain_timeout_ms < 0 means consume.
int consume(const std::vector<std::string>& args, int64_t drain_timeout_ms) {
  if (args.size() < 3) usage();
  const std::string& group = args[1];
  const std::string& topic = args[2];
  const auto max_poll = static_cast<size_t>(flag(args, "--max-poll", 64));
  const int64_t stop_after = flag(args, "--stop-after", -1);

  auto q = open(args[0]);
  ConsumerOptions opts;
  opts.group = group;
  opts.topics = {topic};
  opts.commit_interval = std::chrono::milliseconds(50);  // commit often, so kills land between commits
  opts.member_name = "crash-child-" + std::to_string(getpid());
  auto c = q->make_consumer(std::move(opts));
  if (!c.is_ok()) fail("make_consumer", c.status());
  Consumer& consumer = **c;
  emit("STARTED");

  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_timeout_ms);
  size_t assigned = 0;
  int64_t acked = 0;
  std::vector<Message> batch;
  for (;;) {
    batch.clear();
    Status st = consumer.poll(batch, max_poll, std::chrono::milliseconds(100));
    if (!st.is_ok()) fail("poll", st);
    if (size_t n = consumer.assignment().size(); n != assigned) {
      assigned = n;
      emit("ASSIGNED " + std::to_string(n));
    }
    for (const auto& m : batch) {
      // Printed before the ack: whatever was committed was seen by the parent.
      emit("MSG " + std::to_string(m.partition.value()) + " " + std::to_string(m.offset.value()) + " " +
           std::string(m.key.value_or("-")) + " " + std::string(m.value));
      st = consumer.ack(m);
      if (!st.is_ok()) fail("ack", st);
      if (++acked == stop_after) {
        st = consumer.commit();
        if (!st.is_ok()) fail("commit", st);
        emit("PAUSED");
        for (;;) pause();
      }
    }
    if (drain_timeout_ms >= 0 && batch.empty()) {
      st = consumer.commit();
      if (!st.is_ok()) fail("commit", st);
      auto info = q->admin().describe_group(group);
      if (!info.is_ok()) fail("describe_group", info.status());
      bool drained = assigned > 0;
      for (const auto& gp : info->partitions)
        if (gp.topic == topic && gp.lag != 0) drained = false;
      if (drained) {
        st = consumer.close();
        if (!st.is_ok()) fail("close", st);
        emit("DRAINED");
        return 0;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr, "crash_child: drain timed out with lag left\n");
        return 4;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  std::string mode = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (mode == "produce") return produce(args);
  if (mode == "consume") return consume(args, -1);
  if (mode == "drain") {
    if (args.size() < 4) usage();
    return consume(args, std::stoll(args[3]));
  }
  usage();
}
