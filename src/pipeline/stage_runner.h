// StageRunner: the loop every pipeline stage shares. It consumes its input topic (and the topic's
// `.retry` twin) as one consumer group, hands each message to the stage's function on a pool of
// workers, produces the outputs, waits until the queue acknowledged them, and only then acks the
// input — at-least-once, and a crash anywhere repeats work rather than losing it.
//
// Order: messages with the same key go to the same worker, one after another, so one document's
// messages are processed and their outputs produced in order.
// Backpressure: at most max_in_flight messages are between poll and ack; a slow stage polls less.
// Failures: a retriable error goes to `<input>.retry` with attempt+1 and a not-before time
// (exponential backoff) and the input is acked, so the partition moves on; when the attempts are
// used up, or the error is not retriable (bad input, resource limit, fatal), the message goes to
// `<input>.dlq` with the error, and DeadLetterFn may add outputs (the failure notification).
//
// Ownership: the runner borrows the Queue; run() owns its consumer, producer and workers.
// Thread-safety: run() is called once, from one thread; the functions run on worker threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::pipeline {

struct Output {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Outcome {
  Status status;                // OK: produce outputs; error: retry or dead-letter by its class
  std::vector<Output> outputs;  // all acknowledged before the input is acked
  // Runs once the input is acked (on success only), e.g. to remove a claim-check blob the outputs
  // no longer need. Not run when the stage stops first: cleanup may be skipped, never done early.
  std::function<void()> after_ack;
};

// Sends one Output (its headers converted for the queue); what Producer::send returns.
[[nodiscard]] Result<uint64_t> send_output(queue::Producer& producer, const Output& o,
                                           void* opaque = nullptr);

using ProcessFn = std::function<Outcome(const queue::Message&)>;
// Outputs to produce when a message is given up (after its DLQ record), e.g. a failure result.
using DeadLetterFn = std::function<std::vector<Output>(const queue::Message&, const Status&, int attempts)>;

struct StageConfig {
  std::string name;         // "parse", "embed", ...
  std::string input_topic;  // "doc_upload", ...
  std::string group;        // default "sluice-<name>"
  size_t workers = 2;
  size_t max_in_flight = 64;
  int max_attempts = 3;
  queue::Millis backoff{1000};  // first retry delay; doubles each attempt
  queue::Millis max_backoff{60000};
  int32_t partitions = 1;  // for topics the runner creates (retry, dlq, when missing)
  queue::StartFrom start_from = queue::StartFrom::kEarliest;  // for a group with no commits yet
  queue::Millis commit_interval{200};                         // of the finished messages' offsets
};

struct StageStats {
  std::atomic<uint64_t> processed{0};      // inputs acked after success
  std::atomic<uint64_t> retried{0};        // sent to .retry
  std::atomic<uint64_t> dead_lettered{0};  // sent to .dlq
  std::atomic<uint64_t> in_flight{0};
};

// A stage's retry and dead-letter topics are its input topic with these suffixes.
inline constexpr const char* kRetrySuffix = ".retry";
inline constexpr const char* kDlqSuffix = ".dlq";

// Header names every stage uses.
inline constexpr const char* kHeaderAttempt = "attempt";
inline constexpr const char* kHeaderNotBefore = "not_before";
inline constexpr const char* kHeaderErrorClass = "error_class";
inline constexpr const char* kHeaderErrorMessage = "error_message";
inline constexpr const char* kHeaderOriginalTopic = "original_topic";
inline constexpr const char* kHeaderFailedStage = "failed_stage";
// On a retry copy: the consumer group that asked for it. Two stages may read one input (a custom
// stage next to parse on doc_upload): they share `<input>.retry`, and each takes only its own.
inline constexpr const char* kHeaderRetryGroup = "retry_group";

// The attempt number a message carries (1 when it has no attempt header).
int attempt_of(const queue::Message& m);

class StageRunner {
 public:
  StageRunner(queue::Queue& q, StageConfig cfg, ProcessFn fn, DeadLetterFn on_dead = {});
  // Runs until stop becomes true (then finishes and acks what is in flight) or the queue fails.
  [[nodiscard]] Status run(const std::atomic<bool>& stop);
  const StageStats& stats() const { return stats_; }

 private:
  queue::Queue& q_;
  StageConfig cfg_;
  ProcessFn fn_;
  DeadLetterFn on_dead_;
  StageStats stats_;
};

}  // namespace sluice::pipeline
