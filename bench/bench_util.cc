// Machine facts, temporary directories and statistics for the benchmarks (see bench_util.h).
#include "bench_util.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::bench {
namespace {

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// The value of the first "key : value" line of /proc/cpuinfo whose key is one of keys.
std::string cpuinfo_field(const std::vector<std::string>& keys) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon));
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return trim(line.substr(colon + 1));
  }
  return "";
}

// Undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
std::string unescape_mount_field(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The mount holding path: the mountinfo entry with the longest mount point that prefixes it.
nlohmann::json filesystem_of(const std::string& path) {
  std::error_code ec;
  std::string real = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) real = path;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  nlohmann::json best = {{"type", "unknown"}};
  size_t best_len = 0;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point, options;
    fields >> id >> parent >> dev >> root >> mount_point >> options;
    std::string tok;
    while (fields >> tok && tok != "-") {
    }
    std::string fstype, source, super_options;
    fields >> fstype >> source >> super_options;
    mount_point = unescape_mount_field(mount_point);
    bool prefix = real == mount_point || mount_point == "/" ||
                  (real.starts_with(mount_point) && real.size() > mount_point.size() &&
                   real[mount_point.size()] == '/');
    if (prefix && mount_point.size() >= best_len) {
      best_len = mount_point.size();
      best = {{"type", fstype}, {"source", source}, {"mount_point", mount_point}, {"options", options}};
    }
  }
  return best;
}

nlohmann::json json_int(double v) {
  return static_cast<int64_t>(v);
}

}  // namespace

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

nlohmann::json machine_facts(const std::string& dir) {
  nlohmann::json m;
  std::string cpu = cpuinfo_field({"model name", "Model", "Hardware", "cpu model"});
  m["cpu_model"] = cpu.empty() ? "unknown" : cpu;
  m["cores"] = std::thread::hardware_concurrency();
  struct utsname u {};
  if (uname(&u) == 0) {
    m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine;
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t value = 0;
  while (meminfo >> key >> value) {
    if (key == "MemTotal:") {
      m["mem_total_kib"] = value;
      break;
    }
    meminfo.ignore(1 << 10, '\n');
  }
  m["filesystem"] = filesystem_of(dir);
  m["loadavg"] = load_average();
  return m;
}

nlohmann::json fdatasync_probe(const std::string& dir, int count) {
  std::string path = dir + "/fdatasync-probe";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return {{"error", std::string("open: ") + std::strerror(errno)}};
  char block[128];
  std::memset(block, 'p', sizeof block);
  std::vector<int64_t> ns;
  ns.reserve(count);
  for (int i = 0; i < count; ++i) {
    if (::write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block)) break;
    int64_t t0 = now_ns();
    if (::fdatasync(fd) != 0) break;
    ns.push_back(now_ns() - t0);
  }
  ::close(fd);
  ::unlink(path.c_str());
  std::sort(ns.begin(), ns.end());
  auto us = [](int64_t v) { return round_to(v / 1e3, 1); };
  return {{"count", ns.size()},
          {"p50_us", us(percentile_sorted(ns, 0.5))},
          {"p99_us", us(percentile_sorted(ns, 0.99))},
          {"max_us", us(ns.empty() ? 0 : ns.back())}};
}

Result<std::string> make_temp_dir(const std::string& base, const std::string& prefix) {
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  if (ec) return Status::io_error("cannot create " + base + ": " + ec.message());
  std::string tmpl = base + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return Status::io_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return std::string(buf.data());
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

int64_t proc_status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string want = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.starts_with(want)) return std::strtoll(line.c_str() + want.size(), nullptr, 10);
  }
  return -1;
}

CpuTimes cpu_times() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return {secs(ru.ru_utime), secs(ru.ru_stime)};
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

