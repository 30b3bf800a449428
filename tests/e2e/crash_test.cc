// Crash tests of the `log` backend with real processes: two producers and a consumer
// (crash_child.cc) are SIGKILLed at random moments and restarted, and the test then proves from what they
// printed that no acknowledged message was lost, that each key's messages kept their order, that nothing was
// invented, and that a hot-standby consumer process takes over a group from the committed offsets when the
// serving process dies.
//
// Environment: SLUICE_CRASH_ROUNDS (default 30) kill rounds; SLUICE_CRASH_SEED fixes the random
// kill schedule (the seed used is printed, so a failing run can be replayed);
// SLUICE_KEEP_TEST_DIRS keeps the data directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "queue/partitioner.h"
#include "queue/queue.h"

#ifndef SLUICE_CRASH_CHILD
#error "SLUICE_CRASH_CHILD must name the crash_child binary (set by tests/CMakeLists.txt)"
#endif

namespace sluice {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kKeys = 16;
constexpr int32_t kPartitions = 4;

// A temp directory removed at the end unless SLUICE_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-crash-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    if (std::getenv("SLUICE_KEEP_TEST_DIRS") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One crash_child process: its stdout is read line by line on a thread; its stderr goes to a file
// that is shown when a test fails.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& stderr_path) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    // argv is built before fork: between fork and exec only async-signal-safe calls are allowed,
    // since this process has other threads.
    args.insert(args.begin(), SLUICE_CRASH_CHILD);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);  // dup2 clears close-on-exec on the copy
      if (err >= 0) dup2(err, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(fds[1]);  // or the pipe never reports EOF
    if (err >= 0) ::close(err);
    if (pid_ < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      ::close(fds[0]);
      return;
    }
    reader_ = std::thread([this, fd = fds[0]] { read_lines(fd); });
  }

  ~Child() {
    if (pid_ > 0 && !reaped_) kill_and_reap();
    if (reader_.joinable()) reader_.join();
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // SIGKILLs the child and waits for it and for the end of its output. Returns the wait status.
  int kill_and_reap() {
    if (pid_ <= 0 || reaped_) return status_;
    ::kill(pid_, SIGKILL);
    return reap();
  }

  // Waits up to timeout for the child to exit by itself; nullopt when it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_ = status;
        if (reader_.joinable()) reader_.join();
        return status;
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }

  // Every line so far (all of them once the child was reaped).
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

  // Waits until a line satisfies pred; false on timeout or EOF.
  template <typename Pred>
  bool wait_line(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    size_t checked = 0;
    auto deadline = Clock::now() + timeout;
    for (;;) {
      for (; checked < lines_.size(); ++checked)
        if (pred(lines_[checked])) return true;
      if (eof_) return false;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
    }
  }

 private:
  int reap() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = status;
    if (reader_.joinable()) reader_.join();
    return status;
  }

  void read_lines(int fd) {
    std::string partial;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      std::vector<std::string> got;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        got.push_back(partial.substr(start, nl - start));
      }
      partial.erase(0, start);
      std::lock_guard lock(mu_);
      lines_.insert(lines_.end(), got.begin(), got.end());
      cv_.notify_all();
    }
    ::close(fd);
    std::lock_guard lock(mu_);
    // A line cut by the kill has no newline: the child died inside write(), which lines never do
    // (one write each, below PIPE_BUF), so a partial line is a finding.
    if (!partial.empty()) lines_.push_back("PARTIAL " + partial);
    eof_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "status " + std::to_string(status);
}

// The last lines of a child's stderr file, for failure messages.
std::string tail_of(const std::string& path, size_t max_lines = 30) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > max_lines ? all.size() - max_lines : 0; i < all.size(); ++i)
    out += all[i] + "\n";
  return out.empty() ? "(stderr empty)\n" : out;
}

std::unique_ptr<queue::Queue> open_log(const std::string& dir) {
  auto q = queue::open_queue("log:" + dir);
  if (!q.is_ok()) {
    ADD_FAILURE() << "open_queue(log:" << dir << "): " << q.status().to_string();
    return nullptr;
  }
  return std::move(q).value();
}

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : def;
}

// A consumed message as a child printed it.
struct Consumed {
  int session = 0;  // which consumer process printed it
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
};

