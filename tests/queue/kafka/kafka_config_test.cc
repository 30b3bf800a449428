// kafka:// URIs and the environment, turned into librdkafka properties (kafka_config.h): where
// bootstrap servers come from, the seeds' KAFKA_* names, SLUICE_KAFKA_<PROP>, precedence, and the
// properties sluice keeps for itself.
#include "queue/kafka/kafka_config.h"

#include <gtest/gtest.h>

#include <optional>

namespace sluice::queue::kafka {
namespace {

std::optional<KafkaProperty> find(const KafkaSettings& s, std::string_view name) {
  for (const auto& p : s.properties)
    if (p.name == name) return p;
  return std::nullopt;
}

TEST(KafkaUri, HostsAndPassThroughProperties) {
  auto s = parse_kafka_uri(
      "kafka://k1:9092,k2:9092?security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-256&sasl.username=alice",
      {});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->bootstrap_servers, "k1:9092,k2:9092");
  ASSERT_EQ(s->properties.size(), 3u);
  EXPECT_EQ(find(*s, "security.protocol")->value, "SASL_SSL");
  EXPECT_EQ(find(*s, "sasl.mechanism")->value, "SCRAM-SHA-256");
  EXPECT_EQ(find(*s, "sasl.username")->source, "URI");
}

TEST(KafkaUri, PercentDecodedValues) {
  auto s = parse_kafka_uri("kafka://k:9092?sasl.password=a%26b%3Dc%25d+e", {});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(find(*s, "sasl.password")->value, "a&b=c%d+e");
  auto bad = parse_kafka_uri("kafka://k:9092?sasl.password=a%2", {});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().error_class(), ErrorClass::kBadInput);
}

TEST(KafkaUri, BootstrapFromEnvironmentOnlyWhenUriHasNoHosts) {
  const Environment env = {{"KAFKA_BOOTSTRAP_SERVERS", "env1:9092,env2:9092"}};
  auto from_env = parse_kafka_uri("kafka://", env);
  ASSERT_TRUE(from_env.is_ok()) << from_env.status().to_string();
  EXPECT_EQ(from_env->bootstrap_servers, "env1:9092,env2:9092");
  auto from_uri = parse_kafka_uri("kafka://uri:9092", env);
  ASSERT_TRUE(from_uri.is_ok());
  EXPECT_EQ(from_uri->bootstrap_servers, "uri:9092");
  // The generic form beats the seeds' name.
  auto generic = parse_kafka_uri(
      "kafka://", {{"KAFKA_BOOTSTRAP_SERVERS", "seed:1"}, {"SLUICE_KAFKA_BOOTSTRAP_SERVERS", "generic:2"}});
  ASSERT_TRUE(generic.is_ok());
  EXPECT_EQ(generic->bootstrap_servers, "generic:2");
}

TEST(KafkaUri, NoBrokerAnywhereIsBadInput) {
  auto s = parse_kafka_uri("kafka://", {});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("KAFKA_BOOTSTRAP_SERVERS"), std::string::npos)
      << s.status().to_string();
}

TEST(KafkaUri, SeedAliases) {
  const Environment env = {
      {"KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"},
      {"KAFKA_SASL_MECHANISM", "PLAIN"},
      {"KAFKA_SASL_USERNAME", "bob"},
      {"KAFKA_SASL_PASSWORD", "secret"},
      {"KAFKA_SESSION_TIMEOUT_MS", "30000"},
      {"KAFKA_MAX_POLL_INTERVAL_MS", "600000"},
      {"KAFKA_HEARTBEAT_INTERVAL_MS", "3000"},
      // Pipeline settings (group, start_from, max_in_flight, commit_interval): read there, so
      // neither properties here nor notes.
      {"KAFKA_GROUP_ID", "g"},
      {"KAFKA_AUTO_OFFSET_RESET", "latest"},
      {"KAFKA_MAX_POLL_RECORDS", "10"},
      {"KAFKA_AUTO_COMMIT_INTERVAL_MS", "5000"},
      // What sluice does anyway.
      {"KAFKA_ENABLE_AUTO_COMMIT", "false"},
      {"KAFKA_ENABLE_PRODUCER", "true"},
  };
  auto s = parse_kafka_uri("kafka://k:9092", env);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(find(*s, "security.protocol")->value, "SASL_PLAINTEXT");
  EXPECT_EQ(find(*s, "sasl.mechanism")->value, "PLAIN");
  EXPECT_EQ(find(*s, "sasl.username")->value, "bob");
  EXPECT_EQ(find(*s, "sasl.password")->value, "secret");
  EXPECT_EQ(find(*s, "session.timeout.ms")->value, "30000");
  EXPECT_EQ(find(*s, "max.poll.interval.ms")->value, "600000");
  EXPECT_EQ(find(*s, "heartbeat.interval.ms")->source, "environment KAFKA_HEARTBEAT_INTERVAL_MS");
  EXPECT_EQ(s->properties.size(), 7u);
  EXPECT_TRUE(s->notes.empty()) << s->notes.front();
}

