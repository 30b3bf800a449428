// What only the amqp backend does, against a real RabbitMQ: the prefetch limit bounds what one
// consumer holds unacknowledged; a producer publishes again, across a broker restart, whatever the
// broker had not confirmed; quorum queues with delivery_limit dead-letter a message that keeps
// coming back to topic T.dlq; a group declared with other queue settings is refused, naming them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue/queue.h"
#include "support/rabbitmq_server.h"
#include "support/require_server.h"

namespace sluice::queue {
namespace {

using namespace std::chrono_literals;

class AmqpBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  std::unique_ptr<Queue> open(const std::string& query) {
    auto q = open_queue(server_.uri(query));
    EXPECT_TRUE(q.is_ok()) << q.status().to_string();
    return q.is_ok() ? std::move(q).value() : nullptr;
  }
  // Polls until n messages came or `within` passed.
  static std::vector<Message> poll_n(Consumer& c, size_t n, Millis within) {
    std::vector<Message> got;
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      Status st = c.poll(got, n - got.size(), 100ms);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return got;
  }
  static void produce(Queue& q, const std::string& topic, int n, const std::string& tag = "m") {
    auto p = q.make_producer({});
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    for (int i = 0; i < n; ++i) {
      std::string v = tag + std::to_string(i);
      ASSERT_TRUE((*p)->send(OutMessage{.topic = topic, .key = v, .value = v}).is_ok());
    }
    Status st = (*p)->flush(30s);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  testing::RabbitMqServer server_;
};

TEST_F(AmqpBrokerTest, PrefetchBoundsWhatAConsumerHolds) {
  auto q = open("prefix=prefetch&prefetch=10");
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 2}).is_ok());
  const std::string topics[] = {"t"};
  ASSERT_TRUE(q->admin().declare_group("g", topics).is_ok());
  ASSERT_NO_FATAL_FAILURE(produce(*q, "t", 50));
  auto c = q->make_consumer({.group = "g", .topics = {"t"}});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  auto held = poll_n(**c, 50, 1s);
  EXPECT_EQ(held.size(), 10u) << "a consumer holds at most `prefetch` unacknowledged messages";
  std::set<std::string> seen;
  for (const Message& m : held) {
    seen.insert(std::string(m.value));
    ASSERT_TRUE((*c)->ack(m).is_ok());
  }
  // Acked, the broker sends the rest, ten at a time.
  while (seen.size() < 50) {
    auto more = poll_n(**c, 10, 5s);
    ASSERT_FALSE(more.empty()) << seen.size() << " of 50";
    EXPECT_LE(more.size(), 10u);
    for (const Message& m : more) {
      EXPECT_TRUE(seen.insert(std::string(m.value)).second) << "twice: " << m.value;
      ASSERT_TRUE((*c)->ack(m).is_ok());
    }
  }
  EXPECT_TRUE((*c)->close().is_ok());
}

TEST_F(AmqpBrokerTest, ProducerPublishesAgainAcrossABrokerRestart) {
  auto q = open("prefix=restart");
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 3}).is_ok());
  const std::string topics[] = {"t"};
  ASSERT_TRUE(q->admin().declare_group("g", topics).is_ok());
  std::atomic<int> ok{0}, failed{0};
  auto p =
      q->make_producer({.on_delivery = [&](const DeliveryReport& r) { (r.status.is_ok() ? ok : failed)++; }});
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  constexpr int kMessages = 3000;
  std::thread chaos([&] {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (ok.load() < 500 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    EXPECT_GE(ok.load(), 500) << "the broker confirmed too little to restart it mid-run";
    server_.stop();
    Status st = server_.start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  });
  for (int i = 0; i < kMessages; ++i) {
    std::string v = "v" + std::to_string(i);
    auto t = (*p)->send(OutMessage{.topic = "t", .key = v, .value = v});
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    if (i % 100 == 0) std::this_thread::sleep_for(2ms);  // spread the sends over the restart
  }
  Status flushed = (*p)->flush(60s);
  chaos.join();
  EXPECT_TRUE(flushed.is_ok()) << flushed.to_string();
  EXPECT_EQ(ok.load(), kMessages);
  EXPECT_EQ(failed.load(), 0);
  // Every confirmed message is there after the restart (some perhaps twice: at least once).
  auto c = q->make_consumer({.group = "g", .topics = {"t"}});
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  std::set<std::string> values;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (values.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    auto got = poll_n(**c, 1000, 1s);
    for (const Message& m : got) {
      values.insert(std::string(m.value));
      ASSERT_TRUE((*c)->ack(m).is_ok());
    }
  }
  EXPECT_EQ(values.size(), static_cast<size_t>(kMessages));
}

TEST_F(AmqpBrokerTest, QuorumDeliveryLimitDeadLettersToTheDlqTopic) {
  auto q = open("prefix=quorum&queue_type=quorum&delivery_limit=2");
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->admin().create_topic("t", {.partitions = 1}).is_ok());
  const std::string topics[] = {"t"};
  ASSERT_TRUE(q->admin().declare_group("g", topics).is_ok());
  ASSERT_NO_FATAL_FAILURE(produce(*q, "t", 1, "poison"));
  // A worker that dies on it each time: taken, not acknowledged, connection closed.
  int deliveries = 0;
  for (int i = 0; i < 5; ++i) {
    auto c = q->make_consumer({.group = "g", .topics = {"t"}});
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    auto got = poll_n(**c, 1, 2s);
    deliveries += static_cast<int>(got.size());
    ASSERT_TRUE((*c)->close().is_ok());
    if (got.empty()) break;
  }
  EXPECT_EQ(deliveries, 3) << "delivered once and twice again, then dead-lettered";
  auto dlq = q->make_consumer({.group = "dlq-reader", .topics = {"t.dlq"}});
  ASSERT_TRUE(dlq.is_ok()) << dlq.status().to_string();
  auto dead = poll_n(**dlq, 1, 10s);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "poison0");
  EXPECT_EQ(dead[0].key, "poison0");

  // The group's queues are quorum queues with a limit: a classic declaration of it is refused.
  auto classic = open("prefix=quorum");
  ASSERT_NE(classic, nullptr);
  Status st = classic->admin().declare_group("g", topics);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.to_string();
  EXPECT_NE(st.message().find("queue_type"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace sluice::queue
