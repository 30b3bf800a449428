// The `redis` queue backend: Redis Streams. `redis://[user:password@]host[:port][/db][?k=v&...]`
// (settings: redis_client.h, docs/CONFIGURATION.md; how it maps onto streams: docs/redis.md).
//
// What it promises (Capabilities): persistence as the server is configured (AOF with
// appendfsync everysec or always, or RDB snapshots), per-key order (one stream per partition, keys
// placed by Kafka's murmur2 as partitioner.h, each partition owned by one member of a group at a
// time), partitions, replay and timestamp resets (XGROUP SETID), lag figures (XINFO/XPENDING),
// producers in many processes. A group's members split the partitions by leases that expire after
// `session_timeout_ms`; the member that takes a partition over claims its pending messages
// (XAUTOCLAIM), so what a dead member had not acknowledged is delivered again.
//
// Ownership: a Queue owns one connection for its Admin; each Producer and Consumer owns its own.
// Thread-safety: as the Queue interface.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "base/status.h"
#include "config/property.h"
#include "queue/queue.h"

namespace sluice::queue::redis {

// Opens a Redis queue; connects at once (a retriable error naming the server when it does not
// answer, a BadInput when it refuses the password).
[[nodiscard]] Result<std::unique_ptr<Queue>> open_redis_queue(std::string_view uri);

// The URI's settings table (docs/CONFIGURATION.md).
std::span<const config::Property> redis_properties();

}  // namespace sluice::queue::redis
