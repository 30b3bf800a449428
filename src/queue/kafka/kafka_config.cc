#include "queue/kafka/kafka_config.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "config/property.h"

extern char** environ;  // NOLINT: POSIX, declared by no header in strict C++ mode

namespace sluice::queue::kafka {
namespace {

// The seeds' variable names and the properties they stand for (bootstrap servers apart).
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kSeedAliases = {{
    {"KAFKA_SECURITY_PROTOCOL", "security.protocol"},
    {"KAFKA_SASL_MECHANISM", "sasl.mechanism"},
    {"KAFKA_SASL_USERNAME", "sasl.username"},
    {"KAFKA_SASL_PASSWORD", "sasl.password"},
    {"KAFKA_SESSION_TIMEOUT_MS", "session.timeout.ms"},
    {"KAFKA_MAX_POLL_INTERVAL_MS", "max.poll.interval.ms"},
    {"KAFKA_HEARTBEAT_INTERVAL_MS", "heartbeat.interval.ms"},
}};
constexpr std::string_view kGenericPrefix = "SLUICE_KAFKA_";

// The seeds' other KAFKA_* names. Some are pipeline settings (read there, through their property
// table's aliases); the rest change nothing in sluice, and a person who sets them is told why.
constexpr std::array<std::string_view, 4> kReadByPipeline = {
    "KAFKA_GROUP_ID", "KAFKA_MAX_POLL_RECORDS", "KAFKA_AUTO_OFFSET_RESET", "KAFKA_AUTO_COMMIT_INTERVAL_MS"};

bool is_false(std::string_view v) {
  return v == "false" || v == "0" || v == "no" || v == "False" || v == "FALSE";
}

// Why a KAFKA_* variable is not applied, or empty when it is (or when its value asks for what
// sluice does anyway).
std::string unused_variable_note(std::string_view var, std::string_view value) {
  if (var == "KAFKA_BOOTSTRAP_SERVERS") return {};
  for (const auto& [alias, prop] : kSeedAliases)
    if (var == alias) return {};
  for (auto name : kReadByPipeline)
    if (var == name) return {};
  const std::string given = std::string(var) + "=" + std::string(value);
  if (var == "KAFKA_ENABLE_AUTO_COMMIT") {
    if (is_false(value)) return {};
    return given +
           " is ignored: sluice commits an offset only after its message was processed "
           "(--commit-interval sets how often)";
  }
  if (var == "KAFKA_ENABLE_PRODUCER") {
    if (!is_false(value)) return {};
    return given + " is ignored: every document's result is published on doc_results";
  }
  if (var == "KAFKA_TOPIC_TASKS" || var == "KAFKA_TASK_TOPIC" || var == "KAFKA_RESULT_TOPIC") {
    return given +
           " is ignored: the pipeline's topics have fixed names (tasks on doc_upload, results on "
           "doc_results; `sluice topics` lists them all)";
  }
  // A Kafka installation's own variables (KAFKA_HOME, KAFKA_HEAP_OPTS, ...) are not meant for us.
  if (var == "KAFKA_HOME" || var.ends_with("_OPTS")) return {};
  return std::string(var) +
         " is not a variable sluice reads: set librdkafka properties in the URI "
         "(kafka://host:9092?name=value) or as SLUICE_KAFKA_<NAME>";
}

// Properties sluice sets itself, and why a person may not.
std::string_view owned_by_sluice(std::string_view name) {
  if (name == "group.id") return "the group comes from the consumer (the stage or --group)";
  if (name == "group.instance.id")
    return "static membership would keep a dead worker's partitions until its session times out";
  if (name == "enable.auto.commit" || name == "enable.auto.offset.store")
    return "sluice commits an offset only after the message was processed (at-least-once)";
  if (name == "auto.offset.reset") return "where a new group starts is the consumer's start_from";
  return {};
}

// Keeps the first value seen for each name: sources are applied strongest first.
void add(std::vector<KafkaProperty>& props, std::string name, std::string value, std::string source) {
  for (const auto& p : props)
    if (p.name == name) return;
  props.push_back({std::move(name), std::move(value), std::move(source)});
}

}  // namespace

bool is_secret_property(std::string_view name) {
  return name.find("password") != std::string_view::npos || name.find("secret") != std::string_view::npos ||
         name.find(".key") != std::string_view::npos || name.find("token") != std::string_view::npos;
}

Scope property_scope(std::string_view name) {
  static constexpr std::array<std::string_view, 14> kConsumer = {
      "group.",
      "session.timeout.ms",
      "heartbeat.interval.ms",
      "max.poll.interval.ms",
      "fetch.",
      "queued.",
      "partition.assignment",
      "isolation.level",
      "check.crcs",
      "enable.partition",
      "coordinator.query",
      "auto.commit",
      "consume.",
      "allow.auto.create",
  };
  static constexpr std::array<std::string_view, 15> kProducer = {
      "linger.ms",
      "queue.buffering",
      "batch.",
      "acks",
      "request.required.acks",
      "compression.",
      "enable.idempotence",
      "message.timeout.ms",
      "delivery.timeout.ms",
      "partitioner",
      "message.send.max.retries",
      "retries",
      "sticky.partitioning",
      "transaction",
      "retry.backoff",
  };
  for (auto p : kConsumer)
    if (name.starts_with(p)) return Scope::kConsumer;
  for (auto p : kProducer)
    if (name.starts_with(p)) return Scope::kProducer;
  return Scope::kAll;
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = kv.substr(0, eq);
    if (name.starts_with("KAFKA_") || name.starts_with(kGenericPrefix))
      env.emplace_back(std::string(name), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Result<KafkaSettings> parse_kafka_uri(std::string_view uri, const Environment& env) {
  std::string_view rest = uri;
  if (!rest.starts_with("kafka://")) {
    return Status::invalid_argument("kafka URI '" + std::string(uri) +
                                    "' must start with kafka:// (kafka://host1:9092,host2:9092)");
  }
  rest.remove_prefix(8);
  auto q = rest.find('?');
  std::string_view hosts = rest.substr(0, q);
  while (!hosts.empty() && hosts.back() == '/') hosts.remove_suffix(1);
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);

  KafkaSettings s;
  std::vector<KafkaProperty>& props = s.properties;
  std::string bootstrap_source;
  if (!hosts.empty()) {
    s.bootstrap_servers = std::string(hosts);
    bootstrap_source = "URI";
  }

  // 1. The URI's query.
  for (const auto& pair : config::split_query(query)) {
    if (!pair.value || pair.name.empty()) {
      return Status::invalid_argument("kafka URI parameter '" + std::string(pair.name.substr(0, 60)) +
                                      "' is not name=value (librdkafka properties, e.g. "
                                      "?security.protocol=SASL_SSL)");
    }
    std::string name(pair.name);
    SLUICE_ASSIGN_OR_RETURN(std::string value, config::percent_decode(*pair.value, "kafka URI: " + name));
    if (name == "bootstrap.servers") {
      if (!s.bootstrap_servers.empty()) {
        return Status::invalid_argument(
            "kafka URI names bootstrap servers twice (as hosts and as ?bootstrap.servers=)");
      }
      s.bootstrap_servers = value;
      bootstrap_source = "URI";
      continue;
    }
    for (const auto& p : props) {
      if (p.name == name) return Status::invalid_argument("kafka URI sets '" + name + "' twice");
    }
    props.push_back({std::move(name), std::move(value), "URI"});
  }

  // 2. SLUICE_KAFKA_<PROP>, then 3. the seeds' names.
  for (const auto& [var, value] : env) {
    if (!var.starts_with(kGenericPrefix) || var.size() == kGenericPrefix.size()) continue;
    std::string name;
    for (char c : std::string_view(var).substr(kGenericPrefix.size()))
      name.push_back(c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (name == "bootstrap.servers") {
      if (s.bootstrap_servers.empty()) {
        s.bootstrap_servers = value;
        bootstrap_source = "environment " + var;
      }
      continue;
    }
    add(props, std::move(name), value, "environment " + var);
  }
  for (const auto& [var, value] : env) {
    if (!var.starts_with(kGenericPrefix)) {
      if (std::string note = unused_variable_note(var, value); !note.empty())
        s.notes.push_back(std::move(note));
    }
    if (var == "KAFKA_BOOTSTRAP_SERVERS") {
      if (s.bootstrap_servers.empty()) {
        s.bootstrap_servers = value;
        bootstrap_source = "environment " + var;
      }
      continue;
    }
    for (const auto& [alias, prop] : kSeedAliases) {
      if (var == alias) add(props, std::string(prop), value, "environment " + var);
    }
  }

  if (s.bootstrap_servers.empty()) {
    return Status::invalid_argument("kafka URI '" + std::string(uri) +
                                    "' names no broker: write kafka://host:9092[,host2:9092] or set "
                                    "KAFKA_BOOTSTRAP_SERVERS");
  }
  for (const auto& p : props) {
    if (auto why = owned_by_sluice(p.name); !why.empty()) {
      return Status::invalid_argument("kafka property '" + p.name + "' (from " + p.source +
                                      ") cannot be set: " + std::string(why));
    }
  }
  return s;
}

}  // namespace sluice::queue::kafka
