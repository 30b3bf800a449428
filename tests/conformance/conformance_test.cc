// The queue conformance suite: one set of tests every queue backend runs (after Watermill's
// universal pub/sub tests). It is parameterized over the backends registered in backend.h; a test
// that needs a capability the backend does not declare is skipped with the reason. Every wait has
// a deadline, and a watchdog (harness.h) ends a test that hangs inside a backend call.
//
// Backends without offsets, exclusive_partitions or late_groups (RabbitMQ) run the same tests:
// a group is declared before anything is sent for it, and where a test compares offsets it
// compares values instead (every test's values are unique).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "conformance/harness.h"
#include "queue/partitioner.h"

namespace sluice::conformance {
namespace {

using queue::Message;
using queue::ResetSpec;

#define REQUIRE_CAPABILITY(cap) \
  if (!caps().cap) GTEST_SKIP() << "backend '" << GetParam() << "' does not declare capability " #cap

// All 256 byte values, so a payload that is not binary-safe shows up.
std::string all_bytes() {
  std::string s(256, '\0');
  for (int i = 0; i < 256; ++i) s[i] = static_cast<char>(i);
  return s;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::set<int64_t> offset_set(const std::vector<Message>& msgs, int32_t partition = 0) {
  std::set<int64_t> out;
  for (const auto& m : msgs)
    if (m.partition.value() == partition) out.insert(m.offset.value());
  return out;
}

std::set<int64_t> range_set(int64_t from, int64_t to) {  // [from, to)
  std::set<int64_t> out;
  for (int64_t i = from; i < to; ++i) out.insert(i);
  return out;
}

std::set<std::string> value_set(const std::vector<Message>& msgs) {
  std::set<std::string> out;
  for (const auto& m : msgs) out.insert(str(m.value));
  return out;
}

std::set<std::string> value_range(const std::string& prefix, int from, int to) {  // [from, to)
  std::set<std::string> out;
  for (int i = from; i < to; ++i) out.insert(prefix + std::to_string(i));
  return out;
}

// "key:seq" -> seq; -1 when the value has another shape.
int64_t seq_of(std::string_view value) {
  auto colon = value.rfind(':');
  if (colon == std::string_view::npos) return -1;
  return std::stoll(std::string(value.substr(colon + 1)));
}

Status ack_all(queue::Consumer& c, const std::vector<Message>& msgs) {
  for (const auto& m : msgs) SLUICE_RETURN_IF_ERROR(c.ack(m));
  return {};
}

// Of the messages m0..m9, acks m0, m1, m2, m5 and m6: unacked ones before acked ones.
Status ack_gapped(queue::Consumer& c, const std::vector<Message>& msgs) {
  const std::set<std::string> acked = {"m0", "m1", "m2", "m5", "m6"};
  for (const auto& m : msgs)
    if (acked.count(str(m.value))) SLUICE_RETURN_IF_ERROR(c.ack(m));
  return {};
}

class QueueSuite : public QueueConformance {
 protected:
  int32_t parts(int32_t wanted) const { return caps().partitions ? wanted : 1; }

  // What comes again after ack_gapped: with offsets the group resumes at the end of the acked
  // prefix, so m5 and m6 come too; without, each message is acked on its own.
  std::set<std::string> unacked_after_gapped_acks() const {
    if (caps().offsets) return value_range("m", 3, 10);
    return {"m3", "m4", "m7", "m8", "m9"};
  }

  // The sum of end offsets of topic's partitions: how many messages it holds.
  int64_t stored_count(const std::string& topic) {
    auto info = admin().describe_topic(topic);
    if (!info.is_ok()) {
      ADD_FAILURE() << "describe_topic(" << topic << "): " << info.status().to_string();
      return -1;
    }
    int64_t n = 0;
    for (const auto& p : info->partition_info) n += p.end - p.start;
    return n;
  }

  // Polls c (and, round robin, the others) until c owns a partition; for single-partition tests
  // where one member must be the owner and the other a waiting member.
  void wait_for_owner(const std::vector<queue::Consumer*>& members, size_t* owner) {
    std::vector<std::vector<Message>> got;
    bool ok = poll_round_robin(
        members, got,
        [&] {
          size_t owners = 0;
          for (size_t i = 0; i < members.size(); ++i) {
            if (!members[i]->assignment().empty()) {
              ++owners;
              *owner = i;
            }
          }
          return owners == 1;
        },
        kWait);
    ASSERT_TRUE(ok) << "no single member came to own the partition";
    for (const auto& g : got)
      ASSERT_TRUE(g.empty()) << "nothing was produced yet, but a poll returned messages";
  }
};

// ---------------------------------------------------------------------------------------------
// Payloads

TEST_P(QueueSuite, RoundTripBinaryKeysValuesAndHeaders) {
  const std::string topic = name("round-trip");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));

  std::vector<Out> msgs;
  Out m0{topic, std::string("\0k\xff", 3), all_bytes(), {}, {}, 0};
  m0.headers = {{std::string("h\0bin", 5), std::string("\xff\x00\x01", 3)}, {"empty-value", ""}};
  msgs.push_back(m0);
  msgs.push_back(Out{topic, std::nullopt, "", {}, {}, 0});            // no key, empty value
  msgs.push_back(Out{topic, std::string(), "empty key", {}, {}, 0});  // empty key, not null
  Out m3{topic, "many-headers", std::string("a\0b\xff", 4), {}, {}, 0};
  for (int i = 0; i < 64; ++i) {
    m3.headers.emplace_back("h" + std::to_string(i), random_bytes(static_cast<size_t>(i), i));
  }
  m3.headers.emplace_back("dup", "first");
  m3.headers.emplace_back("dup", "second");
  msgs.push_back(m3);
  msgs.push_back(Out{topic, "文档-键", "中文内容：解析、切块、嵌入。", {{"来源", "上传"}}, {}, 0});

  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, msgs.size(), kWait);
  ASSERT_EQ(got.size(), msgs.size());
  EXPECT_TRUE(poll_for(*c, kQuiet).empty()) << "more messages than were sent";

  for (size_t i = 0; i < msgs.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i));
    Seen s = seen(got[i]);
    EXPECT_EQ(s.topic, topic);
    EXPECT_EQ(s.partition, 0);
    EXPECT_EQ(s.offset, caps().offsets ? static_cast<int64_t>(i) : -1) << "without offsets a message has -1";
    ASSERT_EQ(s.key.has_value(), msgs[i].key.has_value()) << "null key and empty key must stay distinct";
    if (s.key) {
      EXPECT_EQ(printable(*s.key), printable(*msgs[i].key));
    }
    EXPECT_EQ(s.value.size(), msgs[i].value.size());
    EXPECT_EQ(printable(s.value), printable(msgs[i].value));
    ASSERT_EQ(s.headers.size(), msgs[i].headers.size());
    for (size_t h = 0; h < s.headers.size(); ++h) {
      EXPECT_EQ(printable(s.headers[h].first), printable(msgs[i].headers[h].first)) << "header " << h;
      EXPECT_EQ(printable(s.headers[h].second), printable(msgs[i].headers[h].second)) << "header " << h;
    }
  }
  // Message::header() finds the first of duplicate keys, as documented.
  EXPECT_EQ(got[3].header("dup").value_or("<none>"), "first");
  EXPECT_FALSE(got[3].header("absent").has_value());
}

TEST_P(QueueSuite, TimestampsKeptOrStampedWithNow) {
  const std::string topic = name("timestamps");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  const int64_t given = 1600000000123;
  int64_t before =
      std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_NO_FATAL_FAILURE(
      produce({Out{topic, "a", "given", {}, {}, given}, Out{topic, "b", "now", {}, {}, 0}}));
  int64_t after =
      std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 2, kWait);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].timestamp_ms, given);
  EXPECT_GE(got[1].timestamp_ms, before - 1000) << "timestamp 0 must mean now";
  EXPECT_LE(got[1].timestamp_ms, after + 1000) << "timestamp 0 must mean now";
}

