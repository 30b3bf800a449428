// CRC-32C (Castagnoli), the checksum of every record batch in the log.
// Debian 12 ships no CRC-32C library (google/crc32c arrived after bookworm), so this is the one
// piece written by hand: the SSE4.2 instruction where the CPU has it, a slicing table otherwise.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::crc32c {

// Continues a CRC over more bytes: extend(extend(0, a), b) == value(a ++ b).
uint32_t extend(uint32_t crc, const void* data, size_t n);
inline uint32_t value(const void* data, size_t n) {
  return extend(0, data, n);
}

}  // namespace sluice::crc32c
