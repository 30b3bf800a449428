// The kafka backend's Consumer: one librdkafka consumer in the group (cooperative-sticky, no
// auto-commit, no auto offset store) and sluice's acknowledgement bookkeeping on top: per owned
// partition the offsets handed out and which of them were acked; the committed offset is the first
// offset handed out and not yet acked (or one past the last handed out). Each assignment of a
// partition gets a new generation number, carried in Message::cookie[0], so an ack that arrives
// after the partition was revoked (and perhaps assigned again) is recognised and ignored.
#include <unistd.h>

#include <cstring>
#include <deque>
#include <random>
#include <unordered_map>

#include "base/base64.h"
#include "base/log.h"
#include "queue/kafka/kafka_client.h"
#include "queue/kafka/kafka_errors.h"
#include "queue/offset_tracker.h"

namespace sluice::queue::kafka {
namespace {

// The librdkafka client, shared with every message it returned: a message must be destroyed
// before its client, and messages may outlive the Consumer.
struct Client {
  RkPtr rk;
  RkQueuePtr queue;  // the consumer queue (a reference of its own); released before rk
};

// What the Messages of one poll share as their backing: one allocation per poll, not per message
// (the consume path's largest cost when each message had its own). The librdkafka messages are
// destroyed when the last Message of the poll is gone.
struct Batch {
  std::shared_ptr<Client> client;  // declared first: released after the messages are destroyed
  std::vector<rd_kafka_message_t*> msgs;
  std::vector<Header> headers;            // every message's headers, one run per message
  std::deque<std::string> decoded_names;  // a deque: views into it stay valid as it grows
  ~Batch() {
    for (rd_kafka_message_t* m : msgs) rd_kafka_message_destroy(m);
  }
};

struct PartState {
  uint64_t generation = 0;
  OffsetTracker tracker;
  int64_t committed = -1;  // what was last sent in a commit
};

// How many messages one call takes from librdkafka's queue.
constexpr size_t kPollChunk = 256;

class KafkaConsumer : public Consumer {
 public:
  KafkaConsumer(std::shared_ptr<Cluster> cluster, ConsumerOptions opts)
      : cluster_(std::move(cluster)), opts_(std::move(opts)) {}

  Status init() {
    group_id_ = opts_.group;
    if (opts_.ephemeral) {
      // A group of its own that never commits: Kafka forgets an empty group without offsets, so
      // it is not listed for long and holds nothing back.
      std::random_device rd;
      group_id_ += ".ephemeral-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
    }
    if (opts_.member_name.empty()) opts_.member_name = default_member_name();
    const Cluster::Props defaults = {{"partition.assignment.strategy", "cooperative-sticky"}};
    // client.id shows the member in the group's description; group.instance.id is deliberately
    // not set (static membership delays failover by a whole session timeout).
    const Cluster::Props forced = {
        {"group.id", group_id_},
        {"client.id", opts_.member_name},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", opts_.start_from == StartFrom::kEarliest ? "earliest" : "latest"},
    };
    SLUICE_ASSIGN_OR_RETURN(ConfPtr conf, cluster_->make_conf(Scope::kConsumer, defaults, forced));
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaConsumer::on_rebalance);
    rd_kafka_conf_set_opaque(conf.get(), this);
    client_ = std::make_shared<Client>();
    SLUICE_ASSIGN_OR_RETURN(client_->rk, cluster_->make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    rd_kafka_poll_set_consumer(client_->rk.get());
    client_->queue.reset(rd_kafka_queue_get_consumer(client_->rk.get()));

    TplPtr subs(rd_kafka_topic_partition_list_new(static_cast<int>(opts_.topics.size())));
    for (const auto& t : opts_.topics)
      rd_kafka_topic_partition_list_add(subs.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_subscribe(client_->rk.get(), subs.get()),
                                        "subscribing group '" + opts_.group + "' on " + cluster_->where()));
    if (opts_.ephemeral && opts_.start_from == StartFrom::kLatest) {
      // "Latest" means the end as of now, not as of the assignment: joining a group takes seconds
      // (longer while a broker is away), and what is sent meanwhile must not be skipped. An
      // ephemeral group never has committed offsets, so its start can be pinned here.
      for (const auto& t : opts_.topics) {
        auto n = cluster_->partition_count(t, true);
        if (!n.is_ok()) continue;  // not there yet: all of it will be new
        for (int32_t p = 0; p < *n; ++p) {
          SLUICE_ASSIGN_OR_RETURN(auto wm, cluster_->watermarks(t, p));
          start_at_[TopicPartition{t, PartitionId(p)}] = wm.second;
        }
      }
    }
    if (!opts_.ephemeral) {
      member_id_ =
          GroupRegistry::instance().join(cluster_->bootstrap(), group_id_, opts_.member_name, opts_.topics);
    }
    last_commit_ = std::chrono::steady_clock::now();
    return {};
  }

