// docs/CONFIGURATION.md must be exactly what `sluice config` prints from the property tables.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

TEST(ConfigDocs, GeneratedFileIsCurrent) {
  std::string cmd = std::string(SLUICE_BINARY) + " config";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ASSERT_EQ(::pclose(p), 0);
  std::ifstream f(std::string(SLUICE_SOURCE_DIR) + "/docs/CONFIGURATION.md");
  ASSERT_TRUE(f.good()) << "docs/CONFIGURATION.md is missing";
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), out)
      << "docs/CONFIGURATION.md is stale: run ./build/sluice config > docs/CONFIGURATION.md";
  EXPECT_NE(out.find("`fsync`"), std::string::npos);
}

}  // namespace
