// Message headers packed into one byte string, for backends whose messages carry a single opaque
// field for them (a Redis stream entry's field, an AMQP header value): per header, u32 key length,
// key, u32 value length, value (little endian). Keys and values are binary-safe, order and
// duplicates are kept. Stateless functions; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "queue/queue.h"

namespace sluice::queue {

void encode_headers(std::span<const Header> headers, std::string& out);
// Appends views into blob to out; false on a malformed blob.
[[nodiscard]] bool decode_headers(std::string_view blob, std::vector<Header>& out);

}  // namespace sluice::queue
