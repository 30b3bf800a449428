// The `amqp` queue backend: RabbitMQ (AMQP 0-9-1, librabbitmq).
// `amqp://[user:password@]host[:port][/vhost][?k=v&...]` (settings: amqp_client.h,
// docs/CONFIGURATION.md; how topics and groups map onto exchanges and queues: docs/amqp.md).
//
// What it promises (Capabilities): persistence (durable queues, persistent messages, and a send
// is reported delivered only once the broker confirmed it: publisher confirms), partitions (one
// queue per partition and group, keys placed by Kafka's murmur2 as partitioner.h), independent
// groups that each receive every message (fan-out through a direct exchange per topic) while the
// members of one group share each partition's queue, manual acks under a prefetch limit, and
// producers in many processes. What RabbitMQ cannot give it declares false: dense offsets and
// replay (an acknowledged message is gone), one owner per partition (so per-key order holds only
// with one member per group), history for a group that subscribes late (declare groups first:
// Admin::declare_group, which the pipeline does for every stage).
//
// Ownership: a Queue owns one connection for its Admin; each Producer owns two (publishing, and
// looking topics up) and each Consumer one. Thread-safety: as the Queue interface.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "base/status.h"
#include "config/property.h"
#include "queue/queue.h"

namespace sluice::queue::amqp {

// Opens a RabbitMQ queue; connects at once (a retriable error naming the broker when it does not
// answer, a BadInput when it refuses the login).
[[nodiscard]] Result<std::unique_ptr<Queue>> open_amqp_queue(std::string_view uri);

// The URI's settings table (docs/CONFIGURATION.md).
std::span<const config::Property> amqp_properties();

}  // namespace sluice::queue::amqp
