// Helpers shared by the benchmarks: facts about the machine (CPU, kernel, the filesystem a
// directory lives on), clocks, temporary directories, and the statistics the reports use (medians
// across repeated runs, latency percentiles). Thread-safety: free functions without shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "queue/queue.h"

namespace sluice::bench {

using Clock = std::chrono::steady_clock;

// Nanoseconds on the steady clock (an arbitrary epoch; for differences only).
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// {"cpu_model", "cores", "kernel", "mem_total_kib", "filesystem": {...}, "loadavg"} for a run in dir.
nlohmann::json machine_facts(const std::string& dir);

// The 1, 5 and 15 minute load averages, "0.50 0.40 0.30": other work on the machine skews figures.
std::string load_average();

// What one durable append costs on dir's disk: count times appends 128 bytes to a scratch file
// and fdatasyncs it; {"count", "p50_us", "p99_us", "max_us"}. Context for the durable figures.
nlohmann::json fdatasync_probe(const std::string& dir, int count);

// Creates base/<prefix>XXXXXX (base is created when missing) and returns its path.
Result<std::string> make_temp_dir(const std::string& base, const std::string& prefix);

// Deletes a directory tree; errors are ignored (a benchmark must not fail on cleanup).
void remove_tree(const std::string& path);

// A field of /proc/self/status in KiB ("VmHWM", "VmRSS"); -1 when unavailable.
int64_t proc_status_kib(const char* field);

// User and system CPU seconds this process has used so far.
struct CpuTimes {
  double user_s = 0;
  double sys_s = 0;
};
CpuTimes cpu_times();

// The median of values (the mean of the two middle ones for an even count); 0 for none.
double median(std::vector<double> values);

// For every numeric field of runs[0]: the median of that field over all runs.
nlohmann::json median_of_runs(const std::vector<nlohmann::json>& runs);

// The summary line of a queue benchmark: the machine and the build, `settings` as given, the medians
// of runs ("median"), and sluice's figures over the plain loop's from those medians
// (ratio_produce_vs_plain, ratio_consume_vs_plain; 0 where a figure is missing). The build type is
// the including target's SLUICE_BENCH_BUILD_TYPE.
nlohmann::ordered_json queue_summary(const std::vector<nlohmann::ordered_json>& runs,
                                     nlohmann::ordered_json settings);

// Nearest-rank percentile (q in [0, 1]) of values sorted ascending; 0 for none.
int64_t percentile_sorted(const std::vector<int64_t>& sorted, double q);

// Rounds to `digits` decimals, to keep the JSON readable.
double round_to(double v, int digits = 3);

// The queue benchmarks' common loops, through sluice's Queue interface.
// Keys "doc-N" for 10,007 distinct documents: every partition gets messages.
std::string key_of(int64_t i);
// Sends messages values of size bytes with key_of keys and flushes; msgs/s (0 on failure, said on
// stderr prefixed with who).
double sluice_produce(queue::Queue& q, const std::string& topic, int64_t messages, size_t size,
                      const char* who);
// Reads messages messages in a new group, acking each and committing at the end; msgs/s from the
// first message (the group join is not the loop's).
double sluice_consume(queue::Queue& q, const std::string& topic, const std::string& group, int64_t messages,
                      const char* who);

}  // namespace sluice::bench
