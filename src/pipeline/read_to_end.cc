#include "pipeline/read_to_end.h"

#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "base/clock.h"

namespace sluice::pipeline {
namespace {

constexpr queue::Millis kPollSlice{200};
constexpr size_t kPollBatch = 1000;
using Clock = std::chrono::steady_clock;

std::string reader_group_name() {
  static std::atomic<int> n{0};
  return "sluice-dlq-" + std::to_string(::getpid()) + "-" + std::to_string(wall_clock_ms()) + "-" +
         std::to_string(++n);
}

}  // namespace

Result<std::vector<queue::Message>> read_to_end(queue::Queue& q, const std::vector<queue::TopicInfo>& topics,
                                                std::chrono::seconds idle_limit) {
  std::vector<queue::Message> out;
  SLUICE_RETURN_IF_ERROR(for_each_to_end(
      q, topics, [&](queue::Message&& m) { out.push_back(std::move(m)); }, idle_limit));
  return out;
}

Status for_each_to_end(queue::Queue& q, const std::vector<queue::TopicInfo>& topics,
                       const std::function<void(queue::Message&&)>& on_message,
                       std::chrono::seconds idle_limit) {
  std::map<std::pair<std::string, int32_t>, int64_t> end;  // partitions not yet read to their end
  std::vector<std::string> names;
  for (const queue::TopicInfo& t : topics) {
    bool any = false;
    for (const queue::PartitionInfo& p : t.partition_info) {
      if (p.end <= p.start) continue;
      end[{t.name, p.partition.value()}] = p.end.value();
      any = true;
    }
    if (any) names.push_back(t.name);
  }
  if (names.empty()) return {};

  queue::ConsumerOptions copts;
  copts.group = reader_group_name();
  copts.topics = names;
  copts.start_from = queue::StartFrom::kEarliest;
  copts.ephemeral = true;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<queue::Consumer> consumer, q.make_consumer(std::move(copts)));
  auto last_progress = Clock::now();
  std::vector<queue::Message> batch;
  Status error;
  while (!end.empty()) {
    batch.clear();
    if (Status st = consumer->poll(batch, kPollBatch, kPollSlice); !st.is_ok()) {
      error = st;
      break;
    }
    if (batch.empty()) {
      if (Clock::now() - last_progress < idle_limit) continue;
      const auto& [tp, want] = *end.begin();
      error = Status::timeout("no message for " + std::to_string(idle_limit.count()) + " s while reading " +
                              tp.first + "/" + std::to_string(tp.second) + " up to offset " +
                              std::to_string(want) + "; try again");
      break;
    }
    last_progress = Clock::now();
    for (queue::Message& m : batch) {
      auto it = end.find({std::string(m.topic), m.partition.value()});
      if (it == end.end()) continue;  // a partition already read to its end: this one came later
      const bool last = m.offset.value() + 1 >= it->second;
      if (m.offset.value() < it->second) on_message(std::move(m));
      if (last) end.erase(it);
    }
  }
  Status closed = consumer->close();
  if (!error.is_ok()) return error;
  if (!closed.is_ok()) return closed.with_context("closing the reader");
  return {};
}

}  // namespace sluice::pipeline
