// Kafka connection settings: what `kafka://host1:9092,host2:9092?prop=value&...` and the
// environment say, turned into the librdkafka properties every client of one Queue is built with.
//
// Sources, strongest first (a property set by a stronger source hides the weaker ones):
//   1. the URI: hosts give bootstrap.servers; each query parameter is a librdkafka property
//      passed through as is (values percent-decoded), e.g. ?security.protocol=SASL_SSL;
//   2. SLUICE_KAFKA_<PROP> variables: PROP upper-case with '_' for '.', e.g.
//      SLUICE_KAFKA_SASL_USERNAME=alice sets sasl.username;
//   3. the names the seeds use: KAFKA_BOOTSTRAP_SERVERS (only when the URI names no host, as in
//      `kafka://`), KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
//      KAFKA_SASL_PASSWORD, KAFKA_SESSION_TIMEOUT_MS, KAFKA_MAX_POLL_INTERVAL_MS,
//      KAFKA_HEARTBEAT_INTERVAL_MS;
//   4. sluice's defaults (acks=all, idempotence, lz4, cooperative-sticky ...; see kafka_queue.cc).
// A few properties belong to sluice and cannot be set: group.id (the consumer's group),
// group.instance.id (static membership would hold a dead worker's partitions for a whole session
// timeout), enable.auto.commit and enable.auto.offset.store (sluice commits what was processed),
// auto.offset.reset (ConsumerOptions::start_from). The seeds' KAFKA_GROUP_ID,
// KAFKA_AUTO_OFFSET_RESET, KAFKA_MAX_POLL_RECORDS and KAFKA_AUTO_COMMIT_INTERVAL_MS are therefore
// pipeline settings (group, start_from, max_in_flight, commit_interval), read there. Any other
// KAFKA_* variable that changes nothing (KAFKA_ENABLE_AUTO_COMMIT=true, the seeds' topic names, a
// misspelt name) becomes a note saying so, logged when the queue opens.
//
// Nothing here checks that a property exists: librdkafka does, when the Queue is opened, and its
// refusal becomes a BadInput naming the property and where it came from.
// Thread-safety: values and pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::queue::kafka {

// One librdkafka property and where it was set (for messages a person can act on).
struct KafkaProperty {
  std::string name;
  std::string value;
  std::string source;  // "URI", "environment SLUICE_KAFKA_SASL_USERNAME", ...
};

// Which clients a property is given to. librdkafka warns about (and ignores) a consumer property
// on a producer and the other way round; sluice gives each client only what concerns it.
enum class Scope { kAll, kProducer, kConsumer };
Scope property_scope(std::string_view name);

struct KafkaSettings {
  std::string bootstrap_servers;  // never empty after parsing
  // Every property but bootstrap.servers, each name once (the strongest source's value).
  std::vector<KafkaProperty> properties;
  // KAFKA_* variables of the environment that change nothing, each with why (for a warning).
  std::vector<std::string> notes;
};

using Environment = std::vector<std::pair<std::string, std::string>>;

// The process environment as name/value pairs.
Environment process_environment();

// Parses a kafka:// URI with env as the environment. BadInput names what is wrong: no bootstrap
// servers anywhere, a malformed query, a property sluice owns.
[[nodiscard]] Result<KafkaSettings> parse_kafka_uri(std::string_view uri, const Environment& env);

// True for properties whose values must not appear in messages or logs (passwords, keys).
bool is_secret_property(std::string_view name);

}  // namespace sluice::queue::kafka
