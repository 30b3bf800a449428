#include "pipeline/stage_runner.h"

#include <charconv>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>

#include "base/log.h"

namespace sluice::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t header_int(const queue::Message& m, std::string_view name, int64_t dflt) {
  auto v = m.header(name);
  if (!v) return dflt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  return ec == std::errc() && ptr == v->data() + v->size() ? n : dflt;
}

// One message between poll and ack.
struct InFlight {
  queue::Message msg;
  std::atomic<int> pending{0};  // outputs not yet acknowledged, +1 while they are being sent
  std::mutex mu;
  Status failure;  // a delivery that failed (under mu)
  std::function<void()> after_ack;
};

struct Worker {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<InFlight*> queue;
  std::thread thread;
};

// The state of one StageRunner::run().
class Run {
 public:
  Run(queue::Queue& q, const StageConfig& cfg, const ProcessFn& fn, const DeadLetterFn& on_dead,
      StageStats& stats)
      : q_(q), cfg_(cfg), fn_(fn), on_dead_(on_dead), stats_(stats) {}

  Status go(const std::atomic<bool>& stop);

 private:
  void worker_loop(Worker& w);
  void handle(InFlight* f);
  std::vector<Output> failure_outputs(const queue::Message& m, const Status& st);
  void send_all(InFlight* f, const std::vector<Output>& outs);
  void on_delivery(const queue::DeliveryReport& r);
  void complete(InFlight* f);
  void fail(const Status& st) {
    std::lock_guard<std::mutex> l(fatal_mu_);
    if (fatal_.is_ok()) fatal_ = st;
  }
  bool failed() {
    std::lock_guard<std::mutex> l(fatal_mu_);
    return !fatal_.is_ok();
  }

  queue::Queue& q_;
  const StageConfig& cfg_;
  const ProcessFn& fn_;
  const DeadLetterFn& on_dead_;
  StageStats& stats_;
  std::string retry_topic_, dlq_topic_, group_;
  std::unique_ptr<queue::Consumer> consumer_;
  std::unique_ptr<queue::Producer> producer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> workers_stop_{false};
  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  std::mutex fatal_mu_;
  Status fatal_;
};

