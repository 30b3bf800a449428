#include "queue/header_codec.h"

#include <cstdint>

#include "base/endian.h"

namespace sluice::queue {
using endian::append_u32;
using endian::take_u32;

void encode_headers(std::span<const Header> headers, std::string& out) {
  for (const Header& h : headers) {
    append_u32(out, static_cast<uint32_t>(h.key.size()));
    out.append(h.key);
    append_u32(out, static_cast<uint32_t>(h.value.size()));
    out.append(h.value);
  }
}

bool decode_headers(std::string_view blob, std::vector<Header>& out) {
  while (!blob.empty()) {
    uint32_t kl = 0, vl = 0;
    if (!take_u32(blob, kl) || blob.size() < kl) return false;
    std::string_view key = blob.substr(0, kl);
    blob.remove_prefix(kl);
    if (!take_u32(blob, vl) || blob.size() < vl) return false;
    out.push_back(Header{key, blob.substr(0, vl)});
    blob.remove_prefix(vl);
  }
  return true;
}

}  // namespace sluice::queue
