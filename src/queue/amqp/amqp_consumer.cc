// The amqp backend's Consumer. A member of group G consumes every partition's queue of G
// (P.T.N.G) on one channel, under one prefetch limit for the channel; the members of G compete for
// each queue's messages, as on any RabbitMQ work queue, so the work is shared but a partition has
// no single owner (Capabilities::exclusive_partitions is false). A kEarliest member also drains
// the topic's unrouted queue: what was sent while no group existed at all.
//
// Acknowledgements are per message (no offsets): ack() may come from any thread, so it only
// records the delivery tag; the polling thread sends the acks at its next poll, commit or close.
// Delivery tags belong to one channel: each (re)opened channel is a generation, carried in
// Message::cookie[0], and an ack of an older generation is dropped, because the broker has already
// put that message back in its queue for someone else.
//
// A broker that is away (restarting) is weather for poll: it logs, waits and reconnects, and
// consumes again from the same durable queues; what was delivered and not acknowledged comes again.
//
// An ephemeral consumer (no group; `sluice tail`, the ingest following doc_results) binds a queue
// of its own to every partition at make_consumer, so it sees what is sent from then on. The queue
// is durable, so it outlives a broker restart, and expires (x-expires) when nobody has used it for
// kReaderExpiry (its process died); a clean close deletes it. What it hands out is acknowledged at
// the next poll.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "base/log.h"
#include "queue/amqp/amqp_client.h"
#include "queue/header_codec.h"

namespace sluice::queue::amqp {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kSlice{50};  // longest wait inside a poll between sending acks
constexpr int64_t kReaderExpiry = 10 * 60 * 1000;

std::string random_hex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// What one Message's views point at.
struct Held {
  Delivery d;
  std::string topic;
  std::vector<Header> headers;
};

// One basic.consume: a queue and what its deliveries are.
struct Sub {
  std::string queue;
  std::string topic;
  int32_t partition = -1;  // -1: the unrouted queue (the routing key says the partition)
};

class AmqpConsumer : public Consumer {
 public:
  AmqpConsumer(const AmqpSettings& s, ConsumerOptions opts) : s_(s), n_{s.prefix}, opts_(std::move(opts)) {}

  Status init() {
    if (opts_.topics.empty()) return Status::invalid_argument("a consumer needs at least one topic");
    if (!opts_.ephemeral) SLUICE_RETURN_IF_ERROR(validate_group_name(opts_.group));
    if (opts_.ephemeral && opts_.start_from == StartFrom::kEarliest) {
      return Status::unsupported(
          "an amqp consumer without a group cannot start from the earliest message: RabbitMQ keeps no "
          "history outside a group's queues; read with a group (--group) or from the latest message");
    }
    std::sort(opts_.topics.begin(), opts_.topics.end());
    opts_.topics.erase(std::unique(opts_.topics.begin(), opts_.topics.end()), opts_.topics.end());
    SLUICE_ASSIGN_OR_RETURN(conn_, Conn::connect(s_));
    for (const auto& t : opts_.topics) {
      SLUICE_RETURN_IF_ERROR(validate_topic_name(t));
      SLUICE_ASSIGN_OR_RETURN(int32_t n, topic_partitions(*conn_, n_, t));
      topic_of_exchange_[n_.exchange(t)] = t;
      for (int32_t p = 0; p < n; ++p) {
        assignment_.push_back(TopicPartition{t, PartitionId(p)});
        if (!opts_.ephemeral) subs_.push_back(Sub{n_.group_queue(t, PartitionId(p), opts_.group), t, p});
      }
      if (!opts_.ephemeral && opts_.start_from == StartFrom::kEarliest)
        subs_.push_back(Sub{n_.unrouted(t), t, -1});
    }
    if (opts_.ephemeral) {
      subs_.push_back(Sub{n_.reader(random_hex()), {}, -1});
      SLUICE_RETURN_IF_ERROR(declare_reader());
    } else {
      SLUICE_RETURN_IF_ERROR(declare_group_queues(*conn_, n_, opts_.group, opts_.topics));
    }
    // Consuming starts now, so an ephemeral consumer misses nothing sent after this returns.
    return start_consuming();
  }

  ~AmqpConsumer() override { (void)close(); }