TEST_P(QueueSuite, MessagesOutliveTheirConsumer) {
  const std::string topic = name("outlive");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs;
  for (int i = 0; i < 3; ++i)
    msgs.push_back(Out{topic, "k" + std::to_string(i), random_bytes(1000, i), {{"h", "v"}}, {}, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  std::vector<Message> got;
  {
    auto c = consumer(group, {topic});
    ASSERT_NE(c, nullptr);
    got = poll_n(*c, 3, kWait);
    EXPECT_OK(c->close());
  }  // the consumer is gone; Message::backing must keep the bytes
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(str(got[i].value), msgs[i].value);
    EXPECT_EQ(str(*got[i].key), *msgs[i].key);
    EXPECT_EQ(got[i].header("h").value_or(""), "v");
  }
}

// ---------------------------------------------------------------------------------------------
// Partitions and order

TEST_P(QueueSuite, PerKeyOrderAcrossManyKeys) {
  REQUIRE_CAPABILITY(per_key_order);
  const std::string topic = name("per-key-order");
  const int32_t partitions = parts(8);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions, group));
  constexpr int kKeys = 64;
  constexpr int kPerKey = 40;
  std::vector<Out> msgs;
  for (int s = 0; s < kPerKey; ++s) {
    for (int k = 0; k < kKeys; ++k) {
      std::string key = "key-" + std::to_string(k);
      msgs.push_back(Out{topic, key, key + ":" + std::to_string(s), {}, {}, 0});
    }
  }
  ASSERT_NO_FATAL_FAILURE(produce(msgs));

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, msgs.size(), kWait);
  ASSERT_EQ(got.size(), msgs.size());
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());

  std::map<std::string, std::vector<int64_t>> seqs;  // in delivery order
  std::map<std::string, std::set<int32_t>> key_partitions;
  for (const auto& m : got) {
    seqs[str(*m.key)].push_back(seq_of(m.value));
    key_partitions[str(*m.key)].insert(m.partition.value());
  }
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kKeys));
  std::vector<int64_t> expected(kPerKey);
  std::iota(expected.begin(), expected.end(), 0);
  for (const auto& [key, s] : seqs) {
    EXPECT_EQ(s, expected) << "key " << key << " delivered out of send order";
    EXPECT_EQ(key_partitions[key].size(), 1u) << "key " << key << " spread over partitions";
  }
}

TEST_P(QueueSuite, KeyedMessagesLandOnMurmur2Partition) {
  REQUIRE_CAPABILITY(partitions);
  const std::string topic = name("murmur2");
  constexpr int32_t kPartitions = 6;
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, kPartitions, group));
  std::vector<Out> msgs;
  for (int i = 0; i < 100; ++i) msgs.push_back(Out{topic, "doc-" + std::to_string(i), "v", {}, {}, 0});
  msgs.push_back(Out{topic, std::string(), "empty key", {}, {}, 0});
  msgs.push_back(Out{topic, std::string("\0\xff\x80", 3), "binary key", {}, {}, 0});
  msgs.push_back(Out{topic, "文档", "utf-8 key", {}, {}, 0});
  std::vector<Report> reports;
  ASSERT_NO_FATAL_FAILURE(produce(msgs, &reports));
  ASSERT_EQ(reports.size(), msgs.size());
  std::set<int32_t> used;
  for (const auto& r : reports) {
    const Out& m = msgs[r.ticket - 1];
    EXPECT_EQ(r.partition, queue::partition_for_key(*m.key, kPartitions).value())
        << "delivery report of key " << printable(*m.key);
    used.insert(r.partition);
  }
  EXPECT_GT(used.size(), 1u) << "100 keys all hashed to one partition";

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, msgs.size(), kWait);
  ASSERT_EQ(got.size(), msgs.size());
  for (const auto& m : got) {
    ASSERT_TRUE(m.key.has_value());
    EXPECT_EQ(m.partition, queue::partition_for_key(*m.key, kPartitions)) << "key " << printable(*m.key);
  }
}

TEST_P(QueueSuite, ExplicitPartitionHonoured) {
  REQUIRE_CAPABILITY(partitions);
  const std::string topic = name("explicit-partition");
  constexpr int32_t kPartitions = 4;
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, kPartitions, group));
  std::string key;  // a key whose own partition is not 3, so the override is visible
  for (int i = 0; key.empty(); ++i) {
    std::string k = "k" + std::to_string(i);
    if (queue::partition_for_key(k, kPartitions).value() != 3) key = k;
  }
  std::vector<Report> reports;
  ASSERT_NO_FATAL_FAILURE(
      produce({Out{topic, key, "keyed", {}, 3, 0}, Out{topic, std::nullopt, "unkeyed", {}, 2, 0}}, &reports));
  ASSERT_EQ(reports.size(), 2u);
  for (const auto& r : reports) EXPECT_EQ(r.partition, r.ticket == 1 ? 3 : 2);

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 2, kWait);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& m : got) EXPECT_EQ(m.partition.value(), m.value == "keyed" ? 3 : 2);
}

TEST_P(QueueSuite, PartitionOutOfRangeRefused) {
  const std::string topic = name("partition-range");
  const int32_t partitions = parts(4);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions, group));
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  for (int32_t bad : {partitions, partitions + 100, -1, INT32_MIN}) {
    auto t = send(p.get(), Out{topic, "k", "v", {}, bad, 0});
    ASSERT_FALSE(t.is_ok()) << "send to partition " << bad << " of a " << partitions << "-partition topic";
    EXPECT_EQ(t.status().error_class(), ErrorClass::kBadInput) << t.status().to_string();
  }
  ASSERT_TRUE(send(p.get(), Out{topic, "k", "good", {}, 0, 0}).is_ok());
  ASSERT_OK(p.get().flush(kWait));
  if (caps().offsets) {
    EXPECT_EQ(stored_count(topic), 1) << "a refused send must store nothing";
  } else {
    // No offsets to count what is stored: the group, declared before the sends, receives it.
    auto c = consumer(group, {topic});
    ASSERT_NE(c, nullptr);
    auto got = poll_n(*c, 1, kWait);
    auto extra = poll_for(*c, kQuiet);
    got.insert(got.end(), extra.begin(), extra.end());
    ASSERT_EQ(got.size(), 1u) << "a refused send must store nothing";
    EXPECT_EQ(str(got[0].value), "good");
  }
}

// ---------------------------------------------------------------------------------------------
// Groups