bool parse_msg(const std::string& line, int session, Consumed* out) {
  std::istringstream in(line);
  std::string tag;
  in >> tag >> out->partition >> out->offset >> out->key >> out->value;
  out->session = session;
  return tag == "MSG" && !in.fail();
}

// "k3:17" -> key "k3", seq 17; false when the value has another shape.
bool parse_value(const std::string& value, std::string* key, int64_t* seq) {
  auto colon = value.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()) return false;
  *key = value.substr(0, colon);
  for (size_t i = colon + 1; i < value.size(); ++i)
    if (value[i] < '0' || value[i] > '9') return false;
  *seq = std::stoll(value.substr(colon + 1));
  return true;
}

// ---------------------------------------------------------------------------------------------

TEST(CrashTest, KillProducerAndConsumerAtRandom) {
  const int rounds = env_int("SLUICE_CRASH_ROUNDS", 30);
  const char* seed_env = std::getenv("SLUICE_CRASH_SEED");
  const auto seed = seed_env != nullptr && *seed_env != '\0'
                        ? static_cast<uint32_t>(std::strtoul(seed_env, nullptr, 10))
                        : static_cast<uint32_t>(std::random_device{}());
  std::printf("crash test: %d rounds, SLUICE_CRASH_SEED=%u\n", rounds, seed);
  std::mt19937 rng(seed);
  TempDir tmp;
  const std::string dir = tmp.path() + "/queue";
  const std::string stderr_path = tmp.path() + "/children.stderr";
  const std::string topic = "crash";
  const std::string group = "crash";
  {
    auto q = open_log(dir);
    ASSERT_NE(q, nullptr);
    queue::TopicConfig cfg;
    cfg.partitions = kPartitions;
    ASSERT_TRUE(q->admin().create_topic(topic, cfg).is_ok());
  }

  std::vector<int64_t> next_seq(kKeys, 0);
  std::map<std::string, int64_t> max_tried;  // key -> highest seq announced
  struct Acked {
    std::string key;
    int64_t seq;
    int32_t partition;
    int64_t offset;
  };
  std::vector<Acked> acked;
  std::vector<Consumed> consumed;
  std::vector<std::string> findings;  // children that did not die the way the test killed them
  int producer_runs = 0;
  int consumer_runs = 0;

  auto seqs_arg = [&] {
    std::string s;
    for (int k = 0; k < kKeys; ++k) s += (k ? "," : "") + std::to_string(next_seq[k]);
    return s;
  };
  // Reaps a killed child and takes in what it printed.
  auto finish_producer = [&](Child& c) {
    int status = c.kill_and_reap();
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      findings.push_back("producer " + std::to_string(c.pid()) + " " + describe_status(status));
    }
    for (const auto& l : c.lines()) {
      std::istringstream in(l);
      std::string tag, key;
      int64_t seq = 0;
      in >> tag >> key >> seq;
      if (tag == "TRY") {
        auto& m = max_tried.try_emplace(key, -1).first->second;
        m = std::max(m, seq);
        int k = std::stoi(key.substr(1));
        next_seq[k] = std::max(next_seq[k], seq + 1);
      } else if (tag == "ACK") {
        Acked a{key, seq, 0, 0};
        in >> a.partition >> a.offset;
        acked.push_back(a);
      } else if (tag != "NACK") {
        findings.push_back("producer printed: " + l);
      }
    }
  };
  auto finish_consumer = [&](Child& c, int session, bool killed) {
    int status = killed ? c.kill_and_reap() : 0;
    if (killed && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      findings.push_back("consumer " + std::to_string(c.pid()) + " " + describe_status(status));
    }
    for (const auto& l : c.lines()) {
      Consumed m;
      if (parse_msg(l, session, &m)) {
        consumed.push_back(m);
      } else if (!l.starts_with("STARTED") && !l.starts_with("ASSIGNED") && !l.starts_with("DRAINED")) {
        findings.push_back("consumer printed: " + l);
      }
    }
  };

  auto start = Clock::now();
  // Two producer processes append to the same partitions at once (serialised by the partition
  // lock, which a killed writer drops mid-append); each owns half of the keys, so every key has
  // one writer and one sequence.
  const char* key_ranges[2] = {"0-7", "8-15"};
  std::unique_ptr<Child> producers[2];
  std::unique_ptr<Child> consumer;
  int session = 0;
  std::uniform_int_distribution<int> delay_ms(20, 300);
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < 2; ++i) {
      if (producers[i]) continue;
      producers[i] = std::make_unique<Child>(
          std::vector<std::string>{"produce", dir, topic, seqs_arg(), "--keys", key_ranges[i]}, stderr_path);
      ++producer_runs;
    }
    if (!consumer) {
      consumer = std::make_unique<Child>(std::vector<std::string>{"consume", dir, group, topic}, stderr_path);
      ++consumer_runs;
      ++session;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    // Any non-empty set of the three processes dies at once.
    unsigned victims = 1 + rng() % 7;
    for (int i = 0; i < 2; ++i) {
      if ((victims & (1u << i)) == 0) continue;
      finish_producer(*producers[i]);
      producers[i].reset();
    }
    if (victims & 4u) {
      finish_consumer(*consumer, session, true);
      consumer.reset();
    }
  }
  for (auto& p : producers) {
    if (p) finish_producer(*p);
    p.reset();
  }
  if (consumer) finish_consumer(*consumer, session, true);
  consumer.reset();

  // A last consumer drains the group; it exits by itself once the lag is zero.
  {
    Child drain({"drain", dir, group, topic, "30000"}, stderr_path);
    ++session;
    auto status = drain.wait_exit(40s);
    if (!status) {
      drain.kill_and_reap();
      FAIL() << "the draining consumer hung\n" << tail_of(stderr_path);
    }
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "draining consumer " << describe_status(*status) << "\n"
        << tail_of(stderr_path);
    finish_consumer(drain, session, false);
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_TRUE(findings.empty()) << findings.size()
                                << " unexpected child outcomes, first: " << findings.front() << "\n"
                                << tail_of(stderr_path);

  int64_t tried = 0;
  for (const auto& [k, m] : max_tried) tried += m + 1;
  std::printf(
      "crash test: %lld ms, %d producer and %d consumer processes, %lld messages tried, %zu acknowledged, "
      "%zu deliveries\n",
      static_cast<long long>(elapsed), producer_runs, consumer_runs, static_cast<long long>(tried),
      acked.size(), consumed.size());
  ASSERT_GT(acked.size(), 100u) << "the producers acknowledged almost nothing; the test proves nothing";

  // What the log holds, from the deliveries: one value per (partition, offset), whoever saw it.
  std::map<std::pair<int32_t, int64_t>, std::string> log;
  int duplicates = 0;
  for (const auto& m : consumed) {
    auto [it, fresh] = log.emplace(std::make_pair(m.partition, m.offset), m.value);
    if (!fresh) {
      ++duplicates;
      EXPECT_EQ(it->second, m.value) << "offset " << m.partition << "/" << m.offset << " read as two values";
    }
    // Nothing invented: the value parses, belongs to its key and was announced by a producer.
    std::string key;
    int64_t seq = -1;
    ASSERT_TRUE(parse_value(m.value, &key, &seq)) << "consumed a value that was never sent: " << m.value;
    EXPECT_EQ(key, m.key) << "value " << m.value << " under key " << m.key;
    auto tried_it = max_tried.find(key);
    ASSERT_NE(tried_it, max_tried.end()) << "consumed key " << key << " that no producer tried";
    EXPECT_LE(seq, tried_it->second) << "consumed " << m.value << ", beyond the last seq tried for " << key;
    EXPECT_EQ(m.partition, queue::partition_for_key(m.key, kPartitions).value()) << m.value;
  }
  std::printf("crash test: %zu distinct messages consumed, %d redeliveries\n", log.size(), duplicates);

  // Every acknowledged message was consumed, at the offset its report named.
  size_t lost = 0;
  for (const auto& a : acked) {
    auto it = log.find({a.partition, a.offset});
    if (it == log.end()) {
      if (++lost <= 5)
        ADD_FAILURE() << "acknowledged " << a.key << ":" << a.seq << " at " << a.partition << "/" << a.offset
                      << " was never consumed";
      continue;
    }
    EXPECT_EQ(it->second, a.key + ":" + std::to_string(a.seq)) << "the report's offset holds another message";
  }
  EXPECT_EQ(lost, 0u) << "acknowledged messages lost";

  // Nothing stored was skipped: each partition's consumed offsets are exactly 0 .. end-1.
  auto q = open_log(dir);
  ASSERT_NE(q, nullptr);
  auto info = q->admin().describe_topic(topic);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  for (const auto& p : info->partition_info) {
    int64_t seen = 0;
    for (int64_t o = p.start.value(); o < p.end.value(); ++o) seen += log.count({p.partition.value(), o});
    EXPECT_EQ(seen, p.end - p.start) << "partition " << p.partition.value() << " holds " << p.end - p.start
                                     << " messages but only " << seen << " were consumed";
  }
  auto g = q->admin().describe_group(group);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (const auto& gp : g->partitions) EXPECT_EQ(gp.lag, 0) << "partition " << gp.partition.value();

  // Per key, in offset order, the sequence only grows: send order survived every crash (a killed
  // producer's unsent tail is skipped, never reordered, because its successor continues above it).
  std::map<std::string, std::pair<int64_t, int64_t>> last;  // key -> (offset, seq)
  for (const auto& [pos, value] : log) {
    std::string key;
    int64_t seq = 0;
    if (!parse_value(value, &key, &seq)) continue;
    auto it = last.find(key);
    if (it != last.end()) {
      EXPECT_LT(it->second.second, seq)
          << "key " << key << ": offset " << pos.second << " holds seq " << seq << " after seq "
          << it->second.second << " at offset " << it->second.first;
    }
    last[key] = {pos.second, seq};
  }

  // Within one consumer process a partition's offsets only grow; a restarted consumer resumes at or
  // before the first offset nobody has seen (a redelivery, never a gap).
  std::map<std::pair<int, int32_t>, int64_t> last_in_session;
  std::map<int32_t, int64_t> high_water;  // partition -> highest offset delivered so far
  std::map<std::pair<int, int32_t>, bool> started;
  for (const auto& m : consumed) {
    auto key = std::make_pair(m.session, m.partition);
    auto it = last_in_session.find(key);
    if (it != last_in_session.end()) {
      EXPECT_EQ(m.offset, it->second + 1) << "session " << m.session << " partition " << m.partition
                                          << " jumped from " << it->second << " to " << m.offset;
    } else {
      int64_t hw = high_water.count(m.partition) ? high_water[m.partition] : -1;
      EXPECT_LE(m.offset, hw + 1) << "consumer " << m.session << " started partition " << m.partition
                                  << " at " << m.offset << " but only up to " << hw << " had been delivered";
    }
    last_in_session[key] = m.offset;
    high_water[m.partition] =
        std::max(high_water.count(m.partition) ? high_water[m.partition] : -1, m.offset);
  }
}

