// Parsing in worker processes through the real `sluice __parse-worker`: a PDF parses as it does
// in-process; a parser hang and a parser crash (the test-only fault format) fail only their
// document, with resource_limit and fatal, and the next document parses normally.
#include "pipeline/parse_worker.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

TEST(ParseWorker, IsolatesHangsAndCrashes) {
  ::setenv("SLUICE_TEST_FAULT_FILES", "1", 1);  // inherited by the worker processes
  ProcessPoolOptions o;
  o.program = SLUICE_BINARY;
  o.args = {"__parse-worker"};
  o.size = 1;
  o.timeout = std::chrono::milliseconds(1500);
#if defined(__SANITIZE_ADDRESS__)
  o.memory_limit = 0;  // AddressSanitizer's shadow memory does not fit any RLIMIT_AS budget
#endif
  auto parser = IsolatedParser::start(o);
  ASSERT_TRUE(parser.is_ok()) << parser.status().to_string();

  const std::string pdf = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/english.pdf";
  auto isolated = (*parser)->parse(pdf);
  ASSERT_TRUE(isolated.is_ok()) << isolated.status().to_string();
  auto direct = parse::parse_file(pdf);
  ASSERT_TRUE(direct.is_ok());
  EXPECT_EQ(parse::to_json(*isolated), parse::to_json(*direct));
  EXPECT_EQ(isolated->pages, 3);

  fs::path dir = fs::temp_directory_path() / ("sluice-parse-worker-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "hang.txt") << "SLUICE-TEST-FAULT hang\n";
  std::ofstream(dir / "crash.txt") << "SLUICE-TEST-FAULT crash\n";
  std::ofstream(dir / "fine.txt") << "第一段。\n\nSecond paragraph.\n";

  auto hang = (*parser)->parse((dir / "hang.txt").string());
  ASSERT_FALSE(hang.is_ok());
  EXPECT_EQ(hang.status().error_class(), ErrorClass::kResourceLimit) << hang.status().to_string();
  EXPECT_NE(hang.status().message().find("hang.txt"), std::string::npos);

  auto crash = (*parser)->parse((dir / "crash.txt").string());
  ASSERT_FALSE(crash.is_ok());
  EXPECT_EQ(crash.status().error_class(), ErrorClass::kFatal) << crash.status().to_string();

  auto fine = (*parser)->parse((dir / "fine.txt").string());
  ASSERT_TRUE(fine.is_ok()) << fine.status().to_string();
  ASSERT_EQ(fine->blocks.size(), 2u);
  EXPECT_EQ(fine->blocks[0].text, "第一段。");

  auto missing = (*parser)->parse((dir / "gone.txt").string());
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().error_class(), ErrorClass::kBadInput);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::pipeline
