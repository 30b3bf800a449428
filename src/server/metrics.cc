#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>
#include <system_error>

namespace sluice::server {
namespace {

// The header promises lock-free updates; a target where these take a hidden lock should not build.
static_assert(std::atomic<double>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

enum class Type : unsigned char { kCounter, kGauge, kHistogram };

const char* type_name(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Replaces every character outside the alphabet with '_' (a leading digit too); "" becomes "_".
std::string sanitise(std::string_view name, bool allow_colon) {
  std::string out(name.empty() ? std::string_view("_") : name);
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    bool ok = is_name_start(c) || (allow_colon && c == ':') || (i > 0 && is_digit(c));
    if (!ok) out[i] = '_';
  }
  return out;
}

std::string metric_name(std::string_view name) {
  assert(is_valid_metric_name(name) && "invalid Prometheus metric name");
  return sanitise(name, /*allow_colon=*/true);
}

// The labels with valid, unique names, in the caller's order.
Labels clean_labels(const Labels& labels, bool histogram) {
  Labels out;
  out.reserve(labels.size());
  for (const auto& [name, value] : labels) {
    assert(is_valid_label_name(name) && "invalid Prometheus label name");
    std::string n = sanitise(name, /*allow_colon=*/false);
    if (histogram && n == "le") {
      assert(false && "a histogram cannot have a label named \"le\"");
      n = "_le";
    }
    bool dup = std::any_of(out.begin(), out.end(), [&](const auto& l) { return l.first == n; });
    assert(!dup && "the same label name twice in one label set");
    if (!dup) out.emplace_back(std::move(n), value);
  }
  return out;
}

// Label values escape backslash, double quote and newline; HELP text only backslash and newline.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"}` (with an extra le="..." for buckets), or nothing for no labels.
void append_labels(std::string& out, const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_escaped(out, value, /*quote=*/true);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels,
                   double value, const std::string* le = nullptr) {
  out += name;
  out += suffix;
  append_labels(out, labels, le);
  out += ' ';
  out += format_metric_value(value);
  out += '\n';
}

std::vector<double> normalise_bounds(std::vector<double> b) {
  b.erase(std::remove_if(b.begin(), b.end(), [](double v) { return !std::isfinite(v); }), b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(normalise_bounds(std::move(bounds))),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // Buckets are few (about 14): a binary search over them is cheap and keeps the hot path to two
  // relaxed atomic additions.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::count() const {
  return cumulative_counts().back();
}

std::vector<double> default_latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

bool is_valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(is_name_start(c) || c == ':' || (i > 0 && is_digit(c)))) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(is_name_start(c) || (i > 0 && is_digit(c)))) return false;
  }
  return true;
}

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r;
  // Below 2^53 every whole number is exact: print it as one ("42", never "4.2e+01").
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    // %g-style with the fewest digits that read back as the same double.
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  }
  assert(r.ec == std::errc());
  return std::string(buf, r.ptr);
}

struct MetricsRegistry::Impl {
  struct Series {
    Labels labels;  // as first given: the render order
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;      // histograms: normalised, shared by every series
    std::map<Labels, Series> series;  // by labels sorted by name, so lookup ignores order
  };

  // Finds or makes the series; `make` fills a new one. Called with mu held.
  template <typename Make>
  Series& series(Type type, std::string_view raw_name, std::string_view help, const Labels& raw_labels,
                 const std::vector<double>* buckets, Make make) {
    std::string name = metric_name(raw_name);
    Labels labels = clean_labels(raw_labels, type == Type::kHistogram);
    Labels key = labels;
    std::sort(key.begin(), key.end());

    Family* fam = &families.try_emplace(name, Family{type, std::string(help), {}, {}}).first->second;
    if (fam->type != type) {
      assert(false && "a metric name registered again with another type");
      // A working object of the type asked for, kept apart and never rendered.
      fam = &mismatched.try_emplace({type, name}, Family{type, std::string(help), {}, {}}).first->second;
    }
    if (fam->help.empty()) fam->help = help;
    bool first_series = fam->series.empty();
    auto [it, created] = fam->series.try_emplace(std::move(key));
    if (created) {
      // Buckets matter only for a new series: looking an existing one up again with the default
      // argument is fine.
      if (buckets != nullptr) {
        std::vector<double> b = normalise_bounds(*buckets);
        assert((first_series || fam->buckets == b) &&
               "a histogram asked for with other buckets than its family's");
        if (first_series) fam->buckets = std::move(b);
      }
      it->second.labels = std::move(labels);
      make(it->second, *fam);
    }
    return it->second;
  }

