#include "queue/redis/redis_queue.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "queue/partitioner.h"
#include "queue/redis/redis_client.h"
#include "queue/send_queue.h"

namespace sluice::queue::redis {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------------
// Producer: send() validates and queues a copy; one sender thread pipelines the XADDs (up to
// `pipeline` in flight) and issues the delivery reports in send order. After a lost connection the
// sender reconnects and sends again what had no reply yet, until send_timeout: a message whose
// XADD reached the server before the connection broke is then stored twice (at least once).
class RedisProducer : public Producer {
 public:
  RedisProducer(const RedisSettings& s, ProducerOptions opts)
      : s_(s),
        k_{s.prefix},
        opts_(std::move(opts)),
        counts_([s] { return Conn::connect(s); },
                [k = k_](Conn& c, std::string_view topic) { return topic_partitions(c, k, topic); }),
        sq_(opts_, "redis producer", s.where()) {}

  Status start() {
    SLUICE_ASSIGN_OR_RETURN(conn_, Conn::connect(s_));
    sender_ = std::thread([this] { send_loop(); });
    return {};
  }

  ~RedisProducer() override {
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
    it.partition = p;
    it.stream = k_.stream(msg.topic, p);
    it.has_key = msg.key.has_value();
    if (msg.key) it.key = std::string(*msg.key);
    it.value = std::string(msg.value);
    it.ts = std::to_string(msg.timestamp_ms != 0 ? msg.timestamp_ms : now_ms());
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
    std::string topic, stream, key, value, ts, headers;
    PartitionId partition{0};
    bool has_key = false;
    size_t bytes = 0;
    std::chrono::steady_clock::time_point queued_at;
  };

  void send_loop() {
    std::vector<Item> batch;
    while (sq_.take(batch, static_cast<size_t>(s_.pipeline), std::chrono::seconds(1))) {
      if (batch.empty()) continue;
      send_batch(batch);
      batch.clear();
    }
  }

