// Unit tests for src/server/metrics: values, the exact text format, escaping, histogram buckets,
// series identity, concurrent updates and scrape-time collectors.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace sluice::server {
namespace {

TEST(Metrics, CounterAndGaugeValues) {
  MetricsRegistry reg;
  Counter& c = reg.counter("c_total", "A counter.");
  EXPECT_EQ(c.value(), 0);
  c.inc();
  c.inc(2.5);
  EXPECT_EQ(c.value(), 3.5);

  Gauge& g = reg.gauge("g", "A gauge.");
  g.set(10);
  g.inc();
  g.dec(4);
  EXPECT_EQ(g.value(), 7);
  g.dec(9);
  EXPECT_EQ(g.value(), -2);  // gauges go negative
  g.set(0.25);
  EXPECT_EQ(g.value(), 0.25);
}

TEST(Metrics, CounterNeverGoesDown) {
  Counter c;
  c.inc(5);
  EXPECT_DEBUG_DEATH(c.inc(-1), "increment must be >= 0");
  EXPECT_DEBUG_DEATH(c.inc(std::nan("")), "increment must be >= 0");
  EXPECT_EQ(c.value(), 5);
}

TEST(Metrics, HistogramCumulativeBuckets) {
  MetricsRegistry reg;
  Histogram& h =
      reg.histogram("h_seconds", "A histogram.", {}, {1, 0.25, 1, std::numeric_limits<double>::infinity()});
  // Sorted, deduplicated, +Inf implicit.
  EXPECT_EQ(h.bounds(), (std::vector<double>{0.25, 1}));
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{0, 0, 0}));

  h.observe(0.125);
  h.observe(0.25);  // a bound is inclusive: le="0.25" counts it
  h.observe(0.5);
  h.observe(3);
  h.observe(std::nan(""));  // dropped
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.sum(), 3.875);

  std::string text = reg.render();
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.25\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum 3.875\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count 4\n"), std::string::npos) << text;
}

TEST(Metrics, HistogramWithoutBoundsHasOnlyInf) {
  Histogram h({});
  h.observe(-7);
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{1}));
}

