// The `kafka` queue backend: Apache Kafka through librdkafka. `kafka://host1:9092,host2:9092?...`
// (settings and their precedence: kafka_config.h).
//
// What it promises (Capabilities): persistence, per-key order (idempotent producer, acks=all),
// partitions (keys placed by Kafka's murmur2, as partitioner.h), replay and timestamp resets, lag
// figures, producers in many processes. Consumers commit only acknowledged offsets (manual offset
// store), rebalance cooperatively and commit what was acknowledged before giving a partition up.
//
// Ownership: a Queue owns a Cluster (settings, a metadata/admin client); each Producer and
// Consumer owns its own librdkafka client. Thread-safety: as the Queue interface.
//
// Clusters that lack an admin request: librdkafka 2.0.2's mock cluster implements neither
// CreateTopics nor ListGroups/DescribeGroups nor timestamp lookups. create_topic then uses a topic
// creator registered for the cluster's bootstrap servers (the tests' in-process mock registers
// one), describe_group/list_groups fall back on what this process's consumers know, and a
// timestamp reset scans the partition. docs/kafka.md lists what this means for a person.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::queue::kafka {

// Opens a Kafka queue from a kafka:// URI and the process environment. Connects to the cluster
// (fails with a retriable error naming the brokers when none answers within the socket timeout).
[[nodiscard]] Result<std::unique_ptr<Queue>> open_kafka_queue(std::string_view uri);

// Creates a topic on a cluster that does not implement CreateTopics.
using TopicCreator = std::function<Status(std::string_view topic, int32_t partitions, int16_t replication)>;
// Registers creator for the cluster whose bootstrap.servers string is exactly bootstrap_servers,
// replacing an earlier one; an empty creator removes the registration.
void register_topic_creator(const std::string& bootstrap_servers, TopicCreator creator);

}  // namespace sluice::queue::kafka