TEST_P(QueueSuite, LoadSplitInsideGroup) {
  const std::string topic = name("load-split");
  const int32_t partitions = parts(6);
  create_topic(topic, partitions);
  const std::string group = name("workers");
  std::vector<std::unique_ptr<queue::Consumer>> owned;
  std::vector<queue::Consumer*> members;
  for (int i = 0; i < 3; ++i) {
    owned.push_back(consumer(group, {topic}));
    ASSERT_NE(owned.back(), nullptr);
    members.push_back(owned.back().get());
  }
  std::vector<std::vector<Message>> got;
  if (!caps().exclusive_partitions) {
    // Members compete for every partition: each must take part in all of them.
    ASSERT_TRUE(poll_round_robin(
        members, got,
        [&] {
          for (auto* m : members)
            if (m->assignment().size() != static_cast<size_t>(partitions)) return false;
          return true;
        },
        kWait))
        << "not every member was given all " << partitions << " partitions";
  } else if (caps().partitions) {
    // Produce only once the group is settled: a rebalance during the test would legitimately
    // hand a partition's unacked messages to a second member.
    ASSERT_TRUE(poll_round_robin(
        members, got, [&] { return assignments_settled(members, topic, partitions); }, kWait))
        << "3 members never split " << partitions << " partitions among them";
  }
  constexpr int kMessages = 600;
  std::vector<Out> msgs;
  for (int i = 0; i < kMessages; ++i)
    msgs.push_back(Out{topic, "k" + std::to_string(i), std::to_string(i), {}, {}, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));

  auto total = [&] {
    size_t n = 0;
    for (const auto& g : got) n += g.size();
    return n;
  };
  ASSERT_TRUE(poll_round_robin(
      members, got, [&] { return total() >= kMessages; }, kWait))
      << "only " << total() << " of " << kMessages << " messages arrived";
  poll_round_robin(
      members, got, [] { return false; }, kQuiet);  // anything extra is a duplicate

  // A message is its position, or without offsets its value (unique here).
  std::set<std::string> all;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_FALSE(got[i].empty()) << "member " << i << " got no share of the load";
    std::set<int32_t> assigned;
    for (const auto& tp : members[i]->assignment()) assigned.insert(tp.partition.value());
    for (const auto& m : got[i]) {
      const std::string id =
          caps().offsets ? std::to_string(m.partition.value()) + "/" + std::to_string(m.offset.value())
                         : "value " + str(m.value);
      EXPECT_TRUE(all.insert(id).second) << "message " << id << " delivered twice";
      if (caps().partitions && caps().exclusive_partitions) {
        EXPECT_TRUE(assigned.count(m.partition.value())) << "member " << i;
      }
    }
    EXPECT_OK(ack_all(*members[i], got[i]));
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kMessages));
}

TEST_P(QueueSuite, FanOutToIndependentGroups) {
  const std::string topic = name("fan-out");
  create_topic(topic, parts(3));
  for (const char* g : {"group-a", "group-b", "group-c"})
    ASSERT_NO_FATAL_FAILURE(declare_group(name(g), {topic}));
  constexpr int kMessages = 300;
  std::vector<Out> msgs;
  for (int i = 0; i < kMessages; ++i)
    msgs.push_back(Out{topic, "k" + std::to_string(i % 17), std::to_string(i), {}, {}, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));

  // The first group consumes and commits everything before the others start: their offsets must
  // not move with it.
  {
    auto a = consumer(name("group-a"), {topic});
    ASSERT_NE(a, nullptr);
    auto got = poll_n(*a, kMessages, kWait);
    ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
    ASSERT_OK(ack_all(*a, got));
    ASSERT_OK(a->close());
  }
  for (const char* g : {"group-b", "group-c"}) {
    auto c = consumer(name(g), {topic});
    ASSERT_NE(c, nullptr);
    auto got = poll_n(*c, kMessages, kWait);
    EXPECT_EQ(got.size(), static_cast<size_t>(kMessages)) << g << " did not get every message";
    EXPECT_TRUE(poll_for(*c, kQuiet).empty()) << g;
    std::set<std::string> values;
    for (const auto& m : got) values.insert(str(m.value));
    EXPECT_EQ(values.size(), static_cast<size_t>(kMessages)) << g;
  }
}

TEST_P(QueueSuite, UnackedRedeliveredToNewConsumer) {
  const std::string topic = name("redelivery");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 10);
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  {
    auto a = consumer(group, {topic});
    ASSERT_NE(a, nullptr);
    auto got = poll_n(*a, 10, kWait);
    ASSERT_EQ(got.size(), 10u);
    ASSERT_OK(ack_gapped(*a, got));
    ASSERT_OK(a->close());  // the consumer "dies" with m3, m4, m7, m8, m9 unacked
  }
  auto b = consumer(group, {topic});
  ASSERT_NE(b, nullptr);
  const std::set<std::string> want = unacked_after_gapped_acks();
  auto again = poll_n(*b, want.size(), kWait);
  auto extra = poll_for(*b, kQuiet);
  again.insert(again.end(), extra.begin(), extra.end());
  if (caps().offsets) {
    // The committed offset is the end of the acked prefix (3), so 5 and 6 come again too.
    EXPECT_EQ(offset_set(again), range_set(3, 10));
    for (const auto& m : again) EXPECT_EQ(str(m.value), "m" + std::to_string(m.offset.value()));
  }
  EXPECT_EQ(value_set(again), want);
  EXPECT_EQ(again.size(), want.size()) << "a message came twice to the new consumer";
  ASSERT_OK(ack_all(*b, again));
  ASSERT_OK(b->close());

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty()) << "everything was acked; nothing may come again";
}

TEST_P(QueueSuite, UnackedRedeliveredToWaitingMember) {
  REQUIRE_CAPABILITY(partitions);            // a member waits because it has no partition
  REQUIRE_CAPABILITY(exclusive_partitions);  // rather than competing for the owner's messages
  const std::string topic = name("takeover");
  create_topic(topic, 1);
  const std::string group = name("g");
  std::unique_ptr<queue::Consumer> c[2] = {consumer(group, {topic}), consumer(group, {topic})};
  ASSERT_NE(c[0], nullptr);
  ASSERT_NE(c[1], nullptr);
  size_t owner = 0;
  ASSERT_NO_FATAL_FAILURE(wait_for_owner({c[0].get(), c[1].get()}, &owner));
  const size_t waiter = 1 - owner;

  std::vector<Out> msgs = numbered(topic, 10);
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  std::vector<std::vector<Message>> got;
  ASSERT_TRUE(poll_round_robin(
      {c[0].get(), c[1].get()}, got, [&] { return got[owner].size() >= 10; }, kWait));
  EXPECT_TRUE(got[waiter].empty()) << "the member without a partition received messages";
  ASSERT_OK(ack_gapped(*c[owner], got[owner]));
  c[owner].reset();  // dies without an explicit close(): the destructor must hand over cleanly

  const std::set<std::string> want = unacked_after_gapped_acks();
  auto again = poll_n(*c[waiter], want.size(), kWait);
  auto extra = poll_for(*c[waiter], kQuiet);
  again.insert(again.end(), extra.begin(), extra.end());
  if (caps().offsets) {
    EXPECT_EQ(offset_set(again), range_set(3, 10)) << "the waiting member must resume at the acked prefix";
  }
  EXPECT_EQ(value_set(again), want);
  EXPECT_EQ(again.size(), want.size());
}

TEST_P(QueueSuite, AckAfterRevokeIsIgnored) {
  REQUIRE_CAPABILITY(partitions);
  REQUIRE_CAPABILITY(exclusive_partitions);  // a partition is revoked from one member
  REQUIRE_CAPABILITY(lag);                   // the committed offsets are read with describe_group
  const std::string topic = name("revoke");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 2, group));
  std::vector<Out> msgs;
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < 10; ++i)
      msgs.push_back(Out{topic, "k", std::to_string(p) + ":" + std::to_string(i), {}, p, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));

  auto a = consumer(group, {topic});
  ASSERT_NE(a, nullptr);
  auto a_got = poll_n(*a, 20, kWait);
  ASSERT_EQ(a_got.size(), 20u);
  auto b = consumer(group, {topic});
  ASSERT_NE(b, nullptr);
  std::vector<std::vector<Message>> got;
  ASSERT_TRUE(poll_round_robin(
      {a.get(), b.get()}, got,
      [&] {
        return assignments_settled({a.get(), b.get()}, topic, 2);
      },
      kWait))
      << "the second member never got a partition";
  const int32_t b_part = b->assignment().at(0).partition.value();

  // a acks everything it was handed, including the partition it no longer owns: those acks must
  // not commit anything, or b's unprocessed messages would be skipped.
  for (const auto& m : a_got) EXPECT_OK(a->ack(m));
  ASSERT_OK(a->commit());
  EXPECT_EQ(committed(group, topic, 1 - b_part), 10);
  EXPECT_NE(committed(group, topic, b_part).value_or(0), 10)
      << "an ack for a revoked partition was committed";

  std::vector<Message> b_got = got[1];
  auto more = poll_n(*b, 10 - std::min<size_t>(10, b_got.size()), kWait);
  b_got.insert(b_got.end(), more.begin(), more.end());
  EXPECT_EQ(offset_set(b_got, b_part), range_set(0, 10)) << "the new owner must receive the partition again";
  ASSERT_OK(ack_all(*b, b_got));
  ASSERT_OK(b->commit());
  EXPECT_EQ(committed(group, topic, b_part), 10);
}

