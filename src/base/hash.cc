#include "base/hash.h"

#include <xxhash.h>

#include <cstdio>
#include <vector>

#include "base/env.h"

namespace sluice {
namespace {
std::string to_hex(XXH128_hash_t h) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}
}  // namespace

std::string hash_hex(std::string_view data) {
  return to_hex(XXH3_128bits(data.data(), data.size()));
}

struct Hasher::State {
  XXH3_state_t* s = XXH3_createState();
  ~State() { XXH3_freeState(s); }
};

Hasher::Hasher() : state_(std::make_unique<State>()) {
  XXH3_128bits_reset(state_->s);
}
Hasher::~Hasher() = default;
void Hasher::update(std::string_view data) {
  XXH3_128bits_update(state_->s, data.data(), data.size());
}
std::string Hasher::hex() const {
  return to_hex(XXH3_128bits_digest(state_->s));
}

Result<std::string> hash_file(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(auto f, Env::posix()->open(path, {.read_only = true}));
  Hasher h;
  // One buffer per thread, reused: a fresh 1 MiB buffer per file is a fresh mapping to fault in.
  thread_local std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(size_t n, f->read_at(off, buf.size(), buf.data()));
    if (n == 0) break;
    h.update(std::string_view(buf.data(), n));
    off += n;
  }
  return h.hex();
}

}  // namespace sluice
