// Content hashing for identities: doc_id (hash of the source URI), version (hash of the content)
// and chunk_id (hash of doc_id, version and position). XXH3-128 from Debian's libxxhash: fast,
// stable across platforms and releases, and wide enough that collisions are not a concern here.
// Thread-safety: functions are pure; a Hasher is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice {

// 32 lowercase hex digits of XXH3-128.
std::string hash_hex(std::string_view data);

// Incremental hashing of data that arrives in pieces (a file read in blocks).
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view data);
  std::string hex() const;  // of everything so far

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Hashes a file in 1 MiB blocks (memory stays flat for any size).
[[nodiscard]] Result<std::string> hash_file(const std::string& path);

}  // namespace sluice