TEST_P(QueueSuite, OutOfOrderAcksCommitContiguousPrefix) {
  REQUIRE_CAPABILITY(offsets);  // the committed offset is the end of the acked prefix
  REQUIRE_CAPABILITY(lag);
  const std::string topic = name("ack-order");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 10, "");
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 10, kWait);
  ASSERT_EQ(got.size(), 10u);

  struct Step {
    std::vector<int> acks;
    int64_t committed;
  };
  for (const Step& step :
       {Step{{0, 1, 2, 4, 6, 7}, 3}, Step{{3}, 5}, Step{{5}, 8}, Step{{9}, 8}, Step{{8}, 10}}) {
    for (int i : step.acks) ASSERT_OK(c->ack(got[i]));
    ASSERT_OK(c->commit());
    EXPECT_EQ(committed(group, topic, 0), step.committed) << "after acking up to " << step.acks.back();
  }
}

TEST_P(QueueSuite, ResumeFromCommittedOffsetAfterReopen) {
  REQUIRE_CAPABILITY(persistent);
  const std::string topic = name("resume");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 20);
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  {
    auto a = consumer(group, {topic});
    ASSERT_NE(a, nullptr);
    auto got = poll_n(*a, 20, kWait);
    ASSERT_EQ(got.size(), 20u);
    const std::set<std::string> first_half = value_range("m", 0, 10);
    for (const auto& m : got)
      if (first_half.count(str(m.value))) ASSERT_OK(a->ack(m));
    ASSERT_OK(a->close());
  }
  ASSERT_NO_FATAL_FAILURE(reopen());
  if (caps().lag) {
    EXPECT_EQ(committed(group, topic, 0), 10) << "the commit did not survive the restart";
  }

  auto b = consumer(group, {topic});
  ASSERT_NE(b, nullptr);
  auto got = poll_n(*b, 10, kWait);
  EXPECT_TRUE(poll_for(*b, kQuiet).empty());
  if (caps().offsets) {
    EXPECT_EQ(offset_set(got), range_set(10, 20));
    for (const auto& m : got) EXPECT_EQ(str(m.value), "m" + std::to_string(m.offset.value()));
  } else {
    EXPECT_EQ(value_set(got), value_range("m", 10, 20)) << "exactly the unacked must come again";
  }

  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "m20", {}, {}, 0}}));
  auto after = poll_n(*b, 1, kWait);
  ASSERT_EQ(after.size(), 1u);
  if (caps().offsets) {
    EXPECT_EQ(after[0].offset.value(), 20) << "offsets must continue after a restart";
  }
  EXPECT_EQ(str(after[0].value), "m20");
}

TEST_P(QueueSuite, StartFromLatestSkipsOldMessages) {
  const std::string topic = name("start-latest");
  create_topic(topic, 1);
  // The group is not declared before the old messages: it must start after them.
  std::vector<Out> msgs = numbered(topic, 5, "old");
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(name("g"), {topic}, queue::StartFrom::kLatest);
  ASSERT_NE(c, nullptr);
  // Join and take the partition before producing, or "latest" would include the new messages.
  auto deadline = std::chrono::steady_clock::now() + kWait;
  std::vector<Message> got;
  while (c->assignment().empty() && std::chrono::steady_clock::now() < deadline)
    ASSERT_OK(c->poll(got, 100, 50ms));
  auto quiet = poll_for(*c, kQuiet);
  got.insert(got.end(), quiet.begin(), quiet.end());
  EXPECT_TRUE(got.empty()) << "a kLatest consumer received old messages";

  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "new0", {}, {}, 0}, Out{topic, "k", "new1", {}, {}, 0}}));
  auto fresh = poll_n(*c, 2, kWait);
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_EQ(str(fresh[0].value), "new0");
  if (caps().offsets) {
    EXPECT_EQ(fresh[0].offset.value(), 5);
  }
  EXPECT_EQ(str(fresh[1].value), "new1");
}

TEST_P(QueueSuite, EphemeralLatestConsumerSeesWhatIsSentRightAfterItIsMade) {
  // `sluice ingest` opens its results consumer, then sends the tasks: results that arrive while
  // the consumer is still joining must not fall before its "latest".
  const std::string topic = name("ephemeral-latest");
  create_topic(topic, 2);
  ASSERT_NO_FATAL_FAILURE(produce(numbered(topic, 4, "old")));
  queue::ConsumerOptions opts;
  opts.group = name("eph");
  opts.topics = {topic};
  opts.start_from = queue::StartFrom::kLatest;
  opts.ephemeral = true;
  auto made = q().make_consumer(std::move(opts));
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  std::unique_ptr<queue::Consumer> c = std::move(made).value();
  ASSERT_NO_FATAL_FAILURE(produce(numbered(topic, 6, "new")));  // before the first poll
  auto got = poll_n(*c, 6, kWait);
  auto extra = poll_for(*c, kQuiet);
  got.insert(got.end(), extra.begin(), extra.end());
  std::set<std::string> values;
  for (const auto& m : got) values.insert(str(m.value));
  std::set<std::string> want;
  for (const auto& m : numbered(topic, 6, "new")) want.insert(m.value);
  EXPECT_EQ(values, want) << "received " << got.size() << " messages";
}

TEST_P(QueueSuite, PollHonoursMaxAndAppends) {
  const std::string topic = name("poll-max");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 10, "");
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  std::vector<Message> got;
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) ASSERT_OK(c->poll(got, 3, 100ms));
  ASSERT_FALSE(got.empty());
  EXPECT_LE(got.size(), 3u) << "poll returned more than max";
  // poll appends: what is already in the vector stays.
  const size_t first = got.size();
  while (got.size() == first && std::chrono::steady_clock::now() < deadline)
    ASSERT_OK(c->poll(got, 3, 100ms));
  ASSERT_GT(got.size(), first);
  EXPECT_LE(got.size(), first + 3);
  // Message i is the i-th sent: at offset i, and holding value "i".
  for (size_t i = 0; i < got.size(); ++i) {
    if (caps().offsets) {
      EXPECT_EQ(got[i].offset.value(), static_cast<int64_t>(i));
    } else {
      EXPECT_EQ(str(got[i].value), std::to_string(i));
    }
  }
}

TEST_P(QueueSuite, OneConsumerSeveralTopics) {
  const std::string t1 = name("multi-a");
  const std::string t2 = name("multi-b");
  create_topic(t1, parts(2));
  create_topic(t2, 1);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(declare_group(group, {t1, t2}));
  std::vector<Out> msgs;
  for (int i = 0; i < 20; ++i)
    msgs.push_back(Out{i % 2 ? t2 : t1, "k" + std::to_string(i), std::to_string(i), {}, {}, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(group, {t1, t2});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 20, kWait);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());
  ASSERT_EQ(got.size(), 20u);
  for (const auto& m : got) {
    int i = std::stoi(str(m.value));
    EXPECT_EQ(str(m.topic), i % 2 ? t2 : t1) << "message " << i;
  }
}