Status Run::go(const std::atomic<bool>& stop) {
  retry_topic_ = cfg_.input_topic + kRetrySuffix;
  dlq_topic_ = cfg_.input_topic + kDlqSuffix;
  queue::Admin& admin = q_.admin();
  for (const auto& t : {cfg_.input_topic, retry_topic_, dlq_topic_}) {
    SLUICE_RETURN_IF_ERROR(queue::ensure_topic(admin, t, {.partitions = cfg_.partitions}));
  }
  SLUICE_ASSIGN_OR_RETURN(
      producer_,
      q_.make_producer({.on_delivery = [this](const queue::DeliveryReport& r) { on_delivery(r); }}));
  queue::ConsumerOptions copts;
  copts.group = cfg_.group.empty() ? "sluice-" + cfg_.name : cfg_.group;
  group_ = copts.group;
  copts.topics = {cfg_.input_topic, retry_topic_};
  // Before the first retry is produced: on backends without late groups it must find the group.
  SLUICE_RETURN_IF_ERROR(admin.declare_group(copts.group, copts.topics));
  copts.start_from = cfg_.start_from;
  copts.commit_interval = cfg_.commit_interval;
  SLUICE_ASSIGN_OR_RETURN(consumer_, q_.make_consumer(copts));
  for (size_t i = 0; i < std::max<size_t>(cfg_.workers, 1); ++i) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* w = workers_.back().get();
    w->thread = std::thread([this, w] { worker_loop(*w); });
  }
  // Retry messages wait here until their not-before time, without holding up the input topic.
  using Delayed = std::pair<int64_t, InFlight*>;
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed;
  auto dispatch = [&](InFlight* f) {
    size_t h = std::hash<std::string_view>{}(f->msg.key.value_or(std::string_view()));
    Worker& w = *workers_[h % workers_.size()];
    std::lock_guard<std::mutex> l(w.mu);
    w.queue.push_back(f);
    w.cv.notify_one();
  };
  std::vector<queue::Message> batch;
  Status poll_status;
  while (!stop.load() && !failed()) {
    const int64_t now = now_ms();
    while (!delayed.empty() && delayed.top().first <= now) {
      dispatch(delayed.top().second);
      delayed.pop();
    }
    size_t in_flight = stats_.in_flight.load();
    if (in_flight >= cfg_.max_in_flight) {
      std::unique_lock<std::mutex> l(flight_mu_);
      flight_cv_.wait_for(l, std::chrono::milliseconds(20),
                          [&] { return stats_.in_flight.load() < cfg_.max_in_flight; });
      continue;
    }
    batch.clear();
    int64_t wait = delayed.empty() ? 100 : std::clamp<int64_t>(delayed.top().first - now, 1, 100);
    poll_status = consumer_->poll(batch, cfg_.max_in_flight - in_flight, queue::Millis(wait));
    if (!poll_status.is_ok()) {
      fail(poll_status.with_context("stage " + cfg_.name + " polling " + cfg_.input_topic));
      break;
    }
    for (auto& m : batch) {
      if (m.topic == retry_topic_) {
        // Another group's retry (it shares this input): not ours to do, and not to be redone.
        if (auto g = m.header(kHeaderRetryGroup); g && *g != group_) {
          if (Status st = consumer_->ack(m); !st.is_ok()) fail(st);
          continue;
        }
      }
      auto* f = new InFlight{std::move(m)};
      stats_.in_flight.fetch_add(1);
      int64_t not_before = f->msg.topic == retry_topic_ ? header_int(f->msg, kHeaderNotBefore, 0) : 0;
      if (not_before > now_ms()) {
        delayed.emplace(not_before, f);
      } else {
        dispatch(f);
      }
    }
  }
  // Stop: delayed messages stay unacked (they come back next time); the rest finish.
  while (!delayed.empty()) {
    delete delayed.top().second;
    delayed.pop();
    stats_.in_flight.fetch_sub(1);
  }
  workers_stop_ = true;
  for (auto& w : workers_) {
    {
      std::lock_guard<std::mutex> l(w->mu);
      w->cv.notify_all();
    }
    w->thread.join();
  }
  Status flushed = producer_->flush(queue::Millis(60000));
  {
    std::unique_lock<std::mutex> l(flight_mu_);
    flight_cv_.wait_for(l, std::chrono::seconds(60), [&] { return stats_.in_flight.load() == 0; });
  }
  Status closed = consumer_->close();
  producer_.reset();
  std::lock_guard<std::mutex> l(fatal_mu_);
  if (!fatal_.is_ok()) return fatal_;
  if (!flushed.is_ok() && flushed.code() == Code::kTimeout) return flushed;
  return closed;
}

void Run::worker_loop(Worker& w) {
  for (;;) {
    InFlight* f = nullptr;
    {
      std::unique_lock<std::mutex> l(w.mu);
      w.cv.wait(l, [&] { return !w.queue.empty() || workers_stop_.load(); });
      if (w.queue.empty()) return;  // stopping, and nothing left for this worker
      f = w.queue.front();
      w.queue.pop_front();
    }
    handle(f);
  }
}

void Run::handle(InFlight* f) {
  Outcome out;
  try {
    out = fn_(f->msg);
  } catch (const std::exception& e) {
    out.status = Status::internal(std::string("stage ") + cfg_.name + " threw: " + e.what());
  } catch (...) {
    out.status = Status::internal("stage " + cfg_.name + " threw a non-standard exception");
  }
  if (out.status.is_ok()) {
    f->after_ack = std::move(out.after_ack);
    send_all(f, out.outputs);
  } else {
    send_all(f, failure_outputs(f->msg, out.status));
  }
}

