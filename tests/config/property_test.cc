// Property tables: parsing of each kind, and the errors for unknown names and bad values.
#include "config/property.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::config {
namespace {

constexpr Property kTable[] = {
    {"mode", Kind::kEnum, "a", "the mode", "a|b|c"}, {"size", Kind::kSize, "1KiB", "a size", {}, 1, 1 << 20},
    {"n", Kind::kInt, "3", "a count", {}, 1, 10},    {"on", Kind::kBool, "false", "a switch"},
    {"name", Kind::kString, "x", "a name"},
};

TEST(Property, DefaultsApplyWhenUnset) {
  auto v = parse_query("", kTable, "test");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*get_int(*v, kTable, "size"), 1024);
  EXPECT_EQ(*get_int(*v, kTable, "n"), 3);
  EXPECT_FALSE(*get_bool(*v, kTable, "on"));
  EXPECT_EQ(*get_string(*v, kTable, "mode"), "a");
}

TEST(Property, ParsesEveryKind) {
  auto v = parse_query("mode=c&size=64KiB&n=10&on=true&name=hello", kTable, "test");
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*get_int(*v, kTable, "size"), 64 * 1024);
  EXPECT_EQ(*get_int(*v, kTable, "n"), 10);
  EXPECT_TRUE(*get_bool(*v, kTable, "on"));
  EXPECT_EQ(*get_string(*v, kTable, "name"), "hello");
  EXPECT_EQ(*get_string(*v, kTable, "mode"), "c");
}

TEST(Property, BadInputNamesTheSettingAndWhatIsAccepted) {
  struct Case {
    const char* query;
    const char* expect;
  } cases[] = {
      {"mode=d", "use one of a,b,c"},
      {"size=lots", "not a size"},
      {"size=2MiB", "outside 1..1048576"},
      {"n=0", "outside 1..10"},
      {"n=3x", "not a whole number"},
      {"on=yes", "use true or false"},
      {"colour=red", "unknown test setting 'colour' (known: mode, size, n, on, name)"},
      {"size=99999999999999999999G", "not a size"},
  };
  for (const auto& c : cases) {
    auto v = parse_query(c.query, kTable, "test");
    ASSERT_FALSE(v.is_ok()) << c.query;
    EXPECT_EQ(v.status().error_class(), ErrorClass::kBadInput) << c.query;
    EXPECT_NE(v.status().message().find(c.expect), std::string::npos)
        << c.query << ": " << v.status().message();
  }
}

TEST(Property, MarkdownListsEveryRow) {
  std::string md = markdown_table(kTable);
  for (const auto& p : kTable) EXPECT_NE(md.find("`" + std::string(p.name) + "`"), std::string::npos);
  EXPECT_NE(md.find("a \\| b \\| c"), std::string::npos) << md;
}


TEST(Property, LayersFlagOverEnvironmentOverDefault) {
  constexpr Property kLayered[] = {
      {"pool", Kind::kInt, "2", "processes", {}, 1, 64, "SLUICE_POOL", "POOL_SIZE"},
      {"name", Kind::kString, "x", "a name", {}, 0, 0, "SLUICE_NAME"},
  };
  std::map<std::string, std::string> env;
  auto getenv = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto v = layer(kLayered, {}, getenv);
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->empty());  // defaults come from the table when read
  env["POOL_SIZE"] = "4";  // the seeds' alias
  EXPECT_EQ(layer(kLayered, {}, getenv)->at("pool"), "4");
  env["SLUICE_POOL"] = "6";  // sluice's own name wins over the alias
  EXPECT_EQ(layer(kLayered, {}, getenv)->at("pool"), "6");
  EXPECT_EQ(layer(kLayered, {{"pool", "8"}}, getenv)->at("pool"), "8");  // the flag wins over both

  env["SLUICE_POOL"] = "many";
  auto bad_env = layer(kLayered, {}, getenv);
  ASSERT_FALSE(bad_env.is_ok());
  EXPECT_EQ(bad_env.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(bad_env.status().message().find("SLUICE_POOL"), std::string::npos) << bad_env.status().message();
  auto bad_flag = layer(kLayered, {{"pool", "0"}}, getenv);
  ASSERT_FALSE(bad_flag.is_ok());
  EXPECT_NE(bad_flag.status().message().find("--pool"), std::string::npos) << bad_flag.status().message();
  EXPECT_EQ(flag_name(kLayered[0]), "--pool");
  EXPECT_NE(markdown_table(kLayered).find("`SLUICE_POOL`, `POOL_SIZE`"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