TEST_P(QueueSuite, AcksFromManyThreads) {
  const std::string topic = name("ack-threads");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  constexpr int kMessages = 2000;
  std::vector<Out> msgs = numbered(topic, kMessages, "");
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, kMessages, kWait);
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  // ack() is the one Consumer call allowed from any thread: workers ack as they finish.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kMessages; i += 4)
        if (!c->ack(got[i]).is_ok()) failures.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(c->commit());
  if (caps().lag) {
    EXPECT_EQ(committed(group, topic, 0), kMessages);
    return;
  }
  // Without lag figures: every ack took effect when nothing comes again after a close.
  ASSERT_OK(c->close());
  auto again = consumer(group, {topic});
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(poll_n(*again, 1, 1s).size(), 0u);
}

TEST_P(QueueSuite, CloseIsIdempotent) {
  const std::string topic = name("close");
  create_topic(topic, 1);
  auto c = consumer(name("g"), {topic});
  ASSERT_NE(c, nullptr);
  std::vector<Message> got;
  ASSERT_OK(c->poll(got, 10, 50ms));
  EXPECT_OK(c->close());
  EXPECT_OK(c->close());
}

// ---------------------------------------------------------------------------------------------
// Offsets reset and lag

TEST_P(QueueSuite, ResetToEarliestOffsetAndLatest) {
  REQUIRE_CAPABILITY(replay);
  const std::string topic = name("reset");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 10);
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  {
    auto a = consumer(group, {topic});
    ASSERT_NE(a, nullptr);
    auto got = poll_n(*a, 10, kWait);
    ASSERT_EQ(got.size(), 10u);
    ASSERT_OK(ack_all(*a, got));
    ASSERT_OK(a->close());
  }

  struct Case {
    const char* what;
    ResetSpec spec;
    int64_t expect_offset;
  };
  for (const Case& cs : {Case{"earliest", {ResetSpec::Kind::kEarliest, 0}, 0},
                         Case{"offset 4", {ResetSpec::Kind::kOffset, 4}, 4},
                         Case{"latest", {ResetSpec::Kind::kLatest, 0}, 10}}) {
    SCOPED_TRACE(cs.what);
    ASSERT_OK_AND_ASSIGN(auto offsets, admin().reset_offsets(group, topic, cs.spec));
    ASSERT_EQ(offsets.size(), 1u);
    EXPECT_EQ(offsets[0].partition.value(), 0);
    EXPECT_EQ(offsets[0].offset.value(), cs.expect_offset);
    if (caps().lag) {
      EXPECT_EQ(committed(group, topic, 0), cs.expect_offset);
    }
    auto c = consumer(group, {topic});
    ASSERT_NE(c, nullptr);
    auto got = poll_n(*c, 10 - cs.expect_offset, kWait);
    auto extra = poll_for(*c, kQuiet);
    got.insert(got.end(), extra.begin(), extra.end());
    EXPECT_EQ(offset_set(got), range_set(cs.expect_offset, 10));
    EXPECT_EQ(got.size(), static_cast<size_t>(10 - cs.expect_offset));
    ASSERT_OK(c->close());  // nothing acked: the reset position stays committed
  }
  // After "latest" only new messages come.
  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "m10", {}, {}, 0}}));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 1, kWait);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset.value(), 10);
}

TEST_P(QueueSuite, ResetToOffsetOutsideTheLogIsClampedOrRefused) {
  REQUIRE_CAPABILITY(replay);
  const std::string topic = name("reset-range");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  std::vector<Out> msgs = numbered(topic, 10);
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  // A committed offset past the end would silently skip the next messages written; one before the
  // start would point at nothing. Either is clamped (as Kafka's tools do) or refused.
  struct Case {
    int64_t offset;
    int64_t clamped;
  };
  for (const Case& cs : {Case{1000, 10}, Case{-5, 0}}) {
    SCOPED_TRACE("reset to offset " + std::to_string(cs.offset));
    auto r = admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kOffset, cs.offset});
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
      continue;
    }
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].offset.value(), cs.clamped);
  }
  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "m10", {}, {}, 0}}));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 1, kWait);
  ASSERT_FALSE(got.empty()) << "after an out-of-range reset the group receives nothing";
}

TEST_P(QueueSuite, ResetToTimestamp) {
  REQUIRE_CAPABILITY(timestamp_reset);
  const std::string topic = name("reset-ts");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  const int64_t base =
      std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count() -
      3600 * 1000;
  std::vector<Out> msgs;
  for (int i = 0; i < 10; ++i)
    msgs.push_back(Out{topic, "k", "m" + std::to_string(i), {}, {}, base + i * 1000});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));

  // The new position is the first message whose timestamp is at or after the given time.
  struct Case {
    int64_t ts;
    int64_t expect_offset;
  };
  for (const Case& cs : {Case{base + 5500, 6}, Case{base + 5000, 5}, Case{base - 1, 0}, Case{base + 9000, 9},
                         Case{base + 100000, 10}}) {
    SCOPED_TRACE("timestamp base+" + std::to_string(cs.ts - base));
    ASSERT_OK_AND_ASSIGN(auto offsets,
                         admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kTimestamp, cs.ts}));
    ASSERT_EQ(offsets.size(), 1u);
    EXPECT_EQ(offsets[0].offset.value(), cs.expect_offset);
  }
  ASSERT_OK(
      admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kTimestamp, base + 5500}).status());
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 4, kWait);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());
  EXPECT_EQ(offset_set(got), range_set(6, 10));
}

TEST_P(QueueSuite, ResetRefusedWhileGroupActive) {
  REQUIRE_CAPABILITY(replay);
  const std::string topic = name("reset-busy");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "a", {}, {}, 0}, Out{topic, "k", "b", {}, {}, 0}}));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 2, kWait);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_OK(ack_all(*c, got));
  ASSERT_OK(c->commit());

  auto refused = admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kEarliest, 0});
  ASSERT_FALSE(refused.is_ok()) << "reset succeeded while a member of the group was consuming";
  EXPECT_EQ(refused.status().code(), Code::kBusy) << refused.status().to_string();
  if (caps().lag) {
    auto info = admin().describe_group(group);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->state, "active");
    EXPECT_FALSE(info->members.empty());
    EXPECT_EQ(committed(group, topic, 0), 2) << "a refused reset moved the offset";
  }

  ASSERT_OK(c->close());
  ASSERT_OK_AND_ASSIGN(auto offsets,
                       admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kEarliest, 0}));
  ASSERT_EQ(offsets.size(), 1u);
  EXPECT_EQ(offsets[0].offset.value(), 0);
  if (caps().lag) {
    auto info = admin().describe_group(group);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->state, "empty");
  }
}

TEST_P(QueueSuite, ResetOnePartitionOnly) {
  REQUIRE_CAPABILITY(replay);
  REQUIRE_CAPABILITY(partitions);
  const std::string topic = name("reset-one");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 2, group));
  std::vector<Out> msgs;
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < 5; ++i) msgs.push_back(Out{topic, "k", std::to_string(p), {}, p, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  {
    auto a = consumer(group, {topic});
    ASSERT_NE(a, nullptr);
    auto got = poll_n(*a, 10, kWait);
    ASSERT_EQ(got.size(), 10u);
    ASSERT_OK(ack_all(*a, got));
    ASSERT_OK(a->close());
  }
  ASSERT_OK_AND_ASSIGN(
      auto offsets,
      admin().reset_offsets(group, topic, ResetSpec{ResetSpec::Kind::kEarliest, 0}, PartitionId(1)));
  ASSERT_EQ(offsets.size(), 1u) << "only the named partition may move";
  EXPECT_EQ(offsets[0].partition.value(), 1);
  EXPECT_EQ(offsets[0].offset.value(), 0);
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 5, kWait);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());
  EXPECT_EQ(offset_set(got, 1), range_set(0, 5));
  EXPECT_TRUE(offset_set(got, 0).empty()) << "partition 0 was replayed too";
}