  std::mutex mu;                                              // guards everything below
  std::map<std::string, Family> families;                     // rendered, sorted by name
  std::map<std::pair<Type, std::string>, Family> mismatched;  // type clashes: never rendered
  std::vector<Collector> collectors;

  std::mutex render_mu;  // serialises render(), so collectors never run concurrently
};

MetricsRegistry::MetricsRegistry() : impl_(std::make_unique<Impl>()) {}
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& s = impl_->series(Type::kCounter, name, help, labels, nullptr,
                          [](Impl::Series& s, Impl::Family&) { s.counter = std::make_unique<Counter>(); });
  return *s.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& s = impl_->series(Type::kGauge, name, help, labels, nullptr,
                          [](Impl::Series& s, Impl::Family&) { s.gauge = std::make_unique<Gauge>(); });
  return *s.gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help, const Labels& labels,
                                      const std::vector<double>& buckets) {
  std::lock_guard lock(impl_->mu);
  auto& s = impl_->series(
      Type::kHistogram, name, help, labels, &buckets,
      [](Impl::Series& s, Impl::Family& f) { s.histogram = std::make_unique<Histogram>(f.buckets); });
  return *s.histogram;
}

void MetricsRegistry::add_collector(Collector fn) {
  std::lock_guard lock(impl_->mu);
  impl_->collectors.push_back(std::move(fn));
}

std::string MetricsRegistry::render() {
  std::lock_guard render_lock(impl_->render_mu);
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(impl_->mu);
    collectors = impl_->collectors;
  }
  // Outside mu: collectors create and set series, which takes it.
  for (const auto& c : collectors) c(*this);

  std::lock_guard lock(impl_->mu);
  std::string out;
  out.reserve(256 * impl_->families.size());
  for (const auto& [name, fam] : impl_->families) {
    if (!fam.help.empty()) {
      out += "# HELP ";
      out += name;
      out += ' ';
      append_escaped(out, fam.help, /*quote=*/false);
      out += '\n';
    }
    out += "# TYPE ";
    out += name;
    out += ' ';
    out += type_name(fam.type);
    out += '\n';

    std::vector<std::string> les;  // the bucket bounds as le="..." values, formatted once
    if (fam.type == Type::kHistogram) {
      for (double b : fam.buckets) les.push_back(format_metric_value(b));
      les.push_back("+Inf");
    }
    for (const auto& [key, s] : fam.series) {
      switch (fam.type) {
        case Type::kCounter: append_sample(out, name, "", s.labels, s.counter->value()); break;
        case Type::kGauge: append_sample(out, name, "", s.labels, s.gauge->value()); break;
        case Type::kHistogram: {
          // One read of the buckets, so _count always equals the +Inf bucket. The sum is read
          // apart and may miss or include an observe() racing with this scrape.
          double sum = s.histogram->sum();
          std::vector<uint64_t> cum = s.histogram->cumulative_counts();
          for (size_t i = 0; i < cum.size(); ++i) {
            append_sample(out, name, "_bucket", s.labels, static_cast<double>(cum[i]), &les[i]);
          }
          append_sample(out, name, "_sum", s.labels, sum);
          append_sample(out, name, "_count", s.labels, static_cast<double>(cum.back()));
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace sluice::server
