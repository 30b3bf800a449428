#include "queue/amqp/amqp_queue.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "queue/amqp/amqp_client.h"
#include "queue/header_codec.h"
#include "queue/partitioner.h"
#include "queue/send_queue.h"

namespace sluice::queue::amqp {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const Status& status_of(const Status& s) {
  return s;
}
template <class T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

// Runs op, and once more when it found the connection lost: an idle connection the broker closed
// after missed heartbeats, or a broker that restarted since. The second try reconnects.
template <class F>
auto with_reconnect(Conn& c, F&& op) -> decltype(op()) {
  auto r = op();
  if (status_of(r).error_class() == ErrorClass::kRetriable && c.broken()) return op();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Producer: send() validates and queues a copy; one sender thread publishes on a channel in confirm
// mode, keeping up to `confirm_window` publishes unconfirmed, and reports each message when the
// broker confirms it (or nacks it). After a lost connection the sender reconnects and publishes
// again what was not confirmed, until send_timeout: a message the broker had stored before the
// connection broke is then stored twice (at least once).
class AmqpProducer : public Producer {
 public:
  AmqpProducer(const AmqpSettings& s, ProducerOptions opts)
      : s_(s),
        n_{s.prefix},
        opts_(std::move(opts)),
        // Its own connection: a passive declare of a missing topic closes the channel it ran on,
        // which must not be the publishing one.
        counts_([s] { return Conn::connect(s); },
                [n = n_](Conn& c, std::string_view topic) {
                  return with_reconnect(c, [&] { return topic_partitions(c, n, topic); });
                }),
        sq_(opts_, "amqp producer", s.where()) {}

  Status start() {
    SLUICE_ASSIGN_OR_RETURN(conn_, Conn::connect(s_));
    SLUICE_RETURN_IF_ERROR(conn_->confirm_select());
    generation_ = conn_->generation();
    sender_ = std::thread([this] { send_loop(); });
    return {};
  }

  ~AmqpProducer() override {
    (void)flush(opts_.send_timeout);
    sq_.stop();
    if (sender_.joinable()) sender_.join();
  }

  Result<uint64_t> send(const OutMessage& msg, void* opaque) override {
    SLUICE_ASSIGN_OR_RETURN(int32_t parts, counts_.get(msg.topic));
    SLUICE_ASSIGN_OR_RETURN(size_t bytes, checked_message_size(msg, s_.max_message_bytes, s_.where()));
    SLUICE_ASSIGN_OR_RETURN(PartitionId p, choose_partition(msg, parts, round_robin_));
    Item it;
    it.opaque = opaque;
    it.topic = std::string(msg.topic);
    it.exchange = n_.exchange(msg.topic);
    it.partition = p;
    if (msg.key) it.key = std::string(*msg.key);
    it.value = std::string(msg.value);
    it.ts = msg.timestamp_ms != 0 ? msg.timestamp_ms : now_ms();
    encode_headers(msg.headers, it.headers);
    it.bytes = bytes + 64;
    return sq_.push(std::move(it));
  }

  Status flush(Millis timeout) override { return sq_.flush(timeout); }
  uint64_t outstanding() const override { return sq_.outstanding(); }

 private:
  struct Item {
    uint64_t ticket = 0;
    void* opaque = nullptr;
    std::string topic, exchange, value, headers;
    std::optional<std::string> key;
    PartitionId partition{0};
    int64_t ts = 0;
    size_t bytes = 0;
    Clock::time_point queued_at;
  };

  // The sender thread. Publishes while the window has room, then reads confirms; owns conn_,
  // pending_ (taken from queue_) and inflight_.
  void send_loop() {
    int backoff_ms = 50;
    for (;;) {
      // Idle: wait for work, or now and then answer the broker's heartbeats (next() below).
      const bool idle = inflight_.empty() && pending_.empty();
      const size_t room =
          static_cast<size_t>(s_.confirm_window) -
          std::min(static_cast<size_t>(s_.confirm_window), pending_.size() + inflight_.size());
      if (!sq_.take(pending_, room, idle ? std::optional<Millis>(std::chrono::seconds(5)) : std::nullopt) &&
          idle)
        return;  // stopping, nothing left
      Status st = publish_pending();
      if (st.is_ok()) {
        auto r = conn_->next(inflight_.empty() ? Millis(0) : Millis(20),
                             [this](uint64_t tag, bool multiple, bool ok) { on_confirm(tag, multiple, ok); });
        st = r.status();
        // (A producer's channel consumes nothing; a delivery here would be a broker bug: ignored.)
      }
      if (st.is_ok()) {
        backoff_ms = 50;
        continue;
      }
      recover(st);
      std::this_thread::sleep_for(Millis(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 1000);
      if (conn_->ensure_open().is_ok() && conn_->confirm_select().is_ok()) {
        generation_ = conn_->generation();
        next_seq_ = 1;
      }
    }
  }

  Status publish_pending() {
    if (conn_->broken() || conn_->generation() != generation_)
      return Status::unavailable(s_.where() + ": connection lost");
    while (!pending_.empty() && inflight_.size() < static_cast<size_t>(s_.confirm_window)) {
      Item& it = pending_.front();
      std::optional<std::string_view> key;
      if (it.key) key = *it.key;
      SLUICE_RETURN_IF_ERROR(conn_->publish(it.exchange, std::to_string(it.partition.value()), it.value, key,
                                            it.headers, it.ts));
      inflight_.emplace(next_seq_++, std::move(it));
      pending_.pop_front();
    }
    return {};
  }

  // The broker's basic.ack / basic.nack for publish sequence numbers (up to tag when multiple).
  void on_confirm(uint64_t tag, bool multiple, bool ok) {
    std::vector<std::pair<Item, Status>> done;
    auto end = multiple ? inflight_.upper_bound(tag) : inflight_.find(tag);
    auto begin = multiple ? inflight_.begin() : end;
    if (!multiple) {
      if (end == inflight_.end()) return;
      ++end;
    }
    for (auto it = begin; it != end; ++it) {
      Status st =
          ok ? Status::ok()
             : Status::unavailable(s_.where() + " refused to store a message for topic '" + it->second.topic +
                                   "' (basic.nack: the broker could not write it)");
      done.emplace_back(std::move(it->second), std::move(st));
    }
    inflight_.erase(begin, end);
    report(done);
  }

  // The connection broke: what was not confirmed is published again once the broker is back,
  // unless it has waited longer than send_timeout.
  void recover(const Status& why) {
    std::vector<std::pair<Item, Status>> failed;
    std::deque<Item> again;
    for (auto& [seq, it] : inflight_) again.push_back(std::move(it));
    inflight_.clear();
    for (auto& it : pending_) again.push_back(std::move(it));
    pending_.clear();
    std::sort(again.begin(), again.end(), [](const Item& a, const Item& b) { return a.ticket < b.ticket; });
    for (auto& it : again) {
      if (Clock::now() - it.queued_at > opts_.send_timeout) {
        failed.emplace_back(std::move(it),
                            Status::unavailable("amqp producer: " + why.message() + "; gave up after " +
                                                std::to_string(opts_.send_timeout.count()) + " ms"));
      } else {
        pending_.push_back(std::move(it));
      }
    }
    if (!pending_.empty() && Clock::now() - last_warn_ > std::chrono::seconds(5)) {
      last_warn_ = Clock::now();
      log::warn("amqp producer: connection lost, publishing again", {{"error", why.to_string()}});
    }
    report(failed);
  }

  void report(std::vector<std::pair<Item, Status>>& done) {
    if (done.empty()) return;
    size_t bytes = 0;
    Status error;
    for (auto& [it, st] : done) {
      DeliveryReport rep;
      rep.ticket = it.ticket;
      rep.opaque = it.opaque;
      rep.status = st;
      rep.topic = it.topic;
      rep.partition = it.partition;
      rep.offset = Offset(-1);  // RabbitMQ has no offsets
      bytes += it.bytes;
      if (!st.is_ok() && error.is_ok()) error = st;
      if (opts_.on_delivery) opts_.on_delivery(rep);
    }
    sq_.reported(done.size(), bytes, error);
  }

  const AmqpSettings s_;
  const Names n_;
  const ProducerOptions opts_;
  TopicCounts<Conn> counts_;
  std::atomic<uint32_t> round_robin_{0};

  // The sender thread's.
  std::unique_ptr<Conn> conn_;
  uint64_t generation_ = 0;
  uint64_t next_seq_ = 1;  // the channel's publish sequence number (confirms name these)
  std::deque<Item> pending_;
  std::map<uint64_t, Item> inflight_;
  Clock::time_point last_warn_{};

  SendQueue<Item> sq_;
  std::thread sender_;
};

// ---------------------------------------------------------------------------------------------
// Admin: topics and groups from the registry, depths from passive declares.

constexpr const char* kNoReplay =
    "RabbitMQ deletes a message once a group acknowledged it, so the amqp backend cannot move a group back "
    "(replay from an offset, a timestamp or the beginning); dead letters are kept on the topic's .dlq and "
    "`sluice dlq` can send them again";

class AmqpAdmin : public Admin {
 public:
  explicit AmqpAdmin(const AmqpSettings& s) : s_(s), n_{s.prefix} {}

  Status connect() {
    SLUICE_ASSIGN_OR_RETURN(conn_, Conn::connect(s_));
    return {};
  }

  Status create_topic(std::string_view name, const TopicConfig& cfg) override {
    SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
    if (cfg.partitions < 1)
      return Status::invalid_argument("topic '" + std::string(name) +
                                      "': partitions must be at least 1, not " +
                                      std::to_string(cfg.partitions));
    if (cfg.partitions > s_.max_partitions) {
      return Status::invalid_argument("topic '" + std::string(name) + "': " + std::to_string(cfg.partitions) +
                                      " partitions is more than max_partitions (" +
                                      std::to_string(s_.max_partitions) + ")");
    }
    std::lock_guard lock(mu_);
    return with_reconnect(
        *conn_, [&] { return create_topic_objects(*conn_, n_, std::string(name), cfg.partitions); });
  }

  Result<std::vector<TopicInfo>> list_topics() override {
    std::lock_guard lock(mu_);
    return with_reconnect(*conn_, [&] { return list_topics_locked(); });
  }

  Result<TopicInfo> describe_topic(std::string_view name) override {
    SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
    std::lock_guard lock(mu_);
    TopicInfo t;
    t.name = std::string(name);
    SLUICE_ASSIGN_OR_RETURN(t.partitions,
                            with_reconnect(*conn_, [&] { return topic_partitions(*conn_, n_, name); }));
    // No offsets on RabbitMQ (Capabilities::offsets is false): start and end are unknown.
    for (int32_t p = 0; p < t.partitions; ++p)
      t.partition_info.push_back(PartitionInfo{PartitionId(p), Offset(-1), Offset(-1)});
    return t;
  }

  Result<std::vector<std::string>> list_groups() override {
    std::lock_guard lock(mu_);
    SLUICE_ASSIGN_OR_RETURN(Registry reg, with_reconnect(*conn_, [&] { return read_registry(*conn_, n_); }));
    std::vector<std::string> out;
    for (auto& [g, topics] : reg.groups) out.push_back(g);
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<GroupInfo> describe_group(std::string_view group) override {
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    std::lock_guard lock(mu_);
    return with_reconnect(*conn_, [&] { return describe_group_locked(group); });
  }

  Result<std::vector<PartitionOffset>> reset_offsets(std::string_view group, std::string_view topic,
                                                     const ResetSpec& spec,
                                                     std::optional<PartitionId> partition) override {
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    SLUICE_RETURN_IF_ERROR(validate_topic_name(topic));
    if (spec.kind != ResetSpec::Kind::kLatest) return Status::unsupported(kNoReplay);
    std::lock_guard lock(mu_);
    return with_reconnect(*conn_, [&] { return reset_to_latest_locked(group, topic, partition); });
  }

  Status declare_group(std::string_view group, std::span<const std::string> topics) override {
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    for (const auto& t : topics) SLUICE_RETURN_IF_ERROR(validate_topic_name(t));
    std::lock_guard lock(mu_);
    const std::vector<std::string> names(topics.begin(), topics.end());
    return with_reconnect(*conn_, [&] { return declare_group_queues(*conn_, n_, group, names); });
  }

 private:
  // The bodies of the public calls, under mu_ (with_reconnect may run them twice).
  Result<std::vector<TopicInfo>> list_topics_locked() {
    SLUICE_ASSIGN_OR_RETURN(Registry reg, read_registry(*conn_, n_));
    std::vector<TopicInfo> out;
    for (const std::string& t : reg.topics) {
      auto parts = topic_partitions(*conn_, n_, t);
      if (!parts.is_ok()) {
        if (parts.status().code() == Code::kNotFound) continue;  // deleted behind sluice's back
        return parts.status();
      }
      out.push_back(TopicInfo{t, *parts, {}});
    }
    std::sort(out.begin(), out.end(), [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
    return out;
  }

  Result<GroupInfo> describe_group_locked(std::string_view group) {
    SLUICE_ASSIGN_OR_RETURN(auto topics, group_topics(group));
    GroupInfo info;
    info.group = std::string(group);
    uint32_t most_consumers = 0;
    std::sort(topics.begin(), topics.end());
    for (const std::string& topic : topics) {
      auto parts = topic_partitions(*conn_, n_, topic);
      if (!parts.is_ok()) continue;  // a topic deleted behind sluice's back
      for (int32_t p = 0; p < *parts; ++p) {
        auto counts = conn_->declare_queue(n_.group_queue(topic, PartitionId(p), group), /*passive=*/true);
        if (!counts.is_ok()) {
          if (counts.status().code() == Code::kNotFound) continue;
          return counts.status();
        }
        GroupPartition gp;
        gp.topic = topic;
        gp.partition = PartitionId(p);
        gp.lag = counts->messages;  // ready to deliver (what consumers hold unacked is not counted)
        if (counts->consumers > 0) gp.member = std::to_string(counts->consumers) + " consumer(s)";
        most_consumers = std::max(most_consumers, counts->consumers);
        info.partitions.push_back(std::move(gp));
      }
    }
    // AMQP names no consumers to others; what a queue tells is how many it has.
    for (uint32_t i = 0; i < most_consumers; ++i) info.members.push_back("consumer-" + std::to_string(i + 1));
    info.state = most_consumers > 0 ? "active" : "empty";
    return info;
  }

  Result<std::vector<PartitionOffset>> reset_to_latest_locked(std::string_view group, std::string_view topic,
                                                              std::optional<PartitionId> partition) {
    SLUICE_ASSIGN_OR_RETURN(auto topics, group_topics(group));
    if (std::find(topics.begin(), topics.end(), topic) == topics.end())
      return Status::not_found("group '" + std::string(group) + "' does not read topic '" +
                               std::string(topic) + "'");
    SLUICE_ASSIGN_OR_RETURN(int32_t parts, topic_partitions(*conn_, n_, topic));
    if (partition) SLUICE_RETURN_IF_ERROR(check_partition_range(topic, *partition, parts));
    std::vector<std::string> queues;
    for (int32_t p = 0; p < parts; ++p) {
      if (partition && partition->value() != p) continue;
      const std::string q = n_.group_queue(topic, PartitionId(p), group);
      SLUICE_ASSIGN_OR_RETURN(QueueCounts c, conn_->declare_queue(q, /*passive=*/true));
      if (c.consumers > 0) {
        return Status::busy("group '" + std::string(group) + "' has " + std::to_string(c.consumers) +
                            " active consumer(s) on partition " + std::to_string(p) + " of '" +
                            std::string(topic) + "'; stop them before moving it to the latest position");
      }
      queues.push_back(q);
    }
    // Skipping to the end of a work queue is dropping what waits in it.
    std::vector<PartitionOffset> out;
    for (int32_t p = 0, i = 0; p < parts; ++p) {
      if (partition && partition->value() != p) continue;
      SLUICE_RETURN_IF_ERROR(conn_->purge(queues[static_cast<size_t>(i++)]).status());
      out.push_back(PartitionOffset{PartitionId(p), Offset(0)});
    }
    return out;
  }

  Result<std::vector<std::string>> group_topics(std::string_view group) {
    SLUICE_ASSIGN_OR_RETURN(Registry reg, read_registry(*conn_, n_));
    for (auto& [g, topics] : reg.groups)
      if (g == group) return topics;
    return Status::not_found("group '" + std::string(group) + "' does not exist on " + s_.where());
  }

  const AmqpSettings s_;
  const Names n_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
};

class AmqpQueue : public Queue {
 public:
  AmqpQueue(AmqpSettings s, std::unique_ptr<AmqpAdmin> admin) : s_(std::move(s)), admin_(std::move(admin)) {}
  std::string_view backend() const override { return "amqp"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.persistent = true;
    c.partitions = true;
    c.multi_process_producers = true;
    c.max_message_bytes = s_.max_message_bytes;
    return c;
  }
  Result<std::unique_ptr<Producer>> make_producer(ProducerOptions opts) override {
    auto p = std::make_unique<AmqpProducer>(s_, std::move(opts));
    SLUICE_RETURN_IF_ERROR(p->start());
    return std::unique_ptr<Producer>(std::move(p));
  }
  Result<std::unique_ptr<Consumer>> make_consumer(ConsumerOptions opts) override {
    return make_amqp_consumer(s_, std::move(opts));
  }
  Admin& admin() override { return *admin_; }

 private:
  const AmqpSettings s_;
  std::unique_ptr<AmqpAdmin> admin_;
};

}  // namespace

Result<std::unique_ptr<Queue>> open_amqp_queue(std::string_view uri) {
  SLUICE_ASSIGN_OR_RETURN(AmqpSettings s, parse_amqp_uri(uri, [](const char* n) { return std::getenv(n); }));
  auto admin = std::make_unique<AmqpAdmin>(s);
  SLUICE_RETURN_IF_ERROR(admin->connect());
  return std::unique_ptr<Queue>(std::make_unique<AmqpQueue>(std::move(s), std::move(admin)));
}

}  // namespace sluice::queue::amqp