TEST_P(QueueSuite, LagFigures) {
  REQUIRE_CAPABILITY(lag);
  const std::string topic = name("lag");
  const int32_t partitions = parts(2);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions, group));
  std::vector<Out> msgs;
  for (int i = 0; i < 6; ++i) msgs.push_back(Out{topic, "k", "a", {}, 0, 0});
  for (int i = 0; i < 4; ++i) msgs.push_back(Out{topic, "k", "b", {}, partitions - 1, 0});
  ASSERT_NO_FATAL_FAILURE(produce(msgs));
  const int64_t end0 = partitions == 2 ? 6 : 10;
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 10, kWait);
  ASSERT_EQ(got.size(), 10u);

  // Before any commit: lag is everything stored.
  {
    ASSERT_OK_AND_ASSIGN(auto info, admin().describe_group(group));
    EXPECT_EQ(info.state, "active");
    EXPECT_FALSE(info.members.empty());
    auto p0 = group_partition(group, topic, 0);
    ASSERT_TRUE(p0.has_value());
    EXPECT_EQ(p0->committed.value_or(Offset(0)).value(), 0);
    EXPECT_EQ(p0->end.value(), end0);
    EXPECT_EQ(p0->lag, end0);
    EXPECT_FALSE(p0->member.empty()) << "an owned partition must name its member";
    if (partitions == 2) {
      auto p1 = group_partition(group, topic, 1);
      ASSERT_TRUE(p1.has_value());
      EXPECT_EQ(p1->end.value(), 4);
      EXPECT_EQ(p1->lag, 4);
    }
  }
  // Part consumed: partition 0 up to offset 3, partition 1 entirely.
  for (const auto& m : got)
    if (m.partition.value() != 0 || m.offset.value() < 3) {
      ASSERT_OK(c->ack(m));
    }
  ASSERT_OK(c->commit());
  {
    auto p0 = group_partition(group, topic, 0);
    ASSERT_TRUE(p0.has_value());
    EXPECT_EQ(p0->committed.value_or(Offset(-1)).value(), 3);
    EXPECT_EQ(p0->lag, end0 - 3);
    if (partitions == 2) {
      auto p1 = group_partition(group, topic, 1);
      ASSERT_TRUE(p1.has_value());
      EXPECT_EQ(p1->committed.value_or(Offset(-1)).value(), 4);
      EXPECT_EQ(p1->lag, 0);
    }
  }
  // Everything consumed, then two more arrive.
  ASSERT_OK(ack_all(*c, got));
  ASSERT_OK(c->commit());
  {
    auto p0 = group_partition(group, topic, 0);
    ASSERT_TRUE(p0.has_value());
    EXPECT_EQ(p0->lag, 0);
  }
  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "c", {}, 0, 0}, Out{topic, "k", "d", {}, 0, 0}}));
  {
    auto p0 = group_partition(group, topic, 0);
    ASSERT_TRUE(p0.has_value());
    EXPECT_EQ(p0->end.value(), end0 + 2);
    EXPECT_EQ(p0->lag, 2);
  }
  ASSERT_OK(c->close());
  ASSERT_OK_AND_ASSIGN(auto info, admin().describe_group(group));
  EXPECT_EQ(info.state, "empty");
  EXPECT_TRUE(info.members.empty());
  auto p0 = group_partition(group, topic, 0);
  ASSERT_TRUE(p0.has_value());
  EXPECT_EQ(p0->committed.value_or(Offset(-1)).value(), end0) << "committed offsets outlive the members";
  EXPECT_EQ(p0->lag, 2);
  ASSERT_OK_AND_ASSIGN(auto groups, admin().list_groups());
  EXPECT_NE(std::find(groups.begin(), groups.end(), group), groups.end()) << "list_groups misses " << group;
}

// ---------------------------------------------------------------------------------------------
// Limits and bad input

TEST_P(QueueSuite, OversizedMessageRefusedAndNothingElseLost) {
  if (caps().max_message_bytes == 0) GTEST_SKIP() << "backend declares no max_message_bytes";
  const std::string topic = name("oversized");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  const size_t limit = caps().max_message_bytes;
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  ASSERT_TRUE(send(p.get(), Out{topic, "k", "before", {}, {}, 0}).is_ok());
  {
    auto t = send(p.get(), Out{topic, "k", std::string(limit + 1, 'x'), {}, {}, 0});
    ASSERT_FALSE(t.is_ok()) << "a " << limit + 1 << "-byte value was accepted (limit " << limit << ")";
    EXPECT_EQ(t.status().code(), Code::kTooLarge) << t.status().to_string();
    EXPECT_FALSE(t.status().message().empty());
  }
  {
    // The limit is on the whole message, not only the value.
    auto t = send(p.get(),
                  Out{topic, std::string(limit / 2 + 1, 'k'), std::string(limit / 2 + 1, 'v'), {}, {}, 0});
    ASSERT_FALSE(t.is_ok()) << "key + value over the limit was accepted";
    EXPECT_EQ(t.status().code(), Code::kTooLarge) << t.status().to_string();
  }
  ASSERT_TRUE(send(p.get(), Out{topic, "k", "after", {}, {}, 0}).is_ok());
  ASSERT_OK(p.get().flush(kWait));
  ASSERT_TRUE(p.wait_reports(2, kWait));
  for (const auto& r : p.reports()) EXPECT_TRUE(r.status.is_ok()) << r.status.to_string();

  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 2, kWait);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(str(got[0].value), "before");
  EXPECT_EQ(str(got[1].value), "after");
  if (caps().offsets) {  // without, what the group received above is what was stored
    EXPECT_EQ(stored_count(topic), 2);
  }
}

TEST_P(QueueSuite, LargeMessageBelowLimitRoundTrips) {
  if (caps().max_message_bytes == 0) GTEST_SKIP() << "backend declares no max_message_bytes";
  const std::string topic = name("large");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, 1, group));
  // Half the limit: larger than any sensible batch, well inside the message limit.
  const std::string big = random_bytes(std::min<size_t>(caps().max_message_bytes / 2, 16u << 20), 7);
  ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "small", "1", {}, {}, 0}, Out{topic, "big", big, {}, {}, 0},
                                   Out{topic, "small", "2", {}, {}, 0}}));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, 3, kWait);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(str(got[0].value), "1");
  EXPECT_TRUE(got[1].value == big) << "the " << big.size() << "-byte value came back different (size "
                                   << got[1].value.size() << ")";
  EXPECT_EQ(str(got[2].value), "2");
}

TEST_P(QueueSuite, UnknownTopicOnSendIsNotFound) {
  const std::string topic = name("no-such-topic");
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  auto t = send(p.get(), Out{topic, "k", "v", {}, {}, 0});
  ASSERT_FALSE(t.is_ok()) << "send to a topic that does not exist succeeded";
  EXPECT_EQ(t.status().code(), Code::kNotFound) << t.status().to_string();
  EXPECT_NE(t.status().message().find(topic), std::string::npos)
      << "the error should name the topic: " << t.status().to_string();
  EXPECT_EQ(p.get().outstanding(), 0u);
}

