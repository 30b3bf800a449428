// Unit tests for base/priority.h: the nice value is the calling thread's alone, and out-of-range
// values are refused before the system is asked.
#include "base/priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace sluice {
namespace {

int nice_of(pid_t tid) {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
}

TEST(ThreadNice, RaisesOnlyTheCallingThreadAndWhatItStarts) {
  const int before = nice_of(::gettid());
  int set = -100, inherited = -100;
  Status st;
  std::thread t([&] {
    st = set_thread_nice(7);
    set = nice_of(::gettid());
    std::thread child([&] { inherited = nice_of(::gettid()); });
    child.join();
  });
  t.join();
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(set, 7);
  EXPECT_EQ(inherited, 7);  // a thread started by a niced thread inherits its value
  EXPECT_EQ(nice_of(::gettid()), before);
}

TEST(ThreadNice, OutOfRangeIsBadInput) {
  for (int n : {-1, 20, 1000}) {
    Status st = set_thread_nice(n);
    EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << n;
    EXPECT_NE(st.message().find("0..19"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace sluice
