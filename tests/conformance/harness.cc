// The conformance suite's fixture and helpers (see harness.h).
#include "conformance/harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "support/require_server.h"

namespace sluice::conformance {

std::string str(std::string_view v) {
  return std::string(v);
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

Seen seen(const queue::Message& m) {
  Seen s;
  s.topic = str(m.topic);
  s.partition = m.partition.value();
  s.offset = m.offset.value();
  s.timestamp_ms = m.timestamp_ms;
  if (m.key) s.key = str(*m.key);
  s.value = str(m.value);
  for (const auto& h : m.headers) s.headers.emplace_back(str(h.key), str(h.value));
  return s;
}

Result<uint64_t> send(queue::Producer& p, const Out& out, void* opaque) {
  std::vector<queue::Header> headers;
  headers.reserve(out.headers.size());
  for (const auto& [k, v] : out.headers) headers.push_back({k, v});
  queue::OutMessage m;
  m.topic = out.topic;
  if (out.key) m.key = std::string_view(*out.key);
  m.value = out.value;
  m.headers = headers;
  if (out.partition) m.partition = PartitionId(*out.partition);
  m.timestamp_ms = out.timestamp_ms;
  return p.send(m, opaque);
}

Status RecordingProducer::init(queue::Queue& q) {
  queue::ProducerOptions opts;
  // The callback holds the state by shared_ptr: a report issued while the producer is being
  // destroyed must still find it.
  opts.on_delivery = [state = state_](const queue::DeliveryReport& r) {
    Report copy{r.ticket, r.opaque, r.status, str(r.topic), r.partition.value(), r.offset.value()};
    std::lock_guard lock(state->mu);
    state->reports.push_back(std::move(copy));
    state->cv.notify_all();
  };
  auto p = q.make_producer(std::move(opts));
  if (!p.is_ok()) return p.status();
  producer_ = std::move(p).value();
  return {};
}

std::vector<Report> RecordingProducer::reports() const {
  std::lock_guard lock(state_->mu);
  return state_->reports;
}

bool RecordingProducer::wait_reports(size_t n, Millis timeout) const {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->reports.size() >= n; });
}

std::vector<queue::Message> poll_n(queue::Consumer& c, size_t want, Millis timeout, Status* error) {
  std::vector<queue::Message> got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) break;
    Status st = c.poll(got, want - got.size(), std::min(left, Millis(200)));
    if (!st.is_ok()) {
      if (error != nullptr) *error = st;
      ADD_FAILURE() << "poll failed: " << st.to_string();
      break;
    }
  }
  return got;
}

std::vector<queue::Message> poll_for(queue::Consumer& c, Millis duration) {
  std::vector<queue::Message> got;
  auto deadline = std::chrono::steady_clock::now() + duration;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) break;
    Status st = c.poll(got, 1000, std::min(left, Millis(100)));
    if (!st.is_ok()) {
      ADD_FAILURE() << "poll failed: " << st.to_string();
      break;
    }
  }
  return got;
}

bool poll_round_robin(const std::vector<queue::Consumer*>& consumers,
                      std::vector<std::vector<queue::Message>>& got, const std::function<bool()>& done,
                      Millis timeout) {
  got.resize(consumers.size());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    for (size_t i = 0; i < consumers.size(); ++i) {
      Status st = consumers[i]->poll(got[i], 1000, Millis(20));
      if (!st.is_ok()) {
        ADD_FAILURE() << "poll of consumer " << i << " failed: " << st.to_string();
        return false;
      }
    }
  }
  return true;
}

bool assignments_settled(const std::vector<queue::Consumer*>& consumers, const std::string& topic,
                         int32_t partitions) {
  std::set<int32_t> owned;
  for (auto* c : consumers) {
    auto a = c->assignment();
    if (a.empty()) return false;
    for (const auto& tp : a) {
      if (tp.topic != topic) continue;
      if (!owned.insert(tp.partition.value()).second) return false;  // owned twice: mid-rebalance
    }
  }
  return static_cast<int32_t>(owned.size()) == partitions;
}

std::map<int32_t, std::vector<int64_t>> offsets_by_partition(const std::vector<queue::Message>& msgs) {
  std::map<int32_t, std::vector<int64_t>> out;
  for (const auto& m : msgs) out[m.partition.value()].push_back(m.offset.value());
  for (auto& [p, v] : out) std::sort(v.begin(), v.end());
  return out;
}