  ~KafkaConsumer() override { (void)close(); }

  // Waits up to timeout for the first message, then takes what librdkafka has fetched already, in
  // batches (one lock of its queue per batch instead of per message).
  Status poll(std::vector<Message>& out, size_t max, Millis timeout) override {
    if (closed_) return Status::closed("poll on a closed consumer of group '" + opts_.group + "'");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const size_t first = out.size();
    std::shared_ptr<Batch> batch;
    rd_kafka_message_t* raw[kPollChunk];
    Status error;
    while (out.size() - first < max && error.is_ok()) {
      const size_t want = std::min(kPollChunk, max - (out.size() - first));
      ssize_t n = rd_kafka_consume_batch_queue(client_->queue.get(), 0, raw, want);
      if (n <= 0) {
        if (out.size() > first) break;
        const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        if (left <= Millis(0)) break;
        // Nothing there: wait for one (rd_kafka_consume_batch_queue would wait for a whole batch).
        raw[0] = rd_kafka_consumer_poll(client_->rk.get(), to_ms(left));
        n = raw[0] != nullptr ? 1 : 0;
        if (n == 0) continue;
      }
      if (batch == nullptr) {
        batch = std::make_shared<Batch>();
        batch->client = client_;
      }
      error = take(out, raw, static_cast<size_t>(n), *batch);
    }
    if (batch != nullptr) {
      // The headers are laid out now that the vector no longer moves.
      for (size_t i = first; i < out.size(); ++i) {
        Message& m = out[i];
        const size_t start = m.cookie[1] >> 32, count = m.cookie[1] & 0xffffffffu;
        m.headers = std::span<const Header>(batch->headers.data() + start, count);
        m.cookie[1] = 0;
        m.backing = batch;
      }
    }
    maybe_commit();
    return out.size() > first ? Status::ok() : error;
  }

  Status ack(const Message& msg) override {
    std::lock_guard lock(mu_);
    auto it = by_generation_.find(msg.cookie[0]);
    if (it == by_generation_.end()) return {};  // revoked since (or not this consumer's)
    it->second->tracker.ack(msg.offset.value());
    return {};
  }

  Status commit() override {
    if (closed_) return {};
    return commit_parts(nullptr, false);
  }

