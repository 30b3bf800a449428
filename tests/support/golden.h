// Golden files: a test renders what it produced as text and compares it with
// tests/golden/<name>. SLUICE_UPDATE_GOLDEN=1 rewrites the files instead (then review the diff).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sluice::test {

inline std::string source_path(const std::string& rel) {
  return std::string(SLUICE_SOURCE_DIR) + "/" + rel;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = source_path("tests/golden/" + name);
  const char* update = std::getenv("SLUICE_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path))
      << "no golden file " << path << " (run with SLUICE_UPDATE_GOLDEN=1)";
  EXPECT_EQ(read_text_file(path), actual)
      << "differs from " << path << " (SLUICE_UPDATE_GOLDEN=1 rewrites it)";
}

}  // namespace sluice::test
