#include "server/status_follower.h"

#include <chrono>
#include <vector>

#include "base/log.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"

namespace sluice::server {
namespace {

constexpr size_t kPollMax = 1000;
constexpr queue::Millis kPollWait{200};

std::string header_or(const queue::Message& m, std::string_view name, std::string_view fallback) {
  auto h = m.header(name);
  return std::string(h ? *h : fallback);
}

// The stage rank of a retry topic (see status_store.cc): parse 1, embed 2, index 3.
int retry_rank(std::string_view topic) {
  if (topic.starts_with(pipeline::kTopicParsed)) return 2;
  if (topic.starts_with(pipeline::kTopicEmbedded)) return 3;
  return 1;
}

std::vector<std::string> followed_topics() {
  std::vector<std::string> t = {pipeline::kTopicUpload, pipeline::kTopicParsed, pipeline::kTopicEmbedded,
                                pipeline::kTopicResults};
  for (const char* in : {pipeline::kTopicUpload, pipeline::kTopicParsed, pipeline::kTopicEmbedded}) {
    t.push_back(std::string(in) + pipeline::kRetrySuffix);
  }
  return t;
}

}  // namespace

Result<std::optional<StatusEvent>> status_event_of(const queue::Message& m) {
  StatusEvent e;
  e.at_ms = m.timestamp_ms;
  e.doc_id = std::string(m.key.value_or(""));
  e.trace_id = header_or(m, "trace_id", "");
  e.attempts = pipeline::attempt_of(m);
  const std::string_view topic = m.topic;
  if (topic == pipeline::kTopicUpload) {
    SLUICE_ASSIGN_OR_RETURN(pipeline::Task t, pipeline::parse_task(m.value));
    e.status = DocStatus::kQueued;
    e.doc_id = t.doc_id;
    if (!t.trace_id.empty()) e.trace_id = t.trace_id;
    e.source = t.source.uri;
    e.filename =
        t.metadata.is_object() && t.metadata.contains("filename") && t.metadata["filename"].is_string()
            ? t.metadata["filename"].get<std::string>()
            : t.source.key;
    e.task_json = std::string(m.value);
  } else if (topic.ends_with(pipeline::kRetrySuffix)) {
    e.status = DocStatus::kRetrying;
    e.stage_rank = retry_rank(topic);
    e.error_class = header_or(m, pipeline::kHeaderErrorClass, "");
    e.error_message = header_or(m, pipeline::kHeaderErrorMessage, "");
  } else if (topic == pipeline::kTopicParsed || topic == pipeline::kTopicEmbedded) {
    SLUICE_ASSIGN_OR_RETURN(auto work, pipeline::decode_work(m.value));
    e.status = topic == pipeline::kTopicParsed ? DocStatus::kParsed : DocStatus::kEmbedded;
    e.doc_id = work.first.task.doc_id;
    if (!work.first.task.trace_id.empty()) e.trace_id = work.first.task.trace_id;
    e.pages = work.first.pages;
    e.version = work.first.version;
  } else if (topic == pipeline::kTopicResults) {
    SLUICE_ASSIGN_OR_RETURN(pipeline::ResultNotification r, pipeline::parse_result(m.value));
    e.doc_id = r.doc_id;
    if (!r.trace_id.empty()) e.trace_id = r.trace_id;
    e.attempts = r.attempts;
    e.version = r.version;
    e.chunks = r.chunks;
    e.pages = r.pages;
    e.reason = r.reason;
    switch (r.status) {
      case pipeline::ResultStatus::kSuccess: e.status = DocStatus::kIndexed; break;
      case pipeline::ResultStatus::kSkipped: e.status = DocStatus::kSkipped; break;
      case pipeline::ResultStatus::kReview: e.status = DocStatus::kReview; break;
      case pipeline::ResultStatus::kFailed:
        e.status = DocStatus::kFailed;
        if (r.error) {
          e.error_class = std::string(error_class_name(r.error->error_class()));
          e.error_message = r.error->message();
        }
        break;
    }
  } else {
    return std::optional<StatusEvent>();
  }
  if (e.doc_id.empty())
    return Status::invalid_argument("a message on " + std::string(topic) + " has no doc_id");
  // A run without a trace_id (an older producer) is still one run per document and status.
  if (e.trace_id.empty()) e.trace_id = "untraced:" + e.doc_id;
  return std::optional<StatusEvent>(std::move(e));
}

StatusFollower::StatusFollower(queue::Queue& q, StatusStore& store, std::string group,
                               std::function<void(const pipeline::ResultNotification&)> on_result)
    : q_(q), store_(store), group_(std::move(group)), on_result_(std::move(on_result)) {}

StatusFollower::~StatusFollower() {
  stop();
}

Status StatusFollower::start() {
  queue::ConsumerOptions opts;
  opts.group = group_;
  opts.topics = followed_topics();
  opts.start_from = queue::StartFrom::kEarliest;
  auto c = q_.make_consumer(opts);
  if (!c.is_ok()) return c.status().with_context("status follower (group " + group_ + ")");
  consumer_ = std::move(*c);
  thread_ = std::thread([this] { run(); });
  return {};
}

void StatusFollower::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    (void)consumer_->commit();
    (void)consumer_->close();
    consumer_.reset();
  }
}

Status StatusFollower::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void StatusFollower::run() {
  std::vector<queue::Message> batch;
  std::vector<StatusEvent> events;
  auto backoff = std::chrono::milliseconds(100);
  while (!stop_) {
    batch.clear();
    Status st = consumer_->poll(batch, kPollMax, kPollWait);
    if (!st.is_ok()) {
      ++queue_errors_;
      if (st.error_class() != ErrorClass::kRetriable) {
        std::lock_guard<std::mutex> lock(mu_);
        failure_ = st.with_context("status follower");
        return;
      }
      log::warn("status follower: poll failed; trying again", {{"error", st.to_string()}});
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (batch.empty()) {
      caught_up_ = true;
      continue;
    }
    events.clear();
    for (const auto& m : batch) {
      auto e = status_event_of(m);
      if (!e.is_ok()) {
        log::warn("status follower: a message it cannot read", {{"topic", std::string(m.topic)},
                                                                {"offset", m.offset.value()},
                                                                {"error", e.status().to_string()}});
        continue;
      }
      if (*e) events.push_back(std::move(**e));
      if (on_result_ && m.topic == pipeline::kTopicResults) {
        if (auto r = pipeline::parse_result(m.value); r.is_ok()) on_result_(*r);
      }
    }
    // The offsets are acked only once the events are stored: a crash in between replays them,
    // and applying an event twice changes nothing.
    for (;;) {
      Status applied = store_.apply(events);
      if (applied.is_ok()) break;
      if (applied.error_class() != ErrorClass::kRetriable || stop_) {
        std::lock_guard<std::mutex> lock(mu_);
        failure_ = applied.with_context("status store");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    applied_ += events.size();
    for (const auto& m : batch) (void)consumer_->ack(m);
  }
}

}  // namespace sluice::server
