// The redis backend's URI parsing and entry ids (no server needed).
#include "queue/redis/redis_client.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::queue::redis {
namespace {

std::function<const char*(const char*)> env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(RedisUri, DefaultsAndEveryPart) {
  auto s = parse_redis_uri("redis://", env({}));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->host, "127.0.0.1");
  EXPECT_EQ(s->port, 6379);
  EXPECT_EQ(s->db, 0);
  EXPECT_EQ(s->prefix, "sluice");
  EXPECT_TRUE(s->password.empty());

  s = parse_redis_uri(
      "redis://alice:p%40ss%26w@cache.local:6380/3?prefix=ingest&session_timeout_ms=5000&maxlen=1000",
      env({}));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->host, "cache.local");
  EXPECT_EQ(s->port, 6380);
  EXPECT_EQ(s->db, 3);
  EXPECT_EQ(s->user, "alice");
  EXPECT_EQ(s->password, "p@ss&w");
  EXPECT_EQ(s->prefix, "ingest");
  EXPECT_EQ(s->session_timeout_ms, 5000);
  EXPECT_EQ(s->maxlen, 1000);
  EXPECT_EQ(s->where(), "redis cache.local:6380/3");
}

TEST(RedisUri, PasswordOnlyAndFromTheEnvironment) {
  auto s = parse_redis_uri("redis://secret@h", env({{"REDIS_PASSWORD", "other"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_TRUE(s->user.empty());
  EXPECT_EQ(s->password, "secret") << "the URI's password wins over the environment";
  s = parse_redis_uri("redis://h", env({{"REDIS_PASSWORD", "b"}, {"SLUICE_REDIS_PASSWORD", "a"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->password, "a");
  s = parse_redis_uri("redis://h", env({{"REDIS_PASSWORD", "b"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->password, "b");
}

TEST(RedisUri, BadInputIsRefusedWithWhatIsWrong) {
  struct Case {
    const char* uri;
    Code code;
    const char* says;
  };
  for (const Case& c :
       {Case{"rediss://h", Code::kUnsupported, "TLS"}, Case{"http://h", Code::kInvalidArgument, "redis://"},
        Case{"redis://h:0", Code::kInvalidArgument, "port"},
        Case{"redis://h:99999", Code::kInvalidArgument, "port"},
        Case{"redis://h:abc", Code::kInvalidArgument, "port"},
        Case{"redis://h:", Code::kInvalidArgument, "port"},
        Case{"redis://h/x", Code::kInvalidArgument, "database"},
        Case{"redis://u:%zz@h", Code::kInvalidArgument, "%-escape"},
        Case{"redis://h?nope=1", Code::kInvalidArgument, "nope"},
        Case{"redis://h?session_timeout_ms=10", Code::kInvalidArgument, "session_timeout_ms"},
        Case{"redis://h?prefix=", Code::kInvalidArgument, "prefix"},
        Case{"redis://h?pipeline=0", Code::kInvalidArgument, "pipeline"}}) {
    auto s = parse_redis_uri(c.uri, env({}));
    ASSERT_FALSE(s.is_ok()) << c.uri;
    EXPECT_EQ(s.status().code(), c.code) << c.uri << ": " << s.status().to_string();
    EXPECT_EQ(s.status().error_class(), ErrorClass::kBadInput) << c.uri;
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.uri << ": " << s.status().to_string();
  }
}

TEST(RedisIds, OffsetsAreDenseSequenceNumbers) {
  EXPECT_EQ(entry_id(0), "0-1");
  EXPECT_EQ(entry_id(41), "0-42");
  EXPECT_EQ(offset_of("0-1"), 0);
  EXPECT_EQ(offset_of("0-42"), 41);
  EXPECT_EQ(offset_of("0-0"), std::nullopt);
  EXPECT_EQ(offset_of("1700000000000-0"), std::nullopt) << "an entry not written by sluice";
  EXPECT_EQ(offset_of("0-x"), std::nullopt);
  EXPECT_EQ(seq_of("0-0"), 0);
  EXPECT_EQ(seq_of("bad"), std::nullopt);
}

}  // namespace
}  // namespace sluice::queue::redis
