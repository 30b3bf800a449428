// Kafka's default partitioner for keyed messages: murmur2 of the key bytes, made positive, modulo
// the partition count. The same key lands on the same partition number in `log` and in Kafka (as a
// Java producer would place it), so data moves between the two without reshuffling.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/ids.h"

namespace sluice::queue {

// Kafka's Utils.murmur2 (seed 0x9747b28c).
int32_t murmur2(std::string_view data);

inline PartitionId partition_for_key(std::string_view key, int32_t partitions) {
  auto positive = static_cast<uint32_t>(murmur2(key)) & 0x7fffffffu;
  return PartitionId(static_cast<int32_t>(positive % static_cast<uint32_t>(partitions)));
}

}  // namespace sluice::queue