TEST_P(QueueSuite, UnknownTopicOnSubscribeIsNotFound) {
  const std::string topic = name("no-such-topic");
  queue::ConsumerOptions opts;
  opts.group = name("g");
  opts.topics = {topic};
  auto c = q().make_consumer(std::move(opts));
  Status st = c.status();
  if (c.is_ok()) {
    // A backend may accept the subscription and report on the first poll instead.
    std::vector<Message> got;
    st = (*c)->poll(got, 10, 500ms);
  }
  ASSERT_FALSE(st.is_ok()) << "subscribing to a topic that does not exist went unreported";
  EXPECT_EQ(st.code(), Code::kNotFound) << st.to_string();
  EXPECT_NE(st.message().find(topic), std::string::npos)
      << "the error should name the topic: " << st.to_string();
}

TEST_P(QueueSuite, UnknownTopicInAdminIsNotFound) {
  const std::string topic = name("no-such-topic");
  auto d = admin().describe_topic(topic);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), Code::kNotFound) << d.status().to_string();
  EXPECT_NE(d.status().message().find(topic), std::string::npos) << d.status().to_string();
  if (caps().replay) {
    auto r = admin().reset_offsets(name("g"), topic, ResetSpec{});
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
  }
}

TEST_P(QueueSuite, BadPartitionCountRefused) {
  std::vector<int32_t> counts = {0, -1, INT32_MIN};
  if (caps().partitions) {
    counts.push_back(1000000);
    counts.push_back(INT32_MAX);
  }
  for (int32_t n : counts) {
    const std::string topic = name("bad-count-" + std::to_string(n < 0 ? 0 : n) + (n < 0 ? "neg" : ""));
    queue::TopicConfig cfg;
    cfg.partitions = n;
    Status st = admin().create_topic(topic, cfg);
    ASSERT_FALSE(st.is_ok()) << "a topic with " << n << " partitions was created";
    EXPECT_TRUE(st.error_class() == ErrorClass::kBadInput || st.error_class() == ErrorClass::kResourceLimit)
        << n << " partitions: " << st.to_string();
    if (n <= 0) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    }
    EXPECT_FALSE(admin().describe_topic(topic).is_ok()) << "a refused topic exists anyway: " << topic;
  }
}

TEST_P(QueueSuite, CreateTopicIdempotentButNotRedefinable) {
  const std::string topic = name("create-twice");
  const int32_t partitions = parts(3);
  create_topic(topic, partitions);
  queue::TopicConfig cfg;
  cfg.partitions = partitions;
  EXPECT_OK(admin().create_topic(topic, cfg));
  cfg.partitions = partitions + 1;
  Status st = admin().create_topic(topic, cfg);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.to_string();
  ASSERT_OK_AND_ASSIGN(auto info, admin().describe_topic(topic));
  EXPECT_EQ(info.name, topic);
  EXPECT_EQ(info.partitions, partitions);
  EXPECT_EQ(info.partition_info.size(), static_cast<size_t>(partitions));
  ASSERT_OK_AND_ASSIGN(auto topics, admin().list_topics());
  EXPECT_EQ(std::count_if(topics.begin(), topics.end(), [&](const auto& t) { return t.name == topic; }), 1);
}

TEST_P(QueueSuite, InvalidTopicNamesRefused) {
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "a/b",
      "../escape",
      "a b",
      "a\nb",
      "tab\tx",
      "a:b",
      "star*",
      "文档",
      std::string(250, 'a'),
      std::string("nul\0x", 5),
  };
  ASSERT_OK_AND_ASSIGN(auto before, admin().list_topics());
  for (const auto& t : bad) {
    queue::TopicConfig cfg;
    Status st = admin().create_topic(t, cfg);
    ASSERT_FALSE(st.is_ok()) << "topic name '" << printable(t) << "' was accepted";
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << printable(t) << ": " << st.to_string();
  }
  ASSERT_OK_AND_ASSIGN(auto after, admin().list_topics());
  EXPECT_EQ(after.size(), before.size()) << "a refused name left a topic behind";
}

TEST_P(QueueSuite, BoundaryTopicNamesAccepted) {
  const std::string suffix = name("");
  // 249 characters is Kafka's limit; a backend that adds a partition suffix to a file name must
  // still fit in NAME_MAX.
  for (const std::string& base : {std::string("a"), std::string("A.b_c-9"), std::string("..."),
                                  std::string(249 - suffix.size(), 'x')}) {
    const std::string topic = base + suffix;
    SCOPED_TRACE("topic of " + std::to_string(topic.size()) + " chars: " + topic.substr(0, 20));
    create_topic(topic, parts(2));
    ASSERT_NO_FATAL_FAILURE(declare_group(name("g"), {topic}));
    ASSERT_NO_FATAL_FAILURE(produce({Out{topic, "k", "v", {}, {}, 0}}));
    auto c = consumer(name("g"), {topic});
    ASSERT_NE(c, nullptr);
    auto got = poll_n(*c, 1, kWait);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(str(got[0].topic), topic);
    ASSERT_OK(ack_all(*c, got));
    ASSERT_OK(c->close());
  }
}

// ---------------------------------------------------------------------------------------------
// Producers

// Checks what concurrent producers wrote: every value exactly once, (when declared) offsets unique
// and gapless and each key's sequence in send order.
void check_concurrent(queue::Consumer& c, int producers, int per_producer, bool offsets, bool per_key_order) {
  const size_t total = static_cast<size_t>(producers) * per_producer;
  auto got = poll_n(c, total, kWait * 2);
  auto extra = poll_for(c, kQuiet);
  got.insert(got.end(), extra.begin(), extra.end());
  ASSERT_EQ(got.size(), total) << "messages lost or duplicated";
  std::set<std::pair<int32_t, int64_t>> positions;
  std::set<std::string> values;
  std::map<std::string, int64_t> last_seq;
  for (const auto& m : got) {
    if (offsets) {
      EXPECT_TRUE(positions.insert({m.partition.value(), m.offset.value()}).second)
          << "offset handed out twice";
    }
    EXPECT_TRUE(values.insert(str(m.value)).second) << "value " << str(m.value) << " stored twice";
    if (per_key_order) {
      std::string key = str(*m.key);
      int64_t seq = seq_of(m.value);
      auto it = last_seq.find(key);
      if (it != last_seq.end()) {
        EXPECT_LT(it->second, seq) << "key " << key << " out of order";
      }
      last_seq[key] = seq;
    }
  }
  EXPECT_EQ(values.size(), total);
  if (!offsets) return;
  for (const auto& [p, offs] : offsets_by_partition(got)) {
    EXPECT_EQ(offs.front(), 0) << "partition " << p;
    EXPECT_EQ(offs.back(), static_cast<int64_t>(offs.size()) - 1) << "gap in partition " << p;
  }
}

TEST_P(QueueSuite, ConcurrentProducersEachWithOwnProducer) {
  const std::string topic = name("concurrent");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, parts(4), group));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1500;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto p = q().make_producer({});
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      if (!p.is_ok()) {
        errors[t] = p.status().to_string();
        return;
      }
      std::vector<int64_t> seq(8, 0);
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "-k" + std::to_string(i % 8);
        auto r = send(**p, Out{topic, key, key + ":" + std::to_string(seq[i % 8]++), {}, {}, 0});
        if (!r.is_ok()) {
          errors[t] = r.status().to_string();
          return;
        }
      }
      Status st = (*p)->flush(kWait * 2);
      if (!st.is_ok()) errors[t] = st.to_string();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    ASSERT_TRUE(errors[t].empty()) << "producer thread " << t << ": " << errors[t];
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  check_concurrent(*c, kThreads, kPerThread, caps().offsets, caps().per_key_order);
}