  Status poll(std::vector<Message>& out, size_t max, Millis timeout) override {
    if (closed_) return Status::closed("poll on a closed amqp consumer of group '" + opts_.group + "'");
    const auto deadline = Clock::now() + timeout;
    const size_t first = out.size();
    while (out.size() - first < max) {
      Status st = ensure_consuming();
      if (st.is_ok()) st = send_acks();
      if (st.is_ok()) {
        const bool have = out.size() > first;
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        auto d = conn_->next(have ? Millis(0) : std::clamp(left, Millis(0), kSlice));
        if (!d.is_ok()) {
          st = d.status();
        } else if (d->has_value()) {
          st = take(std::move(**d), out);
          if (st.is_ok()) continue;
        } else if (have) {
          break;  // nothing more buffered: hand over what came
        }
      }
      if (!st.is_ok()) {
        if (st.error_class() != ErrorClass::kRetriable) return out.size() > first ? Status::ok() : st;
        if (Clock::now() - last_outage_log_ > std::chrono::seconds(5)) {
          last_outage_log_ = Clock::now();
          log::warn("amqp consumer: broker away, retrying",
                    {{"group", opts_.group}, {"error", st.to_string()}});
        }
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        std::this_thread::sleep_for(std::clamp(left, Millis(1), kSlice));
      }
      if (Clock::now() >= deadline) break;
    }
    (void)send_acks();
    return {};
  }

  Status ack(const Message& msg) override {
    if (opts_.ephemeral) return {};  // acknowledged when handed out
    std::lock_guard lock(ack_mu_);
    if (msg.cookie[0] != generation_.load()) return {};  // its channel is gone: already requeued
    acks_.push_back(msg.cookie[1]);
    return {};
  }

  Status commit() override {
    if (closed_) return {};
    return sync_acks();
  }

  Status close() override {
    if (closed_) return {};
    closed_ = true;
    if (conn_ == nullptr) return {};  // init() failed before connecting
    Status st = sync_acks();
    // Cancelling waits until each queue has taken its consumer off, which a quorum queue does
    // through its Raft log, after the acks sent before: closing straight away can make it return
    // messages acked just before (rabbitmq-server issue #10327).
    for (size_t i = 0; i < subs_.size() && st.is_ok() && conn_->generation() == generation_.load(); ++i)
      st = conn_->cancel("s" + std::to_string(i));
    if (opts_.ephemeral && st.is_ok()) st = conn_->delete_queue(subs_[0].queue);
    conn_->close();  // what is still unacked goes back to its queue
    return st;
  }

  std::vector<TopicPartition> assignment() const override { return assignment_; }

 private:
  Status sync_acks() {
    SLUICE_RETURN_IF_ERROR(send_acks());
    // Acks have no reply; a synchronous call after them returns once the broker processed them.
    return set_qos();
  }

  // `prefetch` bounds what this consumer holds over all its queues: one channel-wide limit on
  // classic queues; quorum queues refuse that, so there each queue's consumer gets its share.
  Status set_qos() {
    if (s_.queue_type != "quorum") return conn_->qos(static_cast<uint16_t>(s_.prefetch), /*global=*/true);
    const size_t n = std::max<size_t>(subs_.size(), 1);
    return conn_->qos(static_cast<uint16_t>(std::max<size_t>(1, (s_.prefetch + n - 1) / n)),
                      /*global=*/false);
  }

  Status ensure_consuming() {
    if (!conn_->broken() && conn_->generation() == generation_.load()) return {};
    SLUICE_RETURN_IF_ERROR(conn_->ensure_open());
    Status st = start_consuming();
    if (st.code() == Code::kNotFound) {
      // The broker lost the queues (a restart without durable storage, or the reader's expired
      // while the broker was away): declare them again.
      SLUICE_RETURN_IF_ERROR(opts_.ephemeral ? declare_reader()
                                             : declare_group_queues(*conn_, n_, opts_.group, opts_.topics));
      st = start_consuming();
    }
    if (st.is_ok())
      log::info("amqp consumer: consuming",
                {{"group", opts_.group}, {"queues", std::to_string(subs_.size())}});
    return st;
  }