  // Sends every item of batch, retrying what had no reply after a lost connection, and reports each.
  void send_batch(std::vector<Item>& batch) {
    std::vector<DeliveryReport> reports(batch.size());
    size_t done = 0;
    int backoff_ms = 50;
    while (done < batch.size()) {
      Status st;
      size_t appended = done;
      for (; appended < batch.size() && st.is_ok(); ++appended) {
        const Item& it = batch[appended];
        Args a = {"XADD", it.stream, "0-*", "t", it.ts};
        if (it.has_key) {
          a.push_back("k");
          a.push_back(it.key);
        }
        if (!it.headers.empty()) {
          a.push_back("h");
          a.push_back(it.headers);
        }
        a.push_back("v");
        a.push_back(it.value);
        st = conn_->append(a);
      }
      while (st.is_ok() && done < appended) {
        auto r = conn_->read();
        if (!r.is_ok()) {
          st = r.status();
          break;
        }
        DeliveryReport& rep = reports[done];
        const Item& it = batch[done];
        rep.partition = it.partition;
        if ((*r)->type == REDIS_REPLY_ERROR) {
          rep.status = reply_status(r->get(), "XADD to " + it.stream, s_.where());
        } else {
          rep.offset = Offset(offset_of(str(r->get())).value_or(-1));
        }
        ++done;
      }
      if (st.is_ok()) break;
      // The connection broke: what had no reply is sent again once the server is back, unless it
      // has waited longer than send_timeout.
      while (done < batch.size() &&
             std::chrono::steady_clock::now() - batch[done].queued_at > opts_.send_timeout) {
        reports[done].partition = batch[done].partition;
        reports[done].status = Status::unavailable("redis producer: " + st.message() + "; gave up after " +
                                                   std::to_string(opts_.send_timeout.count()) + " ms");
        ++done;
      }
      if (done < batch.size()) {
        log::warn("redis producer: connection lost, sending again", {{"error", st.to_string()}});
        std::this_thread::sleep_for(Millis(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 1000);
      }
    }
    size_t bytes = 0;
    Status error;
    for (size_t i = 0; i < batch.size(); ++i) {
      DeliveryReport& rep = reports[i];
      rep.ticket = batch[i].ticket;
      rep.opaque = batch[i].opaque;
      rep.topic = batch[i].topic;
      bytes += batch[i].bytes;
      if (!rep.status.is_ok() && error.is_ok()) error = rep.status;
      if (opts_.on_delivery) opts_.on_delivery(rep);
    }
    sq_.reported(batch.size(), bytes, error);
  }

  const RedisSettings s_;
  const Keys k_;
  const ProducerOptions opts_;
  TopicCounts<Conn> counts_;
  std::unique_ptr<Conn> conn_;  // the sender thread's
  std::atomic<uint32_t> round_robin_{0};
  SendQueue<Item> sq_;
  std::thread sender_;
};

// ---------------------------------------------------------------------------------------------
// Admin

class RedisAdmin : public Admin {
 public:
  explicit RedisAdmin(const RedisSettings& s) : s_(s), k_{s.prefix} {}

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
    const std::string n = std::to_string(cfg.partitions);
    SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"HSETNX", k_.topics(), name, n}));
    if (integer(r.get()).value_or(0) == 1) return {};
    SLUICE_ASSIGN_OR_RETURN(int32_t have, topic_partitions(*conn_, k_, name));
    if (have == cfg.partitions) return {};
    return Status::already_exists("topic '" + std::string(name) + "' exists with " + std::to_string(have) +
                                  " partitions, not " + n);
  }

  Result<std::vector<TopicInfo>> list_topics() override {
    std::lock_guard lock(mu_);
    SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"HGETALL", k_.topics()}));
    std::vector<TopicInfo> out;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      TopicInfo t;
      t.name = std::string(str(r->element[i]));
      t.partitions = static_cast<int32_t>(integer(r->element[i + 1]).value_or(0));
      out.push_back(std::move(t));
    }
    std::sort(out.begin(), out.end(), [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
    return out;
  }

  Result<TopicInfo> describe_topic(std::string_view name) override {
    SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
    std::lock_guard lock(mu_);
    TopicInfo t;
    t.name = std::string(name);
    SLUICE_ASSIGN_OR_RETURN(t.partitions, topic_partitions(*conn_, k_, name));
    for (int32_t p = 0; p < t.partitions; ++p) {
      SLUICE_ASSIGN_OR_RETURN(StreamEnds e, stream_ends(*conn_, k_.stream(name, PartitionId(p))));
      t.partition_info.push_back(PartitionInfo{PartitionId(p), Offset(e.start), Offset(e.end)});
    }
    return t;
  }

  Result<std::vector<std::string>> list_groups() override {
    std::lock_guard lock(mu_);
    SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"SMEMBERS", k_.groups()}));
    std::vector<std::string> out;
    for (size_t i = 0; i < r->elements; ++i) out.emplace_back(str(r->element[i]));
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<GroupInfo> describe_group(std::string_view group) override {
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    std::lock_guard lock(mu_);
    SLUICE_ASSIGN_OR_RETURN(Reply known, conn_->run({"SISMEMBER", k_.groups(), group}));
    if (integer(known.get()).value_or(0) == 0)
      return Status::not_found("group '" + std::string(group) + "' does not exist on " + s_.where());
    GroupInfo info;
    info.group = std::string(group);
    SLUICE_ASSIGN_OR_RETURN(auto members, live_members(*conn_, k_, group));
    for (auto& m : members) info.members.push_back(m.name);
    std::sort(info.members.begin(), info.members.end());
    info.state = info.members.empty() ? "empty" : "active";
    SLUICE_ASSIGN_OR_RETURN(Reply topics, conn_->run({"SMEMBERS", k_.group_topics(group)}));
    std::vector<std::string> names;
    for (size_t i = 0; i < topics->elements; ++i) names.emplace_back(str(topics->element[i]));
    std::sort(names.begin(), names.end());
    for (const auto& topic : names) {
      auto n = topic_partitions(*conn_, k_, topic);
      if (!n.is_ok()) continue;  // a topic deleted behind sluice's back
      for (int32_t p = 0; p < *n; ++p) {
        const PartitionId pid(p);
        GroupPartition gp;
        gp.topic = topic;
        gp.partition = pid;
        const std::string stream = k_.stream(topic, pid);
        SLUICE_ASSIGN_OR_RETURN(StreamEnds e, stream_ends(*conn_, stream));
        gp.end = Offset(e.end);
        SLUICE_ASSIGN_OR_RETURN(gp.committed, committed_locked(stream, group));
        gp.lag = e.end - (gp.committed ? std::max(gp.committed->value(), e.start) : e.start);
        SLUICE_ASSIGN_OR_RETURN(Reply owner, conn_->run({"GET", k_.lease(group, topic, pid)}));
        gp.member = std::string(str(owner.get()));
        info.partitions.push_back(std::move(gp));
      }
    }
    return info;
  }

  Result<std::vector<PartitionOffset>> reset_offsets(std::string_view group, std::string_view topic,
                                                     const ResetSpec& spec,
                                                     std::optional<PartitionId> partition) override {
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    SLUICE_RETURN_IF_ERROR(validate_topic_name(topic));
    std::lock_guard lock(mu_);
    SLUICE_ASSIGN_OR_RETURN(int32_t parts, topic_partitions(*conn_, k_, topic));
    if (partition) SLUICE_RETURN_IF_ERROR(check_partition_range(topic, *partition, parts));
    SLUICE_ASSIGN_OR_RETURN(auto members, live_members(*conn_, k_, group));
    if (!members.empty()) {
      return Status::busy("group '" + std::string(group) + "' has " + std::to_string(members.size()) +
                          " active member(s) (" + members.front().name + (members.size() > 1 ? ", ..." : "") +
                          "); stop them before moving its offsets");
    }
    std::vector<PartitionOffset> out;
    for (int32_t p = 0; p < parts; ++p) {
      if (partition && partition->value() != p) continue;
      const PartitionId pid(p);
      const std::string stream = k_.stream(topic, pid);
      SLUICE_ASSIGN_OR_RETURN(StreamEnds e, stream_ends(*conn_, stream));
      int64_t target = 0;
      switch (spec.kind) {
        case ResetSpec::Kind::kEarliest: target = e.start; break;
        case ResetSpec::Kind::kLatest: target = e.end; break;
        case ResetSpec::Kind::kOffset: target = std::clamp(spec.value, e.start, e.end); break;
        case ResetSpec::Kind::kTimestamp: {
          SLUICE_ASSIGN_OR_RETURN(target, first_at_or_after(stream, spec.value, e));
          break;
        }
      }
      // The group's position on the stream and its pending list go together: a new group at the
      // target (nothing pending, nothing before it counted as delivered).
      const std::string id = target == 0 ? std::string("0-0") : "0-" + std::to_string(target);
      // (DESTROY fails on a stream nobody wrote to yet: there is no group to remove then.)
      (void)conn_->run({"XGROUP", "DESTROY", stream, group});
      SLUICE_RETURN_IF_ERROR(conn_->run({"XGROUP", "CREATE", stream, group, id, "MKSTREAM"}).status());
      out.push_back(PartitionOffset{pid, Offset(target)});
    }
    SLUICE_RETURN_IF_ERROR(conn_->run({"SADD", k_.groups(), group}).status());
    SLUICE_RETURN_IF_ERROR(conn_->run({"SADD", k_.group_topics(group), topic}).status());
    return out;
  }

 private:
  Result<std::optional<Offset>> committed_locked(const std::string& stream, std::string_view group) {
    SLUICE_ASSIGN_OR_RETURN(auto positions, group_positions(*conn_, stream));
    for (const auto& [g, pos] : positions)
      if (g == group) return std::optional<Offset>(Offset(pos));
    return std::optional<Offset>();  // the group never read this partition
  }

  // The first offset whose timestamp is at or after ts (e.end when none is): a scan, as the
  // entries' timestamps are fields, not the ids.
  Result<int64_t> first_at_or_after(const std::string& stream, int64_t ts, const StreamEnds& e) {
    std::string from = "0-0";
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"XRANGE", stream, "(" + from, "+", "COUNT", "1000"}));
      if (r->elements == 0) return e.end;
      for (size_t i = 0; i < r->elements; ++i) {
        const redisReply* entry = r->element[i];
        if (entry->elements < 2) continue;
        auto t = integer(field(entry->element[1], "t"));
        if (t && *t >= ts) return offset_of(str(entry->element[0])).value_or(e.end);
      }
      from = std::string(str(r->element[r->elements - 1]->element[0]));
    }
  }

  const RedisSettings s_;
  const Keys k_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
};

