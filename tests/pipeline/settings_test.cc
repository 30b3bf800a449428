// The pipeline's settings: defaults from the table, environment and option layering, "<data>" in
// the default URIs, and the cross-setting check.
#include "pipeline/settings.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::pipeline {
namespace {

// A getenv over a map the test fills.
auto lookup_in(const std::map<std::string, std::string>& env) {
  return [&env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

TEST(PipelineSettings, DefaultsEnvironmentAndOptions) {
  std::map<std::string, std::string> env;
  auto getenv = lookup_in(env);
  auto d = resolve_settings({}, "/data", getenv);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->index, "local:/data/index");
  EXPECT_EQ(d->store, "file:/data/blobs");
  EXPECT_EQ(d->pool, 2u);
  EXPECT_EQ(d->parse_timeout, std::chrono::milliseconds(120000));
  EXPECT_EQ(d->parse_memory, 1ull << 30);
  EXPECT_EQ(d->chunk_tokens, 400u);
  EXPECT_EQ(d->chunk_overlap, 50u);
  EXPECT_FALSE(d->mask_pii);

  env["POOL_SIZE"] = "5";
  env["SLUICE_MASK_PII"] = "true";
  auto e = resolve_settings({{"parse_timeout", "2500"}, {"partitions", "8"}}, "/data", getenv);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->pool, 5u);
  EXPECT_TRUE(e->mask_pii);
  EXPECT_EQ(e->parse_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(e->partitions, 8);

  auto bad = resolve_settings({{"chunk_tokens", "100"}, {"chunk_overlap", "100"}}, "/data", getenv);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(bad.status().message().find("chunk_overlap"), std::string::npos) << bad.status().message();
}

// The seeds' KAFKA_GROUP_ID, KAFKA_AUTO_OFFSET_RESET, KAFKA_MAX_POLL_RECORDS and
// KAFKA_AUTO_COMMIT_INTERVAL_MS are the pipeline's group, start_from, max_in_flight and
// commit_interval; sluice's own names win over them, and options over both.
TEST(PipelineSettings, GroupStartAndCommitSettingsTakeTheSeedsKafkaNames) {
  std::map<std::string, std::string> env;
  auto getenv = lookup_in(env);
  auto d = resolve_settings({}, "/data", getenv);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->group, "sluice");
  EXPECT_EQ(d->start_from, queue::StartFrom::kEarliest);
  EXPECT_EQ(d->commit_interval, std::chrono::milliseconds(200));

  env["KAFKA_GROUP_ID"] = "file-processors";
  env["KAFKA_AUTO_OFFSET_RESET"] = "latest";
  env["KAFKA_MAX_POLL_RECORDS"] = "10";
  env["KAFKA_AUTO_COMMIT_INTERVAL_MS"] = "5000";
  auto seeds = resolve_settings({}, "/data", getenv);
  ASSERT_TRUE(seeds.is_ok()) << seeds.status().to_string();
  EXPECT_EQ(seeds->group, "file-processors");
  EXPECT_EQ(seeds->start_from, queue::StartFrom::kLatest);
  EXPECT_EQ(seeds->max_in_flight, 10u);
  EXPECT_EQ(seeds->commit_interval, std::chrono::milliseconds(5000));

  env["SLUICE_GROUP"] = "ours";
  auto own = resolve_settings({{"start_from", "earliest"}}, "/data", getenv);
  ASSERT_TRUE(own.is_ok()) << own.status().to_string();
  EXPECT_EQ(own->group, "ours");
  EXPECT_EQ(own->start_from, queue::StartFrom::kEarliest);

  for (const char* bad : {"", "two words"}) {
    auto r = resolve_settings({{"group", bad}}, "/data", getenv);
    ASSERT_FALSE(r.is_ok()) << "group '" << bad << "'";
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
    EXPECT_NE(r.status().message().find("<group>-<stage>"), std::string::npos) << r.status().message();
  }
  env["KAFKA_AUTO_OFFSET_RESET"] = "none";  // Kafka's third value: sluice has no "fail instead"
  env.erase("SLUICE_GROUP");
  auto none = resolve_settings({}, "/data", getenv);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(none.status().message().find("KAFKA_AUTO_OFFSET_RESET"), std::string::npos)
      << none.status().message();
}

}  // namespace
}  // namespace sluice::pipeline
