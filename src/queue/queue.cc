#include "queue/queue.h"

#include <unistd.h>

#include <atomic>

#include "queue/amqp/amqp_queue.h"
#include "queue/kafka/kafka_queue.h"
#include "queue/log/log_queue.h"
#include "queue/redis/redis_queue.h"

namespace sluice::queue {

namespace {

// `what` is "topic" or "group": the rule is one, the messages say which name was wrong.
Status validate_name(std::string_view name, std::string_view what) {
  const std::string w(what);
  if (name.empty()) return Status::invalid_argument(w + " name is empty");
  if (name.size() > 249) {
    return Status::invalid_argument(w + " name '" + std::string(name.substr(0, 40)) +
                                    "...' is longer than 249 characters");
  }
  if (name == "." || name == "..") return Status::invalid_argument(w + " name cannot be '.' or '..'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) {
      return Status::invalid_argument(w + " name '" + std::string(name) +
                                      "' has a character outside [A-Za-z0-9._-]");
    }
  }
  return {};
}

}  // namespace

Status validate_topic_name(std::string_view name) {
  return validate_name(name, "topic");
}
Status ensure_topic(Admin& admin, std::string_view name, const TopicConfig& cfg) {
  auto info = admin.describe_topic(name);
  if (info.is_ok()) return {};
  if (info.status().code() != Code::kNotFound) return info.status();
  Status st = admin.create_topic(name, cfg);
  return st.code() == Code::kAlreadyExists ? Status::ok() : st;
}

std::string default_member_name() {
  static std::atomic<uint64_t> counter{0};
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(++counter);
}

Status validate_group_name(std::string_view name) {
  return validate_name(name, "group");
}

Result<std::unique_ptr<Queue>> open_queue(std::string_view uri, const QueueOpenOptions& open_opts) {
  auto colon = uri.find("://");
  std::string_view scheme;
  if (colon != std::string_view::npos) {
    scheme = uri.substr(0, colon);
  } else if (uri.starts_with("log:")) {
    scheme = "log";
  } else {
    scheme = "log";  // a bare path
  }
  if (scheme == "log") {
    SLUICE_ASSIGN_OR_RETURN(auto opts, log::parse_log_uri(uri));
    opts.create_if_missing = open_opts.create_if_missing;
    return log::open_log_queue(opts);
  }
  if (scheme == "kafka") return kafka::open_kafka_queue(uri);
  if (scheme == "redis" || scheme == "rediss") return redis::open_redis_queue(uri);
  if (scheme == "amqp" || scheme == "amqps") return amqp::open_amqp_queue(uri);
  return Status::invalid_argument("unknown queue URI scheme '" + std::string(scheme) + "' in '" +
                                  std::string(uri) + "' (expected log:, kafka://, redis:// or amqp://)");
}

}  // namespace sluice::queue
