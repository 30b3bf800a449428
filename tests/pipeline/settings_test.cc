// The pipeline's settings: defaults from the table, environment and option layering, "<data>" in
// the default URIs, and the cross-setting check.
#include "pipeline/settings.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::pipeline {
namespace {

TEST(PipelineSettings, DefaultsEnvironmentAndOptions) {
  std::map<std::string, std::string> env;
  auto getenv = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
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

}  // namespace
}  // namespace sluice::pipeline