class RedisQueue : public Queue {
 public:
  RedisQueue(RedisSettings s, std::unique_ptr<RedisAdmin> admin)
      : s_(std::move(s)), admin_(std::move(admin)) {}
  std::string_view backend() const override { return "redis"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.persistent = true;
    c.per_key_order = true;
    c.partitions = true;
    c.replay = true;
    c.timestamp_reset = true;
    c.lag = true;
    c.multi_process_producers = true;
    c.offsets = c.exclusive_partitions = c.late_groups = true;
    c.max_message_bytes = s_.max_message_bytes;
    return c;
  }
  Result<std::unique_ptr<Producer>> make_producer(ProducerOptions opts) override {
    auto p = std::make_unique<RedisProducer>(s_, std::move(opts));
    SLUICE_RETURN_IF_ERROR(p->start());
    return std::unique_ptr<Producer>(std::move(p));
  }
  Result<std::unique_ptr<Consumer>> make_consumer(ConsumerOptions opts) override {
    return make_redis_consumer(s_, std::move(opts));
  }
  Admin& admin() override { return *admin_; }

 private:
  const RedisSettings s_;
  std::unique_ptr<RedisAdmin> admin_;
};

}  // namespace

Result<std::unique_ptr<Queue>> open_redis_queue(std::string_view uri) {
  SLUICE_ASSIGN_OR_RETURN(RedisSettings s,
                          parse_redis_uri(uri, [](const char* n) { return std::getenv(n); }));
  auto admin = std::make_unique<RedisAdmin>(s);
  SLUICE_RETURN_IF_ERROR(admin->connect());
  return std::unique_ptr<Queue>(std::make_unique<RedisQueue>(std::move(s), std::move(admin)));
}

}  // namespace sluice::queue::redis