TEST(Metrics, DefaultLatencyBuckets) {
  std::vector<double> b = default_latency_buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 0.0005);
  EXPECT_EQ(b.back(), 10);
  for (size_t i = 1; i < b.size(); ++i) {
    EXPECT_GT(b[i], b[i - 1]);
    EXPECT_LE(b[i] / b[i - 1], 2.5 + 1e-9);
  }
  // Rendered as written, so `le="0.0005"` in a query matches.
  MetricsRegistry reg;
  reg.histogram("lat_seconds", "").observe(0.0001);
  EXPECT_NE(reg.render().find("lat_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos);
}

TEST(Metrics, RenderGolden) {
  MetricsRegistry reg;
  // Registered out of order: families render sorted by name, series sorted by labels.
  reg.gauge("sluice_uptime_seconds", "Seconds since the server started.").set(12.5);
  reg.counter("sluice_uploads_total", "Uploads by result.", {{"result", "rejected"}}).inc();
  reg.counter("sluice_uploads_total", "Uploads by result.", {{"result", "accepted"}}).inc(3);
  Histogram& h = reg.histogram("sluice_stage_processing_seconds", "Time to process one message.",
                               {{"stage", "parse"}}, {0.25, 1});
  for (double v : {0.125, 0.25, 0.5, 3.0}) h.observe(v);
  reg.histogram("sluice_stage_processing_seconds", "", {{"stage", "embed"}}, {0.25, 1});
  reg.gauge("sluice_build_info", "The running version (value 1).", {{"version", "1.2.3"}}).set(1);
  reg.gauge("sluice_consumer_lag", "", {{"group", "g"}, {"topic", "doc_upload"}, {"partition", "0"}}).set(42);
  reg.counter("sluice_upload_bytes_total", "Bytes uploaded.").inc(1048576);

  const std::string expected =
      "# HELP sluice_build_info The running version (value 1).\n"
      "# TYPE sluice_build_info gauge\n"
      "sluice_build_info{version=\"1.2.3\"} 1\n"
      "# TYPE sluice_consumer_lag gauge\n"
      "sluice_consumer_lag{group=\"g\",topic=\"doc_upload\",partition=\"0\"} 42\n"
      "# HELP sluice_stage_processing_seconds Time to process one message.\n"
      "# TYPE sluice_stage_processing_seconds histogram\n"
      "sluice_stage_processing_seconds_bucket{stage=\"embed\",le=\"0.25\"} 0\n"
      "sluice_stage_processing_seconds_bucket{stage=\"embed\",le=\"1\"} 0\n"
      "sluice_stage_processing_seconds_bucket{stage=\"embed\",le=\"+Inf\"} 0\n"
      "sluice_stage_processing_seconds_sum{stage=\"embed\"} 0\n"
      "sluice_stage_processing_seconds_count{stage=\"embed\"} 0\n"
      "sluice_stage_processing_seconds_bucket{stage=\"parse\",le=\"0.25\"} 2\n"
      "sluice_stage_processing_seconds_bucket{stage=\"parse\",le=\"1\"} 3\n"
      "sluice_stage_processing_seconds_bucket{stage=\"parse\",le=\"+Inf\"} 4\n"
      "sluice_stage_processing_seconds_sum{stage=\"parse\"} 3.875\n"
      "sluice_stage_processing_seconds_count{stage=\"parse\"} 4\n"
      "# HELP sluice_upload_bytes_total Bytes uploaded.\n"
      "# TYPE sluice_upload_bytes_total counter\n"
      "sluice_upload_bytes_total 1048576\n"
      "# HELP sluice_uploads_total Uploads by result.\n"
      "# TYPE sluice_uploads_total counter\n"
      "sluice_uploads_total{result=\"accepted\"} 3\n"
      "sluice_uploads_total{result=\"rejected\"} 1\n"
      "# HELP sluice_uptime_seconds Seconds since the server started.\n"
      "# TYPE sluice_uptime_seconds gauge\n"
      "sluice_uptime_seconds 12.5\n";
  EXPECT_EQ(reg.render(), expected);
  EXPECT_EQ(reg.render(), expected);  // rendering changes nothing
}

TEST(Metrics, EmptyRegistryRendersNothing) {
  MetricsRegistry reg;
  EXPECT_EQ(reg.render(), "");
}

TEST(Metrics, LabelAndHelpEscaping) {
  MetricsRegistry reg;
  reg.counter("esc_total", "Help with \\ a backslash,\na newline and \"quotes\".",
              {{"path", "C:\\dir\\\"x\"\nend"}})
      .inc();
  const std::string expected =
      "# HELP esc_total Help with \\\\ a backslash,\\na newline and \"quotes\".\n"
      "# TYPE esc_total counter\n"
      "esc_total{path=\"C:\\\\dir\\\\\\\"x\\\"\\nend\"} 1\n";
  EXPECT_EQ(reg.render(), expected);
}

TEST(Metrics, FormatValues) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(-0.0), "0");
  EXPECT_EQ(format_metric_value(42), "42");
  EXPECT_EQ(format_metric_value(-3), "-3");
  EXPECT_EQ(format_metric_value(1e15), "1000000000000000");
  EXPECT_EQ(format_metric_value(9007199254740991.0), "9007199254740991");  // 2^53 - 1
  EXPECT_EQ(format_metric_value(1e20), "1e+20");
  EXPECT_EQ(format_metric_value(0.1), "0.1");
  EXPECT_EQ(format_metric_value(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(format_metric_value(12.5), "12.5");
  EXPECT_EQ(format_metric_value(0.0005), "0.0005");
  EXPECT_EQ(format_metric_value(1e-05), "1e-05");
  EXPECT_EQ(format_metric_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
  // Every non-integer reads back as the same double.
  for (double v : {1.0 / 3, 2.0 / 3, 1e-300, 123456.789, 5e-324}) {
    EXPECT_EQ(std::strtod(format_metric_value(v).c_str(), nullptr), v) << format_metric_value(v);
  }
}

TEST(Metrics, GaugeSpecialValuesRender) {
  MetricsRegistry reg;
  reg.gauge("a", "", {{"k", "inf"}}).set(std::numeric_limits<double>::infinity());
  reg.gauge("a", "", {{"k", "nan"}}).set(std::nan(""));
  reg.gauge("a", "", {{"k", "ninf"}}).set(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(reg.render(),
            "# TYPE a gauge\n"
            "a{k=\"inf\"} +Inf\n"
            "a{k=\"nan\"} NaN\n"
            "a{k=\"ninf\"} -Inf\n");
}

TEST(Metrics, SameNameAndLabelsSameObject) {
  MetricsRegistry reg;
  Counter& a = reg.counter("req_total", "Requests.", {{"method", "GET"}, {"code", "200"}});
  Counter& b = reg.counter("req_total", "Requests.", {{"method", "GET"}, {"code", "200"}});
  Counter& reordered = reg.counter("req_total", "", {{"code", "200"}, {"method", "GET"}});
  Counter& other = reg.counter("req_total", "", {{"method", "GET"}, {"code", "500"}});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a, &reordered);  // one label set, whatever the order
  EXPECT_NE(&a, &other);
  Gauge& g1 = reg.gauge("in_flight", "");
  EXPECT_EQ(&g1, &reg.gauge("in_flight", "", {}));
  Histogram& h1 = reg.histogram("lat_seconds", "", {{"route", "/x"}});
  EXPECT_EQ(&h1, &reg.histogram("lat_seconds", "", {{"route", "/x"}}));

  // Addresses stay put while many more series are added.
  for (int i = 0; i < 1000; ++i)
    reg.counter("req_total", "", {{"method", "GET"}, {"code", std::to_string(i)}});
  EXPECT_EQ(&a, &reg.counter("req_total", "", {{"method", "GET"}, {"code", "200"}}));
  a.inc();
  EXPECT_EQ(b.value(), 1);

  // The series renders its labels in the order of the call that created it.
  EXPECT_NE(reg.render().find("req_total{method=\"GET\",code=\"200\"} 1\n"), std::string::npos);
}

TEST(Metrics, FirstNonEmptyHelpWins) {
  MetricsRegistry reg;
  reg.counter("x_total", "");
  reg.counter("x_total", "First help.");
  reg.counter("x_total", "Second help.");
  EXPECT_EQ(reg.render(), "# HELP x_total First help.\n# TYPE x_total counter\nx_total 0\n");
}

TEST(Metrics, NameValidation) {
  EXPECT_TRUE(is_valid_metric_name("sluice_stage_consumed_total"));
  EXPECT_TRUE(is_valid_metric_name("job:rate5m"));
  EXPECT_TRUE(is_valid_metric_name("_x9"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("9lives"));
  EXPECT_FALSE(is_valid_metric_name("a-b"));
  EXPECT_FALSE(is_valid_metric_name("a b"));
  EXPECT_TRUE(is_valid_label_name("stage"));
  EXPECT_TRUE(is_valid_label_name("_a1"));
  EXPECT_FALSE(is_valid_label_name("a:b"));  // colons are for metric names only
  EXPECT_FALSE(is_valid_label_name("1a"));
  EXPECT_FALSE(is_valid_label_name(""));
}

TEST(Metrics, InvalidNamesAreProgrammingErrors) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry reg;
  EXPECT_DEBUG_DEATH(reg.counter("9bad-name", "", {}).inc(), "invalid Prometheus metric name");
  EXPECT_DEBUG_DEATH(reg.gauge("ok", "", {{"bad:label", "v"}}).set(1), "invalid Prometheus label name");
  EXPECT_DEBUG_DEATH(reg.histogram("h", "", {{"le", "x"}}), "cannot have a label named");
  EXPECT_DEBUG_DEATH(reg.gauge("dup", "", {{"a", "1"}, {"a", "2"}}).set(1), "same label name twice");
#ifdef NDEBUG
  // Release builds repair and go on.
  std::string text = reg.render();
  EXPECT_NE(text.find("_bad_name 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ok{bad_label=\"v\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_bucket{_le=\"x\",le=\"+Inf\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dup{a=\"1\"} 1\n"), std::string::npos) << text;
#endif
}

TEST(Metrics, TypeClashKeepsFirstType) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry reg;
  reg.counter("clash", "A counter.").inc(2);
  EXPECT_DEBUG_DEATH(reg.gauge("clash", "").set(99), "another type");
  EXPECT_DEBUG_DEATH(reg.histogram("clash", "").observe(1), "another type");
  EXPECT_DEBUG_DEATH(reg.histogram("hb", "", {{"s", "a"}}, {1});
                     reg.histogram("hb", "", {{"s", "b"}}, {2}), "other buckets");
#ifdef NDEBUG
  // The gauge works but is never rendered; the family stays a counter.
  Gauge& g = reg.gauge("clash", "");
  EXPECT_EQ(&g, &reg.gauge("clash", ""));
  EXPECT_EQ(g.value(), 99);
  std::string text = reg.render();
  EXPECT_NE(text.find("# TYPE clash counter\nclash 2\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("gauge"), std::string::npos) << text;
  EXPECT_NE(text.find("hb_bucket{s=\"b\",le=\"1\"} 0\n"), std::string::npos) << text;  // the family's
#endif
}

TEST(Metrics, ConcurrentIncrementsAddUp) {
  MetricsRegistry reg;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg, t] {
      // Looked up concurrently too: every thread must get the same objects.
      Counter& c = reg.counter("ops_total", "Operations.", {{"kind", "x"}});
      Gauge& g = reg.gauge("level", "Level.");
      Histogram& h = reg.histogram("op_seconds", "Op time.", {}, {0.5});
      Counter& own = reg.counter("per_thread_total", "", {{"t", std::to_string(t)}});
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        own.inc(0.5);
        g.inc(2);
        g.dec();
        h.observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  // Scrapes race with the writers (for the sanitizers); each sees consistent buckets.
  for (int i = 0; i < 20; ++i) {
    std::string text = reg.render();
    EXPECT_EQ(text.find("NaN"), std::string::npos);
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(reg.counter("ops_total", "", {{"kind", "x"}}).value(), kThreads * kPerThread);
  EXPECT_EQ(reg.gauge("level", "").value(), kThreads * kPerThread);
  Histogram& h = reg.histogram("op_seconds", "", {}, {0.5});
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{kThreads * kPerThread / 2, kThreads * kPerThread}));
  EXPECT_EQ(h.sum(), kThreads * kPerThread / 2 * 1.25);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(reg.counter("per_thread_total", "", {{"t", std::to_string(t)}}).value(), kPerThread * 0.5);
  }
  EXPECT_NE(reg.render().find("ops_total{kind=\"x\"} 400000\n"), std::string::npos);
}

TEST(Metrics, CollectorsRunOnRender) {
  MetricsRegistry reg;
  int runs = 0;
  double lag = 5;
  reg.add_collector([&](MetricsRegistry& r) {
    ++runs;
    r.gauge("sluice_consumer_lag", "Messages behind.", {{"topic", "doc_upload"}}).set(lag);
  });
  EXPECT_EQ(runs, 0);  // not before a scrape
  std::string first = reg.render();
  EXPECT_EQ(runs, 1);
  EXPECT_NE(first.find("sluice_consumer_lag{topic=\"doc_upload\"} 5\n"), std::string::npos) << first;

  lag = 0;
  std::string second = reg.render();
  EXPECT_EQ(runs, 2);
  EXPECT_NE(second.find("sluice_consumer_lag{topic=\"doc_upload\"} 0\n"), std::string::npos) << second;

  // A collector may add a collector; the new one runs from the next render on.
  int late_runs = 0;
  reg.add_collector([&](MetricsRegistry& r) {
    if (late_runs == 0) r.add_collector([&](MetricsRegistry&) { ++late_runs; });
  });
  reg.render();
  EXPECT_EQ(late_runs, 0);
  reg.render();
  EXPECT_EQ(late_runs, 1);
}

TEST(Metrics, ConcurrentRendersSerialiseCollectors) {
  MetricsRegistry reg;
  int inside = 0;  // not atomic on purpose: renders are serialised, so the sanitizers stay quiet
  int max_inside = 0;
  reg.add_collector([&](MetricsRegistry& r) {
    ++inside;
    max_inside = std::max(max_inside, inside);
    r.gauge("g", "").inc();
    --inside;
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&reg] {
      for (int i = 0; i < 50; ++i) reg.render();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(reg.gauge("g", "").value(), 200);
}

}  // namespace
}  // namespace sluice::server
