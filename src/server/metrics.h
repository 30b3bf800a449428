// MetricsRegistry: the server's metrics, rendered for `GET /metrics` in the Prometheus text
// exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/). A family
// is a metric name with its HELP text and type (counter, gauge or histogram); each distinct label
// set of a family is one series, a Counter, Gauge or Histogram object.
//
// Ownership: the registry owns every family and series; an object it returns lives as long as the
// registry, at a stable address. Nothing is ever removed.
// Thread-safety: all methods are thread-safe. counter()/gauge()/histogram() take a lock and build
// strings, so callers look a series up once and keep the returned reference; inc/set/observe on
// that reference are lock-free relaxed atomics. render() reads each value once without stopping
// writers: a scrape is not one instant across series, and a histogram's _sum may miss or include
// an observation racing with it (its buckets and _count always agree).
//
// Programming errors (asserted in debug builds, repaired in release):
// - a name or label name outside Prometheus' alphabet: every bad character becomes '_';
// - a name asked for with a type other than the one it was first registered with: the family keeps
//   its first type, and the caller gets a working object of the asked type that is never rendered;
// - a new histogram series asked for with buckets other than its family's: the family's are used;
// - a label named "le" on a histogram (Prometheus' bucket label): it is renamed to "_le";
// - the same label name twice in one label set: the first wins;
// - a negative or NaN counter increment: ignored (a counter never goes down).
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::server {

// Label name/value pairs. Lookup ignores their order; a series renders them in the order of the
// call that created it.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Values are doubles because Prometheus' are: counters may count seconds or bytes, gauges go
// negative. C++20's atomic<double>::fetch_add is a compare-exchange loop, lock-free on the targets
// we build for, and exact for whole-number increments up to 2^53.
class Counter {
 public:
  void inc(double v = 1) {
    assert(v >= 0 && "a counter increment must be >= 0");
    if (v >= 0) value_.fetch_add(v, std::memory_order_relaxed);  // false for NaN too
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets by upper bound (a value v falls in the first bucket with
// v <= bound, else in +Inf) and keeps their sum. Rendered cumulatively, as Prometheus expects.
class Histogram {
 public:
  // Bounds are sorted and deduplicated; non-finite ones are dropped (+Inf is always there).
  explicit Histogram(std::vector<double> bounds);

  // NaN observations are dropped: one would make the sum NaN for the rest of the process.
  void observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts, one per bound and then +Inf (so size() == bounds().size() + 1).
  std::vector<uint64_t> cumulative_counts() const;
  uint64_t count() const;  // the +Inf bucket: always agrees with cumulative_counts().back()
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// 0.5 ms to 10 s in steps of about x2.5 (14 buckets): from a cache hit to a slow PDF parse.
std::vector<double> default_latency_buckets();

// Prometheus' alphabets: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*.
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);

// A sample value as the text format spells it: "42" for whole numbers below 2^53, the shortest
// round-trip form otherwise ("0.25", "1e-05", "1e+20"), and "+Inf", "-Inf", "NaN".
std::string format_metric_value(double v);

class MetricsRegistry {
 public:
  // Refreshes values that are cheaper to read on scrape than to track (consumer lag, uptime).
  using Collector = std::function<void(MetricsRegistry&)>;

  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The series of family `name` with these labels, created on first use. The same name and label
  // set always return the same object. The first non-empty help of a family is the one rendered.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  // Every series of a family shares the buckets it was created with; `buckets` is only read when
  // a series is created (so a later lookup may leave it out).
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                       const std::vector<double>& buckets = default_latency_buckets());

  // Collectors run, one after another, at the start of every render(), on the scraping thread;
  // renders are serialised, so a collector need not be reentrant. A collector may create and set
  // series and add collectors (those run from the next render on); it must not call render().
  void add_collector(Collector fn);

  // Runs the collectors, then renders every family sorted by name, each series sorted by its
  // labels: "# HELP" (when there is help) and "# TYPE" once per family, then its samples.
  // Not const: the collectors update the registry.
  std::string render();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::server
