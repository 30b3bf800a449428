// StatusFollower: reads the pipeline's topics as one durable consumer group (<group>-status) and
// turns each message into a StatusEvent for the StatusStore: a task on doc_upload is "queued", a
// message on a stage's .retry topic "retrying", doc_parsed "parsed", doc_embedded "embedded", and
// the result on doc_results the final status with its counts and error. Because the group commits
// only after the store has the events, a restarted server picks up where it stopped, and a server
// run with --no-workers sees what `sluice worker` processes elsewhere do.
//
// Ownership: borrows the queue and the store, which must outlive it. Thread-safety: start() and
// stop() from one thread; the follower runs on its own thread; counters may be read from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "pipeline/envelope.h"
#include "queue/queue.h"
#include "server/status_store.h"

namespace sluice::server {

// The event a pipeline message stands for; nullopt for a message that says nothing about status.
// A malformed message is kBadInput (the follower logs it and moves on).
[[nodiscard]] Result<std::optional<StatusEvent>> status_event_of(const queue::Message& m);

class StatusFollower {
 public:
  // on_result sees every result notification (the server's metrics use it); may be empty.
  StatusFollower(queue::Queue& q, StatusStore& store, std::string group,
                 std::function<void(const pipeline::ResultNotification&)> on_result = {});
  ~StatusFollower();

  // Makes the consumer (errors name the group) and starts the thread.
  [[nodiscard]] Status start();
  void stop();
  // The first error that stopped the follower (OK while it runs).
  Status failure() const;
  // Messages applied so far, and queue errors seen (retried).
  uint64_t applied() const { return applied_.load(); }
  uint64_t queue_errors() const { return queue_errors_.load(); }
  // True once the follower has read to the end of its topics at least once since start().
  bool caught_up() const { return caught_up_.load(); }

 private:
  void run();

  queue::Queue& q_;
  StatusStore& store_;
  std::string group_;
  std::function<void(const pipeline::ResultNotification&)> on_result_;
  std::unique_ptr<queue::Consumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> caught_up_{false};
  std::atomic<uint64_t> applied_{0}, queue_errors_{0};
  mutable std::mutex mu_;
  Status failure_;  // guarded by mu_
};

}  // namespace sluice::server
