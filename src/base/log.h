// Structured logging: one JSON object per line on stderr or a chosen file (ts, level, msg, then fields).
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace sluice::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void set_min_level(Level level);
Level min_level();
// Sends the lines to fd instead of stderr (2), e.g. a log file while a progress bar owns the
// terminal. The caller keeps fd open for as long as it is set.
void set_fd(int fd);
// Writes {"ts":"...","level":"...","msg":msg, ...fields} to stderr.
void write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

inline void info(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kInfo, msg, f);
}
inline void warn(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kWarn, msg, f);
}
inline void error(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kError, msg, f);
}

}  // namespace sluice::log