nlohmann::json median_of_runs(const std::vector<nlohmann::json>& runs) {
  nlohmann::json out = nlohmann::json::object();
  if (runs.empty()) return out;
  for (const auto& [key, first] : runs[0].items()) {
    if (!first.is_number()) continue;
    std::vector<double> values;
    for (const auto& r : runs) {
      if (r.contains(key) && r[key].is_number()) values.push_back(r[key].get<double>());
    }
    double m = median(values);
    bool integral = first.is_number_integer() && m == std::floor(m);
    out[key] = integral ? json_int(m) : nlohmann::json(round_to(m));
  }
  return out;
}

nlohmann::ordered_json queue_summary(const std::vector<nlohmann::ordered_json>& runs,
                                     nlohmann::ordered_json settings) {
  const auto med = median_of_runs(std::vector<nlohmann::json>(runs.begin(), runs.end()));
  nlohmann::ordered_json out = {{"type", "summary"},
                                {"machine", machine_facts(".")},
                                {"load_average", load_average()},
                                {"build_type", SLUICE_BENCH_BUILD_TYPE}};
  for (auto& [k, v] : settings.items()) out[k] = v;
  out["median"] = med;
  auto ratio = [&](const char* sluice, const char* plain) {
    const double s = med.value(sluice, 0.0), p = med.value(plain, 0.0);
    return p > 0 ? s / p : 0.0;
  };
  out["ratio_produce_vs_plain"] = ratio("sluice_produce_msgs_s", "plain_produce_msgs_s");
  out["ratio_consume_vs_plain"] = ratio("sluice_consume_msgs_s", "plain_consume_msgs_s");
  return out;
}

int64_t percentile_sorted(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double round_to(double v, int digits) {
  double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

std::string key_of(int64_t i) {
  return "doc-" + std::to_string(i % 10007);
}

double sluice_produce(queue::Queue& q, const std::string& topic, int64_t messages, size_t size,
                      const char* who) {
  std::atomic<int64_t> failed{0};
  queue::ProducerOptions po;
  po.on_delivery = [&](const queue::DeliveryReport& r) {
    if (!r.status.is_ok()) ++failed;
  };
  auto p = q.make_producer(po);
  if (!p.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", who, p.status().to_string().c_str());
    return 0;
  }
  std::string value(size, 'x');
  auto t0 = Clock::now();
  for (int64_t i = 0; i < messages; ++i) {
    std::string key = key_of(i);
    queue::OutMessage m;
    m.topic = topic;
    m.key = key;
    m.value = value;
    auto r = (*p)->send(m);
    if (!r.is_ok()) {
      std::fprintf(stderr, "%s: send: %s\n", who, r.status().to_string().c_str());
      return 0;
    }
  }
  Status st = (*p)->flush(std::chrono::milliseconds(60000));
  double secs = seconds_since(t0);
  if (!st.is_ok() || failed != 0)
    std::fprintf(stderr, "%s: sluice producer: %s\n", who, st.to_string().c_str());
  return messages / secs;
}

double sluice_consume(queue::Queue& q, const std::string& topic, const std::string& group, int64_t messages,
                      const char* who) {
  queue::ConsumerOptions co;
  co.group = group;
  co.topics = {topic};
  auto c = q.make_consumer(co);
  if (!c.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", who, c.status().to_string().c_str());
    return 0;
  }
  std::vector<queue::Message> batch;
  int64_t got = 0;
  Clock::time_point t0;
  bool started = false;
  while (got < messages) {
    batch.clear();
    Status st = (*c)->poll(batch, 4096, std::chrono::milliseconds(100));
    if (!st.is_ok()) {
      std::fprintf(stderr, "%s: poll: %s\n", who, st.to_string().c_str());
      return 0;
    }
    if (!batch.empty() && !started) {
      t0 = Clock::now();
      started = true;
    }
    for (const auto& m : batch) {
      (void)(*c)->ack(m);
      ++got;
    }
  }
  (void)(*c)->commit();
  double secs = seconds_since(t0);
  (void)(*c)->close();
  return got / secs;
}

}  // namespace sluice::bench