  Status close() override {
    if (closed_) return {};
    wait_for_first_assignment();
    Status st = commit_parts(nullptr, false);
    // A commit refused while the group rebalances (REBALANCE_IN_PROGRESS) lands once the rebalance
    // is through: up to 3 s of serving the group's callbacks (what is fetched meanwhile is dropped,
    // never handed out) before giving up on it.
    const auto retry_until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!st.is_ok() && st.error_class() == ErrorClass::kRetriable &&
           std::chrono::steady_clock::now() < retry_until) {
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_->rk.get(), 100)) rd_kafka_message_destroy(m);
      st = commit_parts(nullptr, false);
    }
    if (!st.is_ok() && st.error_class() == ErrorClass::kRetriable) {
      // The group is rebalancing (the other members are leaving too) or its coordinator moved:
      // the commit cannot land now. Nothing is lost: the partitions' next owner reads from the last
      // committed offset and sees the acked-but-uncommitted messages again (at least once).
      log::warn(
          "kafka: the last commit before leaving the group failed; its messages will be "
          "delivered again",
          {{"group", opts_.group}, {"error", st.to_string()}});
      st = Status::ok();
    }
    give_up_partitions();
    // Leaves the group (the partitions were revoked above, so no rebalance is left for it to run).
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(client_->rk.get());
    if (st.is_ok()) st = kafka_status(err, "leaving group '" + opts_.group + "' on " + cluster_->where());
    closed_ = true;
    if (member_id_ != 0) GroupRegistry::instance().leave(cluster_->bootstrap(), group_id_, member_id_);
    {
      std::lock_guard lock(mu_);
      parts_.clear();
      by_generation_.clear();
    }
    return st;
  }

  std::vector<TopicPartition> assignment() const override {
    std::lock_guard lock(mu_);
    std::vector<TopicPartition> out;
    for (const auto& [tp, st] : parts_) out.push_back(tp);
    return out;
  }

 private:
  // librdkafka 2.0.2 trips an assertion (rd_kafka_sticky_assignor_state_destroy) when a
  // cooperative-sticky consumer that never got its first assignment is destroyed, and the mock
  // cluster's group then waits for the member that vanished. So a consumer that is still joining
  // finishes the join before it leaves; what it fetches meanwhile is dropped (never handed out,
  // never committed: the next owner gets it).
  void wait_for_first_assignment() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!assigned_once_ && std::chrono::steady_clock::now() < deadline) {
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(client_->rk.get(), 50)) rd_kafka_message_destroy(m);
    }
  }

  // librdkafka 2.0.2 can hang in rd_kafka_consumer_close when a cooperative rebalance runs inside
  // it (librdkafka#4527, fixed in 2.4): the close turns the pending incremental assignment into an
  // unassign and then waits forever for an unassign call. So the consumer unsubscribes first and
  // serves its rebalances here (the revoke callback commits what was acked) until it owns nothing;
  // the close that follows has nothing left to revoke. Messages fetched meanwhile are dropped,
  // never handed out nor committed: the next owner gets them.
  void give_up_partitions() {
    rd_kafka_t* rk = client_->rk.get();
    if (rd_kafka_resp_err_t err = rd_kafka_unsubscribe(rk); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::warn("kafka unsubscribe before close failed",
                {{"group", opts_.group}, {"error", rd_kafka_err2name(err)}});
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (owns_partitions(rk)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        log::warn("kafka: partitions still assigned 10 s after unsubscribing; closing anyway",
                  {{"group", opts_.group}});
        return;
      }
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 20)) rd_kafka_message_destroy(m);
    }
  }

  static bool owns_partitions(rd_kafka_t* rk) {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    const bool any = parts->cnt > 0;
    rd_kafka_topic_partition_list_destroy(parts);
    return any;
  }

  // A consumer error: which end the poll (returned) and which are the cluster's passing weather
  // (logged; librdkafka retries them itself).
  Status message_error(const rd_kafka_message_t* m) {
    std::string topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
    switch (m->err) {
      case RD_KAFKA_RESP_ERR__PARTITION_EOF: return {};
      case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR__FATAL:
        return kafka_status(m->err, "group '" + opts_.group + "' consuming topic '" + topic + "' on " +
                                        cluster_->where() + ": " + rd_kafka_message_errstr(m));
      default:
        log::warn("kafka consumer error", {{"group", opts_.group},
                                           {"topic", topic},
                                           {"error", rd_kafka_err2name(m->err)},
                                           {"detail", rd_kafka_message_errstr(m)}});
        return {};
    }
  }

  // Turns n messages from librdkafka into Messages appended to out (batch takes ownership of
  // them): errors and messages of partitions no longer owned are dropped (the new owner gets
  // those). A message's header run is noted in cookie[1] (start << 32 | count) until poll lays
  // the headers out. Returns the error that ends the poll, if one came.
  Status take(std::vector<Message>& out, rd_kafka_message_t** raw, size_t n, Batch& batch) {
    Status error;
    std::lock_guard lock(mu_);
    rd_kafka_topic_t* last_rkt = nullptr;
    int32_t last_partition = -1;
    PartState* st = nullptr;
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = raw[i];
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (error.is_ok()) error = message_error(m);
        rd_kafka_message_destroy(m);
        continue;
      }
      if (m->rkt != last_rkt || m->partition != last_partition) {  // messages come in runs
        last_rkt = m->rkt;
        last_partition = m->partition;
        auto it = parts_.find(TpRef{rd_kafka_topic_name(m->rkt), PartitionId(m->partition)});
        st = it != parts_.end() ? &it->second : nullptr;
      }
      if (st == nullptr) {  // fetched before a revoke
        rd_kafka_message_destroy(m);
        continue;
      }
      st->tracker.hand_out(m->offset);
      batch.msgs.push_back(m);
      Message& msg = out.emplace_back();
      msg.topic = rd_kafka_topic_name(m->rkt);  // lives in the topic handle, as long as m
      msg.partition = PartitionId(m->partition);
      msg.offset = Offset(m->offset);
      rd_kafka_timestamp_type_t tstype;
      msg.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
      if (m->key != nullptr) msg.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) msg.value = std::string_view(static_cast<const char*>(m->payload), m->len);
      msg.cookie[0] = st->generation;
      msg.cookie[1] = (static_cast<uint64_t>(batch.headers.size()) << 32) | read_headers(m, batch);
    }
    return error;
  }

  // Appends m's headers to batch.headers (names decoded where they were encoded); their count.
  static uint32_t read_headers(rd_kafka_message_t* m, Batch& batch) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr) return 0;
    uint32_t count = 0;
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      std::string_view key(name);
      if (key.starts_with(kEncodedNamePrefix)) {
        if (auto decoded = base64_decode(key.substr(kEncodedNamePrefix.size()))) {
          batch.decoded_names.push_back(std::move(*decoded));
          key = batch.decoded_names.back();
        }
      }
      batch.headers.push_back(Header{key, std::string_view(static_cast<const char*>(value), size)});
      ++count;
    }
    return count;
  }

  void maybe_commit() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_commit_ < opts_.commit_interval) return;
    last_commit_ = now;
    Status st = commit_parts(nullptr, true);
    if (!st.is_ok())
      log::warn("kafka periodic commit failed", {{"group", opts_.group}, {"error", st.to_string()}});
  }

  // Commits the acked prefix of the owned partitions (only those in `only` when given).
  // async: fire and forget, and only what moved since the last commit.
  Status commit_parts(const rd_kafka_topic_partition_list_t* only, bool async) {
    if (opts_.ephemeral) return {};
    TplPtr list(rd_kafka_topic_partition_list_new(8));
    {
      std::lock_guard lock(mu_);
      for (auto& [tp, st] : parts_) {
        if (only != nullptr &&
            rd_kafka_topic_partition_list_find(only, tp.topic.c_str(), tp.partition.value()) == nullptr)
          continue;
        int64_t pos = st.tracker.position();
        if (pos < 0 || (async && pos <= st.committed)) continue;
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition.value())->offset = pos;
        st.committed = pos;
      }
    }
    if (list->cnt == 0) return {};
    rd_kafka_resp_err_t err = rd_kafka_commit(client_->rk.get(), list.get(), async ? 1 : 0);
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return {};
    return kafka_status(err, "committing offsets of group '" + opts_.group + "' on " + cluster_->where());
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    static_cast<KafkaConsumer*>(opaque)->rebalance(rk, err, parts);
  }

  void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    // The protocol is NULL once the consumer is leaving the group (a revoke inside
    // rd_kafka_consumer_close): the last one known then decides how to unassign.
    if (const char* protocol = rd_kafka_rebalance_protocol(rk))
      cooperative_ = std::strcmp(protocol, "COOPERATIVE") == 0;
    const bool cooperative = cooperative_;
    rd_kafka_error_t* error = nullptr;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      assigned_once_ = true;
      {
        std::lock_guard lock(mu_);
        if (!cooperative) {
          parts_.clear();
          by_generation_.clear();
        }
        for (int i = 0; i < parts->cnt; ++i) {
          PartState st;
          st.generation = ++generations;  // unique in the process: acks never match another consumer's
          TopicPartition tp{parts->elems[i].topic, PartitionId(parts->elems[i].partition)};
          if (opts_.ephemeral && opts_.start_from == StartFrom::kLatest) {
            auto it = start_at_.find(tp);
            parts->elems[i].offset = it != start_at_.end() ? it->second : RD_KAFKA_OFFSET_BEGINNING;
          }
          auto& slot = parts_[std::move(tp)];
          if (slot.generation != 0) by_generation_.erase(slot.generation);
          slot = std::move(st);
          by_generation_[slot.generation] = &slot;
        }
      }
      if (cooperative) {
        error = rd_kafka_incremental_assign(rk, parts);
      } else {
        rd_kafka_assign(rk, parts);
      }
    } else {
      // Revoked: commit what was acked first, unless the partitions are already lost (another
      // member may own them; its commits must not be overwritten).
      if (!rd_kafka_assignment_lost(rk)) {
        Status st = commit_parts(parts, false);
        if (!st.is_ok())
          log::warn("kafka commit on revoke failed", {{"group", opts_.group}, {"error", st.to_string()}});
      }
      {
        std::lock_guard lock(mu_);
        for (int i = 0; i < parts->cnt; ++i) {
          auto it = parts_.find(TpRef{parts->elems[i].topic, PartitionId(parts->elems[i].partition)});
          if (it == parts_.end()) continue;
          by_generation_.erase(it->second.generation);
          parts_.erase(it);
        }
      }
      if (cooperative) {
        error = rd_kafka_incremental_unassign(rk, parts);
      } else {
        rd_kafka_assign(rk, nullptr);
      }
    }
    if (error != nullptr) {
      log::warn("kafka rebalance failed", {{"group", opts_.group}, {"error", rd_kafka_error_string(error)}});
      rd_kafka_error_destroy(error);
    }
    if (member_id_ != 0)
      GroupRegistry::instance().set_assignment(cluster_->bootstrap(), group_id_, member_id_, assignment());
  }

  std::shared_ptr<Cluster> cluster_;
  ConsumerOptions opts_;
  std::string group_id_;  // opts_.group, or the unique name of an ephemeral group
  // Where an ephemeral group starting at the latest offset begins: each partition's end when the
  // consumer was made. Written by init(), read in the rebalance callback.
  std::map<TopicPartition, int64_t, TpLess> start_at_;
  std::shared_ptr<Client> client_;
  uint64_t member_id_ = 0;  // in GroupRegistry; 0 for ephemeral groups
  bool closed_ = false;
  bool assigned_once_ = false;  // the group answered our join at least once (maybe with nothing)
  bool cooperative_ = true;     // the group's rebalance protocol, as last seen in a rebalance
  std::chrono::steady_clock::time_point last_commit_;

  mutable std::mutex mu_;  // guards parts_ and by_generation_ (ack comes from any thread)
  std::map<TopicPartition, PartState, TpLess> parts_;  // nodes are stable: by_generation_ points in
  std::unordered_map<uint64_t, PartState*> by_generation_;
  static inline std::atomic<uint64_t> generations{0};
};

}  // namespace

Result<std::unique_ptr<Consumer>> make_kafka_consumer(std::shared_ptr<Cluster> cluster,
                                                      ConsumerOptions opts) {
  if (opts.group.empty()) return Status::invalid_argument("a consumer needs a group name");
  SLUICE_RETURN_IF_ERROR(validate_group_name(opts.group));
  if (opts.topics.empty()) return Status::invalid_argument("a consumer needs at least one topic");
  for (const auto& t : opts.topics) SLUICE_RETURN_IF_ERROR(cluster->partition_count(t, true).status());
  auto c = std::make_unique<KafkaConsumer>(std::move(cluster), std::move(opts));
  SLUICE_RETURN_IF_ERROR(c->init());
  return std::unique_ptr<Consumer>(std::move(c));
}

}  // namespace sluice::queue::kafka