TEST_P(QueueSuite, ConcurrentThreadsShareOneProducer) {
  const std::string topic = name("shared-producer");
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, parts(4), group));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1500;
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  std::vector<std::vector<uint64_t>> tickets(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int64_t> seq(8, 0);
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "-k" + std::to_string(i % 8);
        auto r = send(p.get(), Out{topic, key, key + ":" + std::to_string(seq[i % 8]++), {}, {}, 0});
        if (!r.is_ok()) {
          errors[t] = r.status().to_string();
          return;
        }
        tickets[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) ASSERT_TRUE(errors[t].empty()) << "thread " << t << ": " << errors[t];
  ASSERT_OK(p.get().flush(kWait * 2));
  // Tickets are unique across threads and each thread's are increasing.
  std::set<uint64_t> all;
  for (const auto& ts : tickets) {
    EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end()));
    all.insert(ts.begin(), ts.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kPerThread));
  ASSERT_TRUE(p.wait_reports(kThreads * kPerThread, kWait));
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  check_concurrent(*c, kThreads, kPerThread, caps().offsets, caps().per_key_order);
}

TEST_P(QueueSuite, DeliveryReportsCarryTicketOpaqueAndOffsets) {
  const std::string topic = name("reports");
  const int32_t partitions = parts(4);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions, group));
  constexpr int kMessages = 400;
  std::vector<int> tags(kMessages);
  RecordingProducer p;
  ASSERT_OK(p.init(q()));
  std::vector<std::string> keys;
  for (int i = 0; i < kMessages; ++i) {
    keys.push_back("k" + std::to_string(i % 37));
    auto t = send(p.get(), Out{topic, keys.back(), "v" + std::to_string(i), {}, {}, 0}, &tags[i]);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    EXPECT_EQ(*t, static_cast<uint64_t>(i + 1)) << "tickets must be 1, 2, 3, ... per producer";
  }
  ASSERT_OK(p.get().flush(kWait));
  EXPECT_EQ(p.get().outstanding(), 0u);
  ASSERT_TRUE(p.wait_reports(kMessages, kWait));
  auto reports = p.reports();
  ASSERT_EQ(reports.size(), static_cast<size_t>(kMessages)) << "one report per send";

  std::sort(reports.begin(), reports.end(),
            [](const Report& a, const Report& b) { return a.ticket < b.ticket; });
  std::map<int32_t, std::vector<int64_t>> offsets;  // per partition, in ticket order
  std::map<std::pair<int32_t, int64_t>, std::string> expected_value;
  std::map<std::string, int32_t> expected_partition;  // by value, without offsets
  for (int i = 0; i < kMessages; ++i) {
    const Report& r = reports[i];
    ASSERT_EQ(r.ticket, static_cast<uint64_t>(i + 1)) << "a ticket reported twice or never";
    EXPECT_EQ(r.opaque, &tags[i]) << "ticket " << r.ticket << " came back with another opaque";
    EXPECT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_EQ(r.topic, topic);
    if (caps().partitions) {
      EXPECT_EQ(r.partition, queue::partition_for_key(keys[i], partitions).value());
    }
    if (caps().offsets) {
      offsets[r.partition].push_back(r.offset);
      expected_value[{r.partition, r.offset}] = "v" + std::to_string(i);
    } else {
      EXPECT_EQ(r.offset, -1) << "without offsets a delivery report has -1";
      expected_partition["v" + std::to_string(i)] = r.partition;
    }
  }
  for (const auto& [part, offs] : offsets) {
    for (size_t i = 0; i < offs.size(); ++i) {
      EXPECT_EQ(offs[i], static_cast<int64_t>(i))
          << "partition " << part << ": offsets must increase with tickets";
    }
  }
  // And the offsets (or without them, partitions) reported are where the messages are.
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, kMessages, kWait);
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (const auto& m : got) {
    if (caps().offsets) {
      const std::string& expected = expected_value[std::make_pair(m.partition.value(), m.offset.value())];
      EXPECT_EQ(expected, str(m.value))
          << "report said " << m.partition.value() << "/" << m.offset.value() << " holds another message";
    } else {
      auto it = expected_partition.find(str(m.value));
      ASSERT_NE(it, expected_partition.end()) << "received " << printable(m.value) << ", never sent";
      EXPECT_EQ(it->second, m.partition.value()) << "report put " << str(m.value) << " on another partition";
    }
  }
  EXPECT_OK(p.get().flush(1s));  // nothing outstanding: returns at once
}

TEST_P(QueueSuite, CleanShutdownLosesNothing) {
  REQUIRE_CAPABILITY(persistent);
  const std::string topic = name("shutdown");
  const int32_t partitions = parts(4);
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(create_topic(topic, partitions, group));
  constexpr int kMessages = 5000;
  {
    auto p = q().make_producer({});
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    for (int i = 0; i < kMessages; ++i) {
      auto t = send(**p, Out{topic, "k" + std::to_string(i % 50), "v" + std::to_string(i), {}, {}, 0});
      ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    }
    ASSERT_OK((*p)->flush(kWait * 2));
    EXPECT_EQ((*p)->outstanding(), 0u);
  }  // producer destroyed
  ASSERT_NO_FATAL_FAILURE(reopen());
  if (caps().offsets) {  // without, the count of what the group receives below is the check
    EXPECT_EQ(stored_count(topic), kMessages);
  }
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  auto got = poll_n(*c, kMessages, kWait * 2);
  EXPECT_TRUE(poll_for(*c, kQuiet).empty());
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  std::set<std::string> values;
  for (const auto& m : got) values.insert(str(m.value));
  EXPECT_EQ(values.size(), static_cast<size_t>(kMessages));
  if (!caps().offsets) return;
  for (const auto& [p, offs] : offsets_by_partition(got)) {
    EXPECT_EQ(offs.back(), static_cast<int64_t>(offs.size()) - 1) << "gap in partition " << p;
  }
}

// Producers in several processes append to the same topic at once. The children are forked with
// no Queue open in this process (a forked copy of a live backend is not a backend), and each opens
// its own through the fixture.
TEST_P(QueueSuite, ProducersInSeveralProcesses) {
  REQUIRE_CAPABILITY(multi_process_producers);
  const std::string topic = name("multi-process");
  create_topic(topic, parts(2));
  const std::string group = name("g");
  ASSERT_NO_FATAL_FAILURE(declare_group(group, {topic}));  // before close_queue()
  constexpr int kChildren = 3;
  constexpr int kPerProcess = 400;
  auto produce_as = [&](queue::Queue& queue, const std::string& who) -> int {
    auto p = queue.make_producer({});
    if (!p.is_ok()) return 10;
    std::vector<int64_t> seq(4, 0);
    for (int i = 0; i < kPerProcess; ++i) {
      std::string key = who + "-k" + std::to_string(i % 4);
      if (!send(**p, Out{topic, key, key + ":" + std::to_string(seq[i % 4]++), {}, {}, 0}).is_ok()) return 11;
    }
    return (*p)->flush(kWait * 2).is_ok() ? 0 : 12;
  };

  close_queue();
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork: " << std::strerror(errno);
    if (pid == 0) {
      int rc = 13;
      if (auto child_queue = backend().open(); child_queue.is_ok()) {
        rc = produce_as(**child_queue, "child" + std::to_string(i));
      }
      _exit(rc);  // no gtest teardown, no static destructors in the child
    }
    pids.push_back(pid);
  }
  ASSERT_NO_FATAL_FAILURE(open_queue());
  int parent_rc = produce_as(q(), "parent");
  auto deadline = std::chrono::steady_clock::now() + kWait * 2;
  for (pid_t pid : pids) {
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    if (done == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "producer process " << pid << " hung";
      continue;
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "producer process " << pid << " failed (status " << status << ")";
  }
  ASSERT_EQ(parent_rc, 0);
  auto c = consumer(group, {topic});
  ASSERT_NE(c, nullptr);
  check_concurrent(*c, kChildren + 1, kPerProcess, caps().offsets, caps().per_key_order);
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueSuite, ::testing::ValuesIn(registered_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace sluice::conformance
