// `sluice tail TOPIC`: prints a topic's messages as JSON lines, as a throwaway reader or as a
// member of a named consumer group (which then commits what it printed).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"

namespace sluice::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBatch = 500;
// Polls are short so a stop signal or the --timeout is noticed quickly.
constexpr queue::Millis kPollSlice{200};
// After this long without an assignment, say why nothing is printed.
constexpr auto kStandbyNotice = std::chrono::seconds(3);

struct TailFlags {
  QueueFlags queue;
  std::string topic;
  std::string group;
  bool from_beginning = false;
  int64_t max = 0;       // 0: no limit
  double timeout_s = 0;  // 0: no idle timeout
};

nlohmann::ordered_json message_json(const queue::Message& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["topic"] = std::string(m.topic);
  j["partition"] = m.partition.value();
  j["offset"] = m.offset.value();
  j["timestamp"] = m.timestamp_ms;
  j["key"] = m.key ? bytes_to_json(*m.key) : nlohmann::ordered_json(nullptr);
  j["value"] = bytes_to_json(m.value);
  nlohmann::ordered_json headers = nlohmann::ordered_json::object();
  for (const queue::Header& h : m.headers) headers[std::string(h.key)] = bytes_to_json(h.value);
  j["headers"] = std::move(headers);
  return j;
}

std::string throwaway_group_name() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return "sluice-tail-" + std::to_string(::getpid()) + "-" + std::to_string(ms);
}

int run_tail(const TailFlags& f) {
  if (Status st = queue::validate_topic_name(f.topic); !st.is_ok()) return report(st);
  auto q = open_queue(f.queue);
  if (!q.is_ok()) return report(q.status());
  // Fail fast and clearly on a topic that does not exist rather than wait for it forever.
  if (auto info = (*q)->admin().describe_topic(f.topic); !info.is_ok()) return report(info.status());

  const bool named_group = !f.group.empty();
  queue::ConsumerOptions copts;
  copts.group = named_group ? f.group : throwaway_group_name();
  copts.topics = {f.topic};
  copts.ephemeral = !named_group;  // a throwaway group leaves no offsets behind
  // As kafka-console-consumer: --from-beginning only matters where the group has no commit yet.
  copts.start_from = f.from_beginning ? queue::StartFrom::kEarliest : queue::StartFrom::kLatest;
  auto consumer_or = (*q)->make_consumer(std::move(copts));
  if (!consumer_or.is_ok()) return report(consumer_or.status());
  std::unique_ptr<queue::Consumer> consumer = std::move(consumer_or).value();

  install_stop_signals();
  const auto started = Clock::now();
  const auto idle_limit =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.timeout_s));
  auto last_message = started;
  bool standby_noticed = false;
  int64_t printed = 0;
  Status error;
  int write_errno = 0;
  std::vector<queue::Message> batch;
  while (!stop_requested() && (f.max == 0 || printed < f.max)) {
    queue::Millis wait = kPollSlice;
    if (f.timeout_s > 0) {
      auto left = last_message + idle_limit - Clock::now();
      if (left <= Clock::duration::zero()) break;
      wait = std::min(wait, std::chrono::ceil<queue::Millis>(left));
    }
    size_t want = f.max == 0 ? kBatch : static_cast<size_t>(std::min<int64_t>(kBatch, f.max - printed));
    batch.clear();
    if (Status st = consumer->poll(batch, want, wait); !st.is_ok()) {
      error = st;
      break;
    }
    if (batch.empty()) {
      if (named_group && !standby_noticed && Clock::now() - started > kStandbyNotice &&
          consumer->assignment().empty()) {
        standby_noticed = true;
        std::fprintf(stderr, "sluice: group '%s' is served by another process; waiting as a standby\n",
                     f.group.c_str());
      }
      continue;
    }
    if (batch.size() > want) batch.resize(want);
    last_message = Clock::now();
    std::string out;
    for (const queue::Message& m : batch) out += dump_line(message_json(m));
    if (!write_stdout(out)) {
      write_errno = errno;
      break;
    }
    // Ack only what reached stdout: the group's committed offset never skips an unprinted message.
    if (named_group) {
      for (const queue::Message& m : batch) {
        if (Status st = consumer->ack(m); !st.is_ok()) error = st;
      }
      if (!error.is_ok()) break;
    }
    printed += static_cast<int64_t>(batch.size());
  }

  Status closed = consumer->close();
  consumer.reset();
  int code = kExitOk;
  if (!error.is_ok()) code = report(error);
  if (!closed.is_ok()) {
    int c = report(closed.with_context("closing the consumer"));
    if (code == kExitOk) code = c;
  }
  // A reader that went away (`sluice tail ... | head`) is a normal end, not an error.
  if (write_errno != 0 && write_errno != EPIPE) {
    int c = report(Status::io_error(std::string("writing to stdout: ") + std::strerror(write_errno)));
    if (code == kExitOk) code = c;
  }
  return code;
}

}  // namespace

Command add_tail_command(CLI::App& root) {
  auto flags = std::make_shared<TailFlags>();
  CLI::App* app = root.add_subcommand("tail", "Print a topic's messages as JSON lines");
  app->add_option("TOPIC", flags->topic, "The topic to read")->required();
  add_queue_options(*app, flags->queue);
  app->add_option("--group", flags->group,
                  "Read as this consumer group and commit what is printed (default: a throwaway group)");
  app->add_flag("--from-beginning", flags->from_beginning,
                "Start from the earliest message where the group has no committed offset (default: latest)");
  app->add_option("--max", flags->max, "Stop after N messages")->check(CLI::PositiveNumber);
  app->add_option("--timeout", flags->timeout_s, "Stop after S seconds without a message")
      ->check(CLI::PositiveNumber);
  return {app, [flags] { return run_tail(*flags); }};
}

}  // namespace sluice::cli
