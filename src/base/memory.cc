// See memory.h for why.
#include "base/memory.h"

#include <malloc.h>

#include <cstdlib>

namespace sluice {

void tune_allocator() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer malloc is ASan's own; mallopt would be a no-op or worse.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
#endif
}

}  // namespace sluice