TEST(CrashTest, HotStandbyTakesOverFromCommittedOffset) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/queue";
  const std::string stderr_path = tmp.path() + "/children.stderr";
  const std::string topic = "standby";
  const std::string group = "standby";
  constexpr int32_t kParts = 2;
  auto q = open_log(dir);
  ASSERT_NE(q, nullptr);
  queue::TopicConfig cfg;
  cfg.partitions = kParts;
  ASSERT_TRUE(q->admin().create_topic(topic, cfg).is_ok());

  // The parent produces; the reports say which value sits at which offset.
  std::mutex mu;
  std::map<std::pair<int32_t, int64_t>, std::string> stored;
  queue::ProducerOptions popts;
  popts.on_delivery = [&](const queue::DeliveryReport& r) {
    std::lock_guard lock(mu);
    if (r.status.is_ok())
      stored[{r.partition.value(), r.offset.value()}] = *static_cast<std::string*>(r.opaque);
  };
  auto producer = q->make_producer(std::move(popts));
  ASSERT_TRUE(producer.is_ok()) << producer.status().to_string();
  std::vector<std::unique_ptr<std::string>> values;
  auto produce = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      values.push_back(
          std::make_unique<std::string>("k" + std::to_string(i % kKeys) + ":" + std::to_string(i)));
      queue::OutMessage m;
      m.topic = topic;
      std::string key = "k" + std::to_string(i % kKeys);
      m.key = std::string_view(key);
      m.value = *values.back();
      ASSERT_TRUE((*producer)->send(m, values.back().get()).is_ok());
    }
    ASSERT_TRUE((*producer)->flush(10s).is_ok());
  };
  ASSERT_NO_FATAL_FAILURE(produce(0, 100));

  // The first consumer acks 40 messages one at a time, commits, and then holds the group idle.
  Child first({"consume", dir, group, topic, "--max-poll", "1", "--stop-after", "40"}, stderr_path);
  ASSERT_TRUE(first.wait_line([](const std::string& l) { return l == "PAUSED"; }, 20s))
      << "the first consumer never reached 40 acks\n"
      << tail_of(stderr_path);

  // The second waits as a standby: it is up, but receives nothing, even as new messages arrive.
  Child second({"consume", dir, group, topic}, stderr_path);
  ASSERT_TRUE(second.wait_line([](const std::string& l) { return l == "STARTED"; }, 20s))
      << tail_of(stderr_path);
  ASSERT_NO_FATAL_FAILURE(produce(100, 120));
  std::this_thread::sleep_for(1500ms);
  for (const auto& l : second.lines()) {
    EXPECT_FALSE(l.starts_with("MSG")) << "the standby consumed while the first consumer was alive: " << l;
    EXPECT_TRUE(l == "STARTED" || l == "ASSIGNED 0") << "standby printed: " << l;
  }

  // The committed offsets are what the first consumer acked (it acked each message it printed).
  std::map<int32_t, int64_t> acked_per_partition;
  for (const auto& l : first.lines()) {
    Consumed m;
    if (parse_msg(l, 1, &m))
      acked_per_partition[m.partition] = std::max(acked_per_partition[m.partition], m.offset + 1);
  }
  std::map<int32_t, int64_t> committed;
  {
    auto info = q->admin().describe_group(group);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->state, "active");
    int64_t total = 0;
    for (const auto& gp : info->partitions) {
      committed[gp.partition.value()] = gp.committed ? gp.committed->value() : 0;
      total += committed[gp.partition.value()];
      EXPECT_EQ(committed[gp.partition.value()], acked_per_partition[gp.partition.value()])
          << "partition " << gp.partition.value();
    }
    EXPECT_EQ(total, 40);
    // Another process (this one) sees who serves the group, and may not move its offsets.
    const std::string member = "crash-child-" + std::to_string(first.pid());
    EXPECT_NE(std::find(info->members.begin(), info->members.end(), member), info->members.end())
        << "describe_group from another process does not list " << member;
    auto reset = q->admin().reset_offsets(group, topic, queue::ResetSpec{});
    EXPECT_EQ(reset.status().code(), Code::kBusy)
        << "reset while another process serves the group: " << reset.status().to_string();
  }

  auto killed_at = Clock::now();
  int status = first.kill_and_reap();
  EXPECT_TRUE(WIFSIGNALED(status)) << describe_status(status);
  // Looking at the group while nobody serves it must not keep it from the standby.
  EXPECT_TRUE(q->admin().describe_group(group).is_ok());
  ASSERT_TRUE(second.wait_line([](const std::string& l) { return l.starts_with("MSG"); }, 15s))
      << "the standby never took over\n"
      << tail_of(stderr_path);
  auto takeover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at).count();
  std::printf("standby took over %lld ms after the kill\n", static_cast<long long>(takeover_ms));

  const size_t expected = 120 - 40;
  auto count_msgs = [&] {
    size_t n = 0;
    for (const auto& l : second.lines()) n += l.starts_with("MSG");
    return n;
  };
  auto deadline = Clock::now() + 15s;
  while (count_msgs() < expected && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(300ms);  // anything beyond is a duplicate
  second.kill_and_reap();

  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const auto& l : second.lines()) {
    Consumed m;
    if (!parse_msg(l, 2, &m)) continue;
    offsets[m.partition].push_back(m.offset);
    std::lock_guard lock(mu);
    EXPECT_EQ(stored[std::make_pair(m.partition, m.offset)], m.value)
        << "at " << m.partition << "/" << m.offset;
  }
  std::map<int32_t, int64_t> ends;
  for (const auto& [pos, v] : stored) ends[pos.first] = std::max(ends[pos.first], pos.second + 1);
  for (int32_t p = 0; p < kParts; ++p) {
    std::vector<int64_t> want;
    for (int64_t o = committed[p]; o < ends[p]; ++o) want.push_back(o);
    EXPECT_EQ(offsets[p], want) << "partition " << p
                                << ": the standby must resume exactly at the committed offset "
                                << committed[p] << " and read on, in order, to " << ends[p];
  }
}

}  // namespace
}  // namespace sluice
