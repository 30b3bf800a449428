// Unit tests for src/base: CRC-32C against published vectors, Status/Result behaviour.
#include <gtest/gtest.h>

#include <string>

#include "base/crc32c.h"
#include "base/status.h"

namespace sluice {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::value(zeros.data(), zeros.size()), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c::value(ones.data(), ones.size()), 0x62a8ab43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c::value(inc.data(), inc.size()), 0x46dd794eu);
  EXPECT_EQ(crc32c::value("123456789", 9), 0xe3069283u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s(100000, 'x');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + 7);
  uint32_t whole = crc32c::value(s.data(), s.size());
  for (size_t cut : {0ul, 1ul, 7ul, 8ul, 4095ul, 50000ul, 99999ul}) {
    uint32_t part = crc32c::extend(crc32c::value(s.data(), cut), s.data() + cut, s.size() - cut);
    EXPECT_EQ(part, whole) << "cut at " << cut;
  }
}

TEST(Status, CarriesClassCodeAndMessage) {
  Status ok;
  EXPECT_TRUE(ok.is_ok());
  EXPECT_EQ(ok.error_class(), ErrorClass::kNone);
  Status st = Status::too_large("message of 9 bytes");
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(st.code(), Code::kTooLarge);
  EXPECT_EQ(st.to_string(), "bad_input: message of 9 bytes");
  EXPECT_EQ(st.with_context("send").message(), "send: message of 9 bytes");
  EXPECT_EQ(Status::io_error("x").error_class(), ErrorClass::kFatal);
  EXPECT_EQ(Status::timeout("x").error_class(), ErrorClass::kRetriable);
  EXPECT_EQ(Status::resource_limit("x").error_class(), ErrorClass::kResourceLimit);
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> r = 5;
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, 5);
  Result<int> e = Status::not_found("nope");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sluice

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/hash.h"

namespace sluice {
namespace {

TEST(Hash, StreamingFileAndOneShotAgree) {
  std::string data;
  for (int i = 0; i < 300000; ++i) data += static_cast<char>('a' + i % 26);
  data += "文档";
  const std::string one = hash_hex(data);
  EXPECT_EQ(one.size(), 32u);
  EXPECT_EQ(one.find_first_not_of("0123456789abcdef"), std::string::npos);
  Hasher h;
  for (size_t i = 0; i < data.size(); i += 7777) h.update(std::string_view(data).substr(i, 7777));
  EXPECT_EQ(h.hex(), one);
  auto path = std::filesystem::temp_directory_path() / ("sluice-hash-" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << data;
  auto f = hash_file(path.string());
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(*f, one);
  std::filesystem::remove(path);
  EXPECT_NE(hash_hex("a"), hash_hex("b"));
  EXPECT_EQ(hash_hex(""), "99aa06d3014798d86001c324468d497f");  // XXH3-128 of nothing
  EXPECT_EQ(hash_file("/nonexistent/sluice").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sluice

#include "base/path.h"

// Temporary names are per writer: never the same twice, always path + ".tmp." + a suffix.
TEST(Path, UniqueTempPathsDiffer) {
  std::string a = sluice::unique_temp_path("/d/file"), b = sluice::unique_temp_path("/d/file");
  EXPECT_NE(a, b);
  for (const auto& t : {a, b}) EXPECT_EQ(t.rfind("/d/file.tmp.", 0), 0u) << t;
}

TEST(Path, NormalizeAbsolute) {
  EXPECT_EQ(sluice::normalize_absolute("/a/./b//c/../d/"), "/a/b/d");
  EXPECT_EQ(sluice::normalize_absolute("/../x"), "/x");
}

#include "base/clock.h"

// Durations in messages read the way the settings take them, in the largest exact unit.
TEST(Clock, FormatDurationUsesTheLargestExactUnit) {
  using std::chrono::milliseconds;
  EXPECT_EQ(sluice::format_duration(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(sluice::format_duration(milliseconds(300'000)), "5m");
  EXPECT_EQ(sluice::format_duration(milliseconds(30'000)), "30s");
  EXPECT_EQ(sluice::format_duration(milliseconds(1'500)), "1500ms");
  EXPECT_EQ(sluice::format_duration(milliseconds(0)), "0ms");
}

TEST(Clock, Iso8601KeepsTheMilliseconds) {
  EXPECT_EQ(sluice::iso8601_utc(1'795'000'000'123), "2026-11-18T11:06:40.123Z");
}
