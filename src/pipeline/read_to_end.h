// Reading whole topics without disturbing anyone: what `sluice dlq` and the server's dead-letter
// view need. An ephemeral consumer (no group is created or moved) reads each partition from its
// first stored offset up to the end offset that describe_topic gave, then stops.
// Thread-safety: a free function; each call has its own consumer.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::pipeline {

// Calls on_message for every message stored in the topics' partitions below the end offsets in
// `topics` (from describe_topic), one at a time, so a caller that keeps a summary (the latest
// result per document, the live blob keys) holds no more than that. Gives up with kTimeout,
// naming the partition, after idle_limit without a message.
[[nodiscard]] Status for_each_to_end(queue::Queue& q, const std::vector<queue::TopicInfo>& topics,
                                     const std::function<void(queue::Message&&)>& on_message,
                                     std::chrono::seconds idle_limit = std::chrono::seconds(10));

// The same, collected (for views that show the messages themselves: dead letters).
[[nodiscard]] Result<std::vector<queue::Message>> read_to_end(
    queue::Queue& q, const std::vector<queue::TopicInfo>& topics,
    std::chrono::seconds idle_limit = std::chrono::seconds(10));

}  // namespace sluice::pipeline