  // On a fresh channel: the prefetch limit and one basic.consume per queue.
  Status start_consuming() {
    SLUICE_RETURN_IF_ERROR(conn_->ensure_open());
    SLUICE_RETURN_IF_ERROR(set_qos());
    const uint64_t gen = conn_->generation();
    for (size_t i = 0; i < subs_.size(); ++i)
      SLUICE_RETURN_IF_ERROR(conn_->consume(subs_[i].queue, "s" + std::to_string(i)));
    if (conn_->generation() != gen)
      return Status::unavailable(s_.where() + ": channel lost while subscribing");
    {
      std::lock_guard lock(ack_mu_);
      generation_.store(gen);
      acks_.clear();
    }
    return {};
  }

  // The ephemeral consumer's queue, bound to every partition of its topics.
  Status declare_reader() {
    const std::string& q = subs_[0].queue;
    SLUICE_RETURN_IF_ERROR(conn_->declare_queue(q, false, {{"x-expires", kReaderExpiry}}).status());
    for (const TopicPartition& tp : assignment_)
      SLUICE_RETURN_IF_ERROR(conn_->bind(q, n_.exchange(tp.topic), std::to_string(tp.partition.value())));
    return {};
  }

  Status send_acks() {
    std::vector<uint64_t> tags;
    {
      std::lock_guard lock(ack_mu_);
      if (acks_.empty()) return {};
      tags.swap(acks_);
    }
    for (uint64_t t : tags) SLUICE_RETURN_IF_ERROR(conn_->ack(t, false));
    return {};
  }

  Status take(Delivery d, std::vector<Message>& out) {
    auto h = std::make_shared<Held>();
    h->d = std::move(d);
    const Delivery& dv = h->d;
    int32_t partition = -1;
    size_t idx = 0;
    if (dv.consumer_tag.size() > 1)
      idx = static_cast<size_t>(std::strtoull(dv.consumer_tag.c_str() + 1, nullptr, 10));
    if (idx < subs_.size()) {
      partition = subs_[idx].partition;
      h->topic = subs_[idx].topic;
    }
    if (h->topic.empty()) {
      // The ephemeral reader's queue, bound to every topic: the exchange names the topic.
      if (auto it = topic_of_exchange_.find(dv.exchange); it != topic_of_exchange_.end())
        h->topic = it->second;
    }
    if (partition < 0) partition = static_cast<int32_t>(std::strtol(dv.routing_key.c_str(), nullptr, 10));
    if (!decode_headers(dv.headers_blob, h->headers)) {
      // Not ours to judge further: give it back to nobody (dead-letter when a DLX is set), loudly.
      log::error("amqp consumer: a message with malformed sluice headers was rejected",
                 {{"queue", idx < subs_.size() ? subs_[idx].queue : std::string()}});
      return conn_->reject(dv.tag, /*requeue=*/false);
    }
    Message m;
    m.topic = h->topic;
    m.partition = PartitionId(partition);
    m.offset = Offset(-1);
    m.timestamp_ms = dv.timestamp_ms;
    if (dv.key) m.key = std::string_view(*dv.key);
    m.value = dv.body;
    m.headers = h->headers;
    m.cookie[0] = generation_.load();
    m.cookie[1] = dv.tag;
    if (opts_.ephemeral) {
      std::lock_guard lock(ack_mu_);
      acks_.push_back(dv.tag);
    }
    m.backing = std::move(h);
    out.push_back(std::move(m));
    return {};
  }

  const AmqpSettings s_;
  const Names n_;
  ConsumerOptions opts_;
  std::unique_ptr<Conn> conn_;  // the polling thread's
  std::vector<Sub> subs_;
  std::vector<TopicPartition> assignment_;
  std::map<std::string, std::string> topic_of_exchange_;
  bool closed_ = false;
  Clock::time_point last_outage_log_{};

  std::mutex ack_mu_;  // acks_ (acks come from any thread)
  std::vector<uint64_t> acks_;
  std::atomic<uint64_t> generation_{0};  // the channel the subscriptions are on
};

}  // namespace

Result<std::unique_ptr<Consumer>> make_amqp_consumer(const AmqpSettings& s, ConsumerOptions opts) {
  auto c = std::make_unique<AmqpConsumer>(s, std::move(opts));
  SLUICE_RETURN_IF_ERROR(c->init());
  return std::unique_ptr<Consumer>(std::move(c));
}

}  // namespace sluice::queue::amqp
