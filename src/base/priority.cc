#include "base/priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sluice {

Status set_thread_nice(int nice) {
  if (nice < kMinNice || nice > kMaxNice)
    return Status::invalid_argument("nice value " + std::to_string(nice) + " is outside " +
                                    std::to_string(kMinNice) + ".." + std::to_string(kMaxNice));
  // PRIO_PROCESS with a thread id is Linux's per-thread nice (see setpriority(2), BUGS).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0)
    return Status::resource_limit("cannot set the thread's nice value to " + std::to_string(nice) + ": " +
                                  std::strerror(errno));
  return Status::ok();
}

}  // namespace sluice
