// CPU priority of the calling thread, for work that must yield to what answers users: `sluice
// serve` runs its in-process stages at a higher nice value so that uploads are accepted and
// answered at once while a backlog is parsed and embedded on the same cores (the point of putting
// a queue between the API and the work).
//
// Linux keeps the nice value per thread, and threads and processes a thread starts inherit it, so
// calling this first on a stage's thread covers the consumers, workers and children it starts.
// Thread-safety: affects only the calling thread; call it from any thread.
#pragma once

#include "base/status.h"

namespace sluice {

// Nice values a thread may be set to: 0 (the default priority) to 19 (runs only when nothing of
// lower niceness wants the CPU).
inline constexpr int kMinNice = 0;
inline constexpr int kMaxNice = 19;

// Sets the calling thread's nice value (kMinNice..kMaxNice). Raising it needs no privilege;
// lowering it below the current value does, and then fails with the system's reason.
[[nodiscard]] Status set_thread_nice(int nice);

}  // namespace sluice
