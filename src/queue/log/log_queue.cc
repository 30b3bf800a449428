// TEMPORARY stub so the tree links while the backend is written.
#include "queue/log/log_queue.h"

namespace sluice::queue::log {
Result<LogOptions> parse_log_uri(std::string_view uri) {
  LogOptions o;
  std::string_view rest = uri.starts_with("log:") ? uri.substr(4) : uri;
  o.dir = std::string(rest.substr(0, rest.find('?')));
  return o;
}
Result<std::unique_ptr<Queue>> open_log_queue(const LogOptions&) {
  return Status::unsupported("log backend not yet implemented");
}
}  // namespace sluice::queue::log
