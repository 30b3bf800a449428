#include "queue/header_codec.h"

#include <cstdint>

namespace sluice::queue {
namespace {

void put_u32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out.append(b, 4);
}

bool get_u32(std::string_view& in, uint32_t& v) {
  if (in.size() < 4) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(in.data());
  v = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  in.remove_prefix(4);
  return true;
}

}  // namespace

void encode_headers(std::span<const Header> headers, std::string& out) {
  for (const Header& h : headers) {
    put_u32(out, static_cast<uint32_t>(h.key.size()));
    out.append(h.key);
    put_u32(out, static_cast<uint32_t>(h.value.size()));
    out.append(h.value);
  }
}

bool decode_headers(std::string_view blob, std::vector<Header>& out) {
  while (!blob.empty()) {
    uint32_t kl = 0, vl = 0;
    if (!get_u32(blob, kl) || blob.size() < kl) return false;
    std::string_view key = blob.substr(0, kl);
    blob.remove_prefix(kl);
    if (!get_u32(blob, vl) || blob.size() < vl) return false;
    out.push_back(Header{key, blob.substr(0, vl)});
    blob.remove_prefix(vl);
  }
  return true;
}

}  // namespace sluice::queue
