// ProcessPool: answers come back; a hang, a crash, an exit and a memory blow-up each fail only
// their own call with the right class, and the pool keeps serving with a replacement child. A
// child's start is not charged to the call's budget; one that never gets ready fails the call.
#include "pipeline/process_pool.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace sluice::pipeline {
namespace {

ProcessPoolOptions options() {
  ProcessPoolOptions o;
  o.program = SLUICE_POOL_CHILD;
  o.size = 2;
#if defined(__SANITIZE_ADDRESS__)
  // A child that crashes under AddressSanitizer writes its report before it exits: on a loaded
  // 2-core machine that took longer than 500 ms once, and the crash was counted as a hang.
  o.timeout = std::chrono::milliseconds(3000);
#else
  o.timeout = std::chrono::milliseconds(500);
#endif
  o.memory_limit = 0;
  return o;
}

TEST(ProcessPool, AnswersAndSurvivesMisbehavingChildren) {
  auto pool = ProcessPool::start(options());
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  auto& p = **pool;
  auto r = p.call("echo 你好");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, "你好");

  auto fail = p.call("fail");
  ASSERT_FALSE(fail.is_ok());
  EXPECT_EQ(fail.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(fail.status().message(), "this input is bad");

  auto hang = p.call("hang");
  ASSERT_FALSE(hang.is_ok());
  EXPECT_EQ(hang.status().error_class(), ErrorClass::kResourceLimit);
  EXPECT_NE(hang.status().message().find("time budget"), std::string::npos) << hang.status().message();

  auto crash = p.call("crash");
  ASSERT_FALSE(crash.is_ok());
  EXPECT_EQ(crash.status().error_class(), ErrorClass::kFatal);
  EXPECT_NE(crash.status().message().find("the worker process"), std::string::npos)
      << crash.status().message();
#if !defined(__SANITIZE_ADDRESS__)
  // (AddressSanitizer catches the SIGSEGV itself and ends the child its own way.)
  EXPECT_NE(crash.status().message().find("signal 11"), std::string::npos) << crash.status().message();
#endif

  auto ex = p.call("exit");
  ASSERT_FALSE(ex.is_ok());
  EXPECT_NE(ex.status().message().find("exited with status 3"), std::string::npos) << ex.status().message();

  // The pool goes on with replacement children, from several threads at once.
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      for (int k = 0; k < 25; ++k) {
        auto e = p.call("echo " + std::to_string(i * 100 + k));
        if (e.is_ok() && *e == std::to_string(i * 100 + k)) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(p.spawned(), 2u + 3u);  // the first two, and one replacement per broken child
}

TEST(ProcessPool, MemoryBudgetFailsOnlyThatCall) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space; RLIMIT_AS cannot apply";
#endif
  auto o = options();
  o.memory_limit = 256ull << 20;
  o.timeout = std::chrono::seconds(10);
  auto pool = ProcessPool::start(o);
  ASSERT_TRUE(pool.is_ok());
  auto big = (*pool)->call("alloc " + std::to_string(1ull << 30));
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.status().error_class(), ErrorClass::kResourceLimit) << big.status().to_string();
  auto small = (*pool)->call("alloc 1000000");
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  EXPECT_EQ(*small, "1000000");
}

// Sets an environment variable for the children started in its scope.
class ChildEnv {
 public:
  ChildEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ChildEnv() { ::unsetenv(name_); }
  ChildEnv(const ChildEnv&) = delete;
  ChildEnv& operator=(const ChildEnv&) = delete;

 private:
  const char* name_;
};

TEST(ProcessPool, ASlowStartIsNotChargedToTheFirstCall) {
  auto o = options();
  const auto start = o.timeout * 2;  // a child start twice the call's budget
  ChildEnv slow("POOL_CHILD_START_MS", std::to_string(start.count()).c_str());
  auto pool = ProcessPool::start(o);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  auto r = (*pool)->call("echo first");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, "first");
  // The replacement after a crash starts slowly too; the next call still gets its whole budget.
  EXPECT_FALSE((*pool)->call("crash").is_ok());
  auto again = (*pool)->call("echo again");
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(*again, "again");
}

TEST(ProcessPool, AChildThatDoesNotStartFailsTheCallRetriable) {
  auto o = options();
  o.size = 1;
  o.start_timeout = std::chrono::milliseconds(300);
  {
    ChildEnv slow("POOL_CHILD_START_MS", "5000");
    auto pool = ProcessPool::start(o);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    auto r = (*pool)->call("echo x", "parsing 'a.txt'");
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable) << r.status().to_string();
    EXPECT_EQ(
        r.status().message(),
        "parsing 'a.txt': the worker process did not start within 300ms (the machine may be overloaded)");
  }
  {
    ChildEnv dead("POOL_CHILD_EXIT_AT_START", "1");
    auto pool = ProcessPool::start(o);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    auto r = (*pool)->call("echo x");
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().error_class(), ErrorClass::kFatal) << r.status().to_string();
    EXPECT_NE(r.status().message().find("exited with status 4 before it was ready"), std::string::npos)
        << r.status().to_string();
  }
}

TEST(ProcessPool, MissingProgramIsBadInput) {
  auto o = options();
  o.program = "/nonexistent/sluice-child";
  auto pool = ProcessPool::start(o);
  ASSERT_FALSE(pool.is_ok());
  EXPECT_EQ(pool.status().error_class(), ErrorClass::kBadInput);
}

}  // namespace
}  // namespace sluice::pipeline
