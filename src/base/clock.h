// Wall-clock helpers: milliseconds since the epoch and their ISO-8601 UTC form, the one format
// logs, envelopes and results use ("2026-11-21T12:30:00.000Z"). Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

int64_t wall_clock_ms();
std::string iso8601_utc(int64_t ms_since_epoch);

}  // namespace sluice
