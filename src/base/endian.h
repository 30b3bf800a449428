// Fixed-width little-endian integers in byte buffers: what every sluice format on disk or on the
// wire uses (the log's records, packed message headers). Stateless inline functions; thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::endian {

// The formats are little endian; memcpy is the encoding only on a little-endian host.
static_assert(std::endian::native == std::endian::little, "sluice's formats assume a little-endian host");

inline void put_u16(char* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline void put_u32(char* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
inline void put_u64(char* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
inline uint16_t get_u16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Appends v to out.
inline void append_u32(std::string& out, uint32_t v) {
  char b[4];
  put_u32(b, v);
  out.append(b, 4);
}
// Reads a u32 from the front of in and drops it; false when in is shorter.
inline bool take_u32(std::string_view& in, uint32_t& v) {
  if (in.size() < 4) return false;
  v = get_u32(in.data());
  in.remove_prefix(4);
  return true;
}

}  // namespace sluice::endian
