// Wall-clock helpers: milliseconds since the epoch and their ISO-8601 UTC form, the one format
// logs, envelopes and results use ("2026-11-21T12:30:00.000Z"), and durations written the way the
// settings take them ("30s", "1500ms"), for messages. Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice {

int64_t wall_clock_ms();
std::string iso8601_utc(int64_t ms_since_epoch);
// In the largest unit that divides it exactly: "2h", "5m", "30s", "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace sluice