Watchdog::Watchdog(std::string test_name, std::chrono::seconds limit) {
  thread_ = std::thread([this, test_name = std::move(test_name), limit] {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, limit, [&] { return done_; })) return;
    std::fprintf(stderr, "\nWATCHDOG: %s ran longer than %llds (hung backend call?); aborting\n",
                 test_name.c_str(), static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::abort();
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void QueueConformance::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::chrono::seconds limit(120);
  if (const char* env = std::getenv("SLUICE_CONFORMANCE_TIMEOUT_S"); env != nullptr && *env != '\0') {
    limit = std::chrono::seconds(std::atoll(env));
  }
  watchdog_ = std::make_unique<Watchdog>(std::string(info->test_suite_name()) + "." + info->name(), limit);

  backend_ = make_backend(GetParam());
  ASSERT_NE(backend_, nullptr) << "no conformance backend registered as '" << GetParam() << "'";
  Status st = backend_->set_up();
  if (sluice::testing::skip_for_missing_server(st))
    GTEST_SKIP() << "backend '" << GetParam() << "': " << st.message();
  ASSERT_OK(st);
  ASSERT_NO_FATAL_FAILURE(open_queue());
  caps_ = queue_->capabilities();
}

void QueueConformance::TearDown() {
  queue_.reset();
  if (backend_) backend_->tear_down();
  watchdog_.reset();
}

void QueueConformance::open_queue() {
  ASSERT_OK_AND_ASSIGN(queue_, backend_->open());
  ASSERT_NE(queue_, nullptr);
}

void QueueConformance::reopen() {
  queue_.reset();
  ASSERT_NO_FATAL_FAILURE(open_queue());
}

void QueueConformance::create_topic(const std::string& topic, int32_t partitions) {
  queue::TopicConfig cfg;
  cfg.partitions = partitions;
  ASSERT_OK(admin().create_topic(topic, cfg));
}

void QueueConformance::create_topic(const std::string& topic, int32_t partitions, const std::string& group) {
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions));
  ASSERT_NO_FATAL_FAILURE(declare_group(group, {topic}));
}

void QueueConformance::declare_group(const std::string& group, const std::vector<std::string>& topics) {
  ASSERT_OK(admin().declare_group(group, topics));
}

void QueueConformance::produce(const std::vector<Out>& msgs, std::vector<Report>* reports) {
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  for (const auto& m : msgs) {
    auto t = send(p.get(), m);
    ASSERT_TRUE(t.is_ok()) << "send to " << m.topic << " failed: " << t.status().to_string();
  }
  ASSERT_OK(p.get().flush(kWait));
  ASSERT_TRUE(p.wait_reports(msgs.size(), kWait)) << "missing delivery reports after flush";
  auto got = p.reports();
  for (const auto& r : got) ASSERT_TRUE(r.status.is_ok()) << "delivery failed: " << r.status.to_string();
  if (reports != nullptr) *reports = std::move(got);
}

std::unique_ptr<queue::Consumer> QueueConformance::consumer(const std::string& group,
                                                            std::vector<std::string> topics,
                                                            queue::StartFrom start_from) {
  queue::ConsumerOptions opts;
  opts.group = group;
  opts.topics = std::move(topics);
  opts.start_from = start_from;
  opts.commit_interval = Millis(50);
  auto c = q().make_consumer(std::move(opts));
  if (!c.is_ok()) {
    ADD_FAILURE() << "make_consumer(" << group << ") failed: " << c.status().to_string();
    return nullptr;
  }
  return std::move(c).value();
}

std::optional<queue::GroupPartition> QueueConformance::group_partition(const std::string& group,
                                                                       const std::string& topic,
                                                                       int32_t partition) {
  auto info = admin().describe_group(group);
  if (!info.is_ok()) {
    ADD_FAILURE() << "describe_group(" << group << ") failed: " << info.status().to_string();
    return std::nullopt;
  }
  for (const auto& gp : info->partitions) {
    if (gp.topic == topic && gp.partition.value() == partition) return gp;
  }
  ADD_FAILURE() << "describe_group(" << group << ") has no row for " << topic << "/" << partition;
  return std::nullopt;
}

std::optional<int64_t> QueueConformance::committed(const std::string& group, const std::string& topic,
                                                   int32_t partition) {
  auto gp = group_partition(group, topic, partition);
  if (!gp || !gp->committed) return std::nullopt;
  return gp->committed->value();
}

}  // namespace sluice::conformance
