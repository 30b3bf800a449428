// The amqp backend's URI parsing and object names (no broker needed).
#include "queue/amqp/amqp_client.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace sluice::queue::amqp {
namespace {

std::function<const char*(const char*)> env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(AmqpUri, DefaultsAndEveryPart) {
  auto s = parse_amqp_uri("amqp://", env({}));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->host, "127.0.0.1");
  EXPECT_EQ(s->port, 5672);
  EXPECT_EQ(s->vhost, "/");
  EXPECT_EQ(s->user, "guest");
  EXPECT_EQ(s->password, "guest");
  EXPECT_EQ(s->prefix, "sluice");
  EXPECT_EQ(s->queue_type, "classic");
  EXPECT_EQ(s->prefetch, 256);

  s = parse_amqp_uri(
      "amqp://alice:p%40ss%26w@mq.local:5673/ingest%2Fprod?prefix=ing&queue_type=quorum&prefetch=32&"
      "delivery_limit=5&confirm_window=64",
      env({}));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->host, "mq.local");
  EXPECT_EQ(s->port, 5673);
  EXPECT_EQ(s->vhost, "ingest/prod");
  EXPECT_EQ(s->user, "alice");
  EXPECT_EQ(s->password, "p@ss&w");
  EXPECT_EQ(s->prefix, "ing");
  EXPECT_EQ(s->queue_type, "quorum");
  EXPECT_EQ(s->prefetch, 32);
  EXPECT_EQ(s->delivery_limit, 5);
  EXPECT_EQ(s->confirm_window, 64);
  EXPECT_EQ(s->where(), "amqp mq.local:5673/ingest/prod");

  // As RabbitMQ's URI spec says: "/%2f" is the vhost "/", and an empty path is "/" too.
  s = parse_amqp_uri("amqp://h/%2f", env({}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->vhost, "/");
  s = parse_amqp_uri("amqp://h/", env({}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->vhost, "/");
}

TEST(AmqpUri, PasswordFromTheEnvironment) {
  auto s = parse_amqp_uri("amqp://bob:secret@h", env({{"RABBITMQ_PASSWORD", "other"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->password, "secret") << "the URI's password wins over the environment";
  s = parse_amqp_uri("amqp://bob@h", env({{"RABBITMQ_PASSWORD", "b"}, {"SLUICE_AMQP_PASSWORD", "a"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->user, "bob");
  EXPECT_EQ(s->password, "a");
  s = parse_amqp_uri("amqp://bob@h", env({{"RABBITMQ_PASSWORD", "b"}}));
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->password, "b");
}

TEST(AmqpUri, BadInputIsRefusedWithWhatIsWrong) {
  struct Case {
    const char* uri;
    Code code;
    const char* says;
  };
  for (const Case& c :
       {Case{"amqps://h", Code::kUnsupported, "TLS"}, Case{"http://h", Code::kInvalidArgument, "amqp://"},
        Case{"amqp://h:0", Code::kInvalidArgument, "port"},
        Case{"amqp://h:70000", Code::kInvalidArgument, "port"},
        Case{"amqp://h:x", Code::kInvalidArgument, "port"},
        Case{"amqp://u:%zz@h", Code::kInvalidArgument, "%-escape"},
        Case{"amqp://h?nope=1", Code::kInvalidArgument, "nope"},
        Case{"amqp://h?queue_type=lazy", Code::kInvalidArgument, "queue_type"},
        Case{"amqp://h?prefetch=0", Code::kInvalidArgument, "prefetch"},
        Case{"amqp://h?prefix=", Code::kInvalidArgument, "prefix"},
        Case{"amqp://h?delivery_limit=3", Code::kInvalidArgument, "quorum"}}) {
    auto s = parse_amqp_uri(c.uri, env({}));
    ASSERT_FALSE(s.is_ok()) << c.uri;
    EXPECT_EQ(s.status().code(), c.code) << c.uri << ": " << s.status().to_string();
    EXPECT_EQ(s.status().error_class(), ErrorClass::kBadInput) << c.uri;
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.uri << ": " << s.status().to_string();
  }
}

TEST(AmqpNames, PerTopicPartitionAndGroupAndLongOnesHashed) {
  Names n{"sluice"};
  EXPECT_EQ(n.exchange("doc_upload"), "sluice.doc_upload");
  EXPECT_EQ(n.unrouted("doc_upload"), "sluice.doc_upload.unrouted");
  EXPECT_EQ(n.marker("doc_upload"), "sluice.doc_upload.partitions");
  EXPECT_EQ(n.group_queue("doc_upload", PartitionId(3), "sluice-parse"), "sluice.doc_upload.3.sluice-parse");
  // Topic and group names may be 249 characters each; AMQP names stop at 255 bytes.
  const std::string topic(249, 't'), group_a(249, 'a');
  std::string group_b = group_a;
  group_b[100] = 'b';  // differs in the middle, which the shortened name does not keep
  const std::string qa = n.group_queue(topic, PartitionId(0), group_a);
  const std::string qb = n.group_queue(topic, PartitionId(0), group_b);
  EXPECT_LE(qa.size(), 255u);
  EXPECT_LE(qb.size(), 255u);
  EXPECT_NE(qa, qb) << "the hash of the whole name tells them apart";
  EXPECT_EQ(qa, n.group_queue(topic, PartitionId(0), group_a)) << "stable";
}

}  // namespace
}  // namespace sluice::queue::amqp
