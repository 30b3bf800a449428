// Whether a test may skip because a server program it needs is not installed. On a developer's
// machine it may: a missing rabbitmq-server should not stop the other tests. Where
// SLUICE_REQUIRE_TEST_SERVERS is set (scripts/test.sh, and so .ci/run) it may not: a skipped suite
// there would pass without testing anything, so the missing program is a failure instead.
// Thread-safety: reads the environment only.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "base/status.h"

namespace sluice::testing {

inline bool test_servers_required() {
  const char* v = std::getenv("SLUICE_REQUIRE_TEST_SERVERS");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

// True when the test should skip: `start` is the server's kUnsupported ("not installed") and
// servers are not required. Where they are, it records a failure naming what is missing and
// returns true, so the caller's GTEST_SKIP ends the test as failed.
inline bool skip_for_missing_server(const Status& start) {
  if (start.code() != Code::kUnsupported) return false;
  if (test_servers_required())
    ADD_FAILURE() << start.to_string() << " (SLUICE_REQUIRE_TEST_SERVERS is set: every test server must run)";
  return true;
}

// The same for a check of the program alone.
inline bool skip_for_missing_program(bool installed, const std::string& program) {
  if (installed) return false;
  return skip_for_missing_server(
      Status::unsupported(program + " is missing (run npm ci in the source tree)"));
}

}  // namespace sluice::testing
