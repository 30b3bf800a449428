#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "base/clock.h"

namespace sluice::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("SLUICE_LOG_LEVEL");
  if (!env) return Level::kInfo;
  std::string_view v(env);
  if (v == "debug") return Level::kDebug;
  if (v == "warn") return Level::kWarn;
  if (v == "error") return Level::kError;
  return Level::kInfo;
}

std::atomic<Level> g_min_level{initial_level()};
std::atomic<int> g_fd{2};

std::string_view level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void set_min_level(Level level) {
  g_min_level.store(level);
}

Level min_level() {
  return g_min_level.load();
}

void set_fd(int fd) {
  g_fd.store(fd);
}

void write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (level < g_min_level.load(std::memory_order_relaxed)) return;
  const std::string ts = iso8601_utc(wall_clock_ms());
  nlohmann::json line = {{"ts", ts}, {"level", level_name(level)}, {"msg", msg}};
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  std::string s = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s += '\n';
  ssize_t ignored = ::write(g_fd.load(std::memory_order_relaxed), s.data(), s.size());
  (void)ignored;
}

}  // namespace sluice::log