std::vector<Output> Run::failure_outputs(const queue::Message& m, const Status& st) {
  const int attempt = attempt_of(m);
  Output o;
  o.key = std::string(m.key.value_or(std::string_view()));
  o.value = std::string(m.value);
  for (const auto& h : m.headers) {
    if (h.key == kHeaderAttempt || h.key == kHeaderNotBefore || h.key == kHeaderErrorClass ||
        h.key == kHeaderErrorMessage || h.key == kHeaderOriginalTopic || h.key == kHeaderFailedStage ||
        h.key == kHeaderRetryGroup) {
      continue;
    }
    o.headers.emplace_back(std::string(h.key), std::string(h.value));
  }
  o.headers.emplace_back(kHeaderErrorClass, std::string(error_class_name(st.error_class())));
  o.headers.emplace_back(kHeaderErrorMessage, st.message());
  o.headers.emplace_back(kHeaderOriginalTopic, cfg_.input_topic);
  std::vector<Output> outs;
  if (st.error_class() == ErrorClass::kRetriable && attempt < cfg_.max_attempts) {
    auto delay = cfg_.backoff.count() << std::min(attempt - 1, 20);
    delay = std::min<int64_t>(delay, cfg_.max_backoff.count());
    o.topic = retry_topic_;
    o.headers.emplace_back(kHeaderAttempt, std::to_string(attempt + 1));
    o.headers.emplace_back(kHeaderNotBefore, std::to_string(now_ms() + delay));
    o.headers.emplace_back(kHeaderRetryGroup, group_);
    stats_.retried.fetch_add(1);
    sluice::log::warn("stage will retry", {{"stage", cfg_.name},
                                           {"key", o.key},
                                           {"attempt", attempt},
                                           {"error", st.to_string()},
                                           {"delay_ms", delay}});
    outs.push_back(std::move(o));
    return outs;
  }
  o.topic = dlq_topic_;
  o.headers.emplace_back(kHeaderAttempt, std::to_string(attempt));
  o.headers.emplace_back(kHeaderFailedStage, cfg_.name);
  stats_.dead_lettered.fetch_add(1);
  sluice::log::error(
      "stage gave up on a message",
      {{"stage", cfg_.name}, {"key", o.key}, {"attempts", attempt}, {"error", st.to_string()}});
  outs.push_back(std::move(o));
  if (on_dead_) {
    for (auto& extra : on_dead_(m, st, attempt)) outs.push_back(std::move(extra));
  }
  return outs;
}

void Run::send_all(InFlight* f, const std::vector<Output>& outs) {
  f->pending.store(static_cast<int>(outs.size()) + 1);
  for (const auto& o : outs) {
    auto t = send_output(*producer_, o, f);
    if (!t.is_ok()) {
      // Nothing was queued for this output: count it as delivered, but failed.
      {
        std::lock_guard<std::mutex> l(f->mu);
        if (f->failure.is_ok()) f->failure = t.status().with_context("producing to " + o.topic);
      }
      if (f->pending.fetch_sub(1) == 1) complete(f);
    }
  }
  if (f->pending.fetch_sub(1) == 1) complete(f);
}

void Run::on_delivery(const queue::DeliveryReport& r) {
  auto* f = static_cast<InFlight*>(r.opaque);
  if (!r.status.is_ok()) {
    std::lock_guard<std::mutex> l(f->mu);
    if (f->failure.is_ok()) f->failure = r.status;
  }
  if (f->pending.fetch_sub(1) == 1) complete(f);
}

void Run::complete(InFlight* f) {
  Status failure;
  {
    std::lock_guard<std::mutex> l(f->mu);
    failure = f->failure;
  }
  if (failure.is_ok()) {
    Status st = consumer_->ack(f->msg);
    if (!st.is_ok()) {
      fail(st);
    } else if (f->after_ack) {
      f->after_ack();
    }
    stats_.processed.fetch_add(1);
  } else {
    // An output could not be stored: leave the input unacked (it comes back after a restart)
    // and stop the stage, since the queue is not taking writes.
    fail(failure.with_context("stage " + cfg_.name));
  }
  delete f;
  stats_.in_flight.fetch_sub(1);
  std::lock_guard<std::mutex> l(flight_mu_);
  flight_cv_.notify_all();
}

}  // namespace

Result<uint64_t> send_output(queue::Producer& producer, const Output& o, void* opaque) {
  std::vector<queue::Header> hs;
  hs.reserve(o.headers.size());
  for (const auto& [k, v] : o.headers) hs.push_back({k, v});
  queue::OutMessage om;
  om.topic = o.topic;
  if (!o.key.empty()) om.key = o.key;
  om.value = o.value;
  om.headers = hs;
  return producer.send(om, opaque);
}

int attempt_of(const queue::Message& m) {
  return static_cast<int>(header_int(m, kHeaderAttempt, 1));
}

StageRunner::StageRunner(queue::Queue& q, StageConfig cfg, ProcessFn fn, DeadLetterFn on_dead)
    : q_(q), cfg_(std::move(cfg)), fn_(std::move(fn)), on_dead_(std::move(on_dead)) {}

Status StageRunner::run(const std::atomic<bool>& stop) {
  Run r(q_, cfg_, fn_, on_dead_, stats_);
  return r.go(stop);
}

}  // namespace sluice::pipeline