TEST(KafkaUri, VariablesThatChangeNothingAreNamedInNotes) {
  const Environment env = {
      {"KAFKA_ENABLE_AUTO_COMMIT", "true"}, {"KAFKA_ENABLE_PRODUCER", "false"},
      {"KAFKA_TOPIC_TASKS", "file-tasks"},  {"KAFKA_RESULT_TOPIC", "file-results"},
      {"KAFKA_SASL_USERNAM", "typo"},       {"KAFKA_HOME", "/opt/kafka"},
      {"KAFKA_HEAP_OPTS", "-Xmx1G"},
  };
  auto s = parse_kafka_uri("kafka://k:9092", env);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_TRUE(s->properties.empty());
  ASSERT_EQ(s->notes.size(), 5u);  // not the installation's own KAFKA_HOME and KAFKA_HEAP_OPTS
  auto note_of = [&](std::string_view var) -> std::string {
    for (const auto& n : s->notes)
      if (n.starts_with(var)) return n;
    return {};
  };
  EXPECT_NE(note_of("KAFKA_ENABLE_AUTO_COMMIT=true").find("only after its message was processed"),
            std::string::npos);
  EXPECT_NE(note_of("KAFKA_ENABLE_PRODUCER=false").find("doc_results"), std::string::npos);
  EXPECT_NE(note_of("KAFKA_TOPIC_TASKS=file-tasks").find("doc_upload"), std::string::npos);
  EXPECT_NE(note_of("KAFKA_RESULT_TOPIC=file-results").find("fixed names"), std::string::npos);
  EXPECT_NE(note_of("KAFKA_SASL_USERNAM").find("SLUICE_KAFKA_<NAME>"), std::string::npos);
  EXPECT_EQ(note_of("KAFKA_SASL_USERNAM").find("typo"), std::string::npos)
      << "values of unknown names may be secrets";
}

TEST(KafkaUri, GenericEnvironmentForm) {
  auto s = parse_kafka_uri(
      "kafka://k:9092", {{"SLUICE_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"}, {"SLUICE_KAFKA_LINGER_MS", "20"}});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(find(*s, "ssl.ca.location")->value, "/etc/ca.pem");
  EXPECT_EQ(find(*s, "linger.ms")->value, "20");
}

TEST(KafkaUri, PrecedenceUriThenGenericThenSeedNames) {
  const Environment env = {{"KAFKA_SASL_USERNAME", "seed"},
                           {"SLUICE_KAFKA_SASL_USERNAME", "generic"},
                           {"KAFKA_SECURITY_PROTOCOL", "SSL"},
                           {"SLUICE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"}};
  auto s = parse_kafka_uri("kafka://k:9092?sasl.username=uri", env);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(find(*s, "sasl.username")->value, "uri");
  EXPECT_EQ(find(*s, "security.protocol")->value, "SASL_SSL");
  EXPECT_EQ(find(*s, "security.protocol")->source, "environment SLUICE_KAFKA_SECURITY_PROTOCOL");
}

TEST(KafkaUri, PropertiesOwnedBySluiceRefused) {
  for (const char* uri : {"kafka://k:9092?group.id=x", "kafka://k:9092?enable.auto.commit=true",
                          "kafka://k:9092?enable.auto.offset.store=true",
                          "kafka://k:9092?group.instance.id=w1", "kafka://k:9092?auto.offset.reset=latest"}) {
    auto s = parse_kafka_uri(uri, {});
    ASSERT_FALSE(s.is_ok()) << uri;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << uri;
  }
  auto env = parse_kafka_uri("kafka://k:9092", {{"SLUICE_KAFKA_GROUP_ID", "x"}});
  ASSERT_FALSE(env.is_ok());
  EXPECT_NE(env.status().message().find("SLUICE_KAFKA_GROUP_ID"), std::string::npos)
      << env.status().to_string();
}

TEST(KafkaUri, MalformedQueryAndDuplicates) {
  EXPECT_FALSE(parse_kafka_uri("kafka://k:9092?novalue", {}).is_ok());
  EXPECT_FALSE(parse_kafka_uri("kafka://k:9092?=x", {}).is_ok());
  EXPECT_FALSE(parse_kafka_uri("kafka://k:9092?linger.ms=1&linger.ms=2", {}).is_ok());
  EXPECT_FALSE(parse_kafka_uri("kafka://k:9092?bootstrap.servers=other:9092", {}).is_ok());
  EXPECT_FALSE(parse_kafka_uri("redis://k:9092", {}).is_ok());
  auto only_param = parse_kafka_uri("kafka://?bootstrap.servers=p:9092", {});
  ASSERT_TRUE(only_param.is_ok());
  EXPECT_EQ(only_param->bootstrap_servers, "p:9092");
}

TEST(KafkaUri, ScopesAndSecrets) {
  EXPECT_EQ(property_scope("session.timeout.ms"), Scope::kConsumer);
  EXPECT_EQ(property_scope("linger.ms"), Scope::kProducer);
  EXPECT_EQ(property_scope("retry.backoff.ms"), Scope::kProducer);
  EXPECT_EQ(property_scope("security.protocol"), Scope::kAll);
  EXPECT_TRUE(is_secret_property("sasl.password"));
  EXPECT_TRUE(is_secret_property("ssl.key.pem"));
  EXPECT_FALSE(is_secret_property("sasl.username"));
}

}  // namespace
}  // namespace sluice::queue::kafka
