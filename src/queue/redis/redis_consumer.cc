// The redis backend's Consumer. In a group, each partition (stream) is owned by one member at a
// time, so per-key order holds as on Kafka:
//   - every member renews itself in the group's member set (a zset scored by lease expiry, server
//     time) from a heartbeat thread, and renews the leases of the partitions it owns;
//   - on the polling thread, about every 100 ms, a member reads the live members and computes the
//     same assignment every member computes (partition p of topic t goes to the subscribers of t,
//     sorted, at (p + hash(t)) mod their count); it gives up what is no longer its own (committing
//     what was acked first) and takes what is (a lease set only where none is held);
//   - a member that takes a partition over claims every pending entry of the stream (XAUTOCLAIM,
//     with idle time 0: the lease already says the previous owner is gone or gave it up) and reads
//     its own pending entries before new ones, so what was delivered and not acknowledged comes
//     again, in offset order.
// Acknowledgements follow the interface: the committed position is the end of the contiguous acked
// prefix; a commit XACKs the entries of that prefix (so the stream's pending list always starts at
// the group's resume point). Each ownership of a partition has a generation number, carried in
// Message::cookie[0], so an ack that arrives after the partition moved on is ignored.
// An ephemeral consumer has no group: it XREADs every partition from where it started.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "queue/offset_tracker.h"
#include "queue/redis/redis_client.h"

namespace sluice::queue::redis {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kRebalanceEvery{100};
constexpr Millis kBlockSlice{100};
constexpr size_t kAckChunk = 1000;

// Acquire or renew (ARGV[3] == "1": renew only) a lease held by nobody or by ARGV[1].
constexpr const char* kLeaseScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or (cur == false and ARGV[3] ~= '1') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
)lua";
constexpr const char* kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// What the Messages of one poll share: the replies their bytes live in, and their headers.
struct Batch {
  std::vector<Reply> replies;
  std::vector<Header> headers;
};

struct Part {
  std::string topic;
  PartitionId partition{0};
  std::string stream, lease;
  uint64_t generation = 0;
  OffsetTracker tracker;
  int64_t xacked = -1;         // entries before this offset were XACKed; -1: nothing handed out yet
  bool history = true;         // still reading this member's own pending entries
  std::string cursor = "0-0";  // history: the last pending id read; ephemeral: the last id read
};

class RedisConsumer : public Consumer {
 public:
  RedisConsumer(const RedisSettings& s, ConsumerOptions opts) : s_(s), k_{s.prefix}, opts_(std::move(opts)) {}

  Status init() {
    if (opts_.topics.empty()) return Status::invalid_argument("a consumer needs at least one topic");
    if (!opts_.ephemeral) SLUICE_RETURN_IF_ERROR(validate_group_name(opts_.group));
    if (opts_.member_name.empty()) opts_.member_name = default_member_name();
    me_ = opts_.member_name;
    SLUICE_ASSIGN_OR_RETURN(conn_, Conn::connect(s_));
    std::sort(opts_.topics.begin(), opts_.topics.end());
    opts_.topics.erase(std::unique(opts_.topics.begin(), opts_.topics.end()), opts_.topics.end());
    for (const auto& t : opts_.topics) {
      SLUICE_RETURN_IF_ERROR(validate_topic_name(t));
      SLUICE_ASSIGN_OR_RETURN(int32_t n, topic_partitions(*conn_, k_, t));
      counts_[t] = n;
      if (!topics_csv_.empty()) topics_csv_ += ",";
      topics_csv_ += t;
    }
    if (opts_.ephemeral) return init_ephemeral();
    SLUICE_RETURN_IF_ERROR(ensure_groups());
    SLUICE_RETURN_IF_ERROR(conn_->run({"SADD", k_.groups(), opts_.group}).status());
    for (const auto& t : opts_.topics)
      SLUICE_RETURN_IF_ERROR(conn_->run({"SADD", k_.group_topics(opts_.group), t}).status());
    SLUICE_RETURN_IF_ERROR(
        live_members(*conn_, k_, opts_.group, &me_, topics_csv_, s_.session_timeout_ms).status());
    SLUICE_ASSIGN_OR_RETURN(hb_conn_, Conn::connect(s_));
    last_poll_ = Clock::now();
    heartbeat_ = std::thread([this] { heartbeat_loop(); });
    return {};
  }

  ~RedisConsumer() override { (void)close(); }

  // A server that is away (restarting, unreachable) is weather, not an error of the poll: it is
  // logged, the poll waits and tries again until its timeout, and returns what it has (maybe
  // nothing). Errors that waiting cannot fix (a refused password, a corrupt entry) are returned.
  Status poll(std::vector<Message>& out, size_t max, Millis timeout) override {
    if (closed_) return Status::closed("poll on a closed consumer of group '" + opts_.group + "'");
    last_poll_ = Clock::now();
    const auto deadline = Clock::now() + timeout;
    const size_t first = out.size();
    while (out.size() - first < max) {
      Status st;
      if (!opts_.ephemeral && Clock::now() - last_rebalance_ >= kRebalanceEvery) {
        last_rebalance_ = Clock::now();
        st = rebalance();
      }
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
      if (st.is_ok()) st = read(out, max - (out.size() - first), std::clamp(left, Millis(0), kBlockSlice));
      if (!st.is_ok() && st.code() == Code::kNotFound && !opts_.ephemeral) {
        st = ensure_groups();  // NOGROUP: the server lost the group (restarted without persistence)
      }
      if (!st.is_ok()) {
        if (st.error_class() != ErrorClass::kRetriable) return out.size() > first ? Status::ok() : st;
        if (Clock::now() - last_outage_log_ > std::chrono::seconds(5)) {
          last_outage_log_ = Clock::now();
          log::warn("redis consumer: server away, retrying",
                    {{"group", opts_.group}, {"error", st.to_string()}});
        }
        std::this_thread::sleep_for(std::clamp(left, Millis(1), kBlockSlice));
      }
      if (out.size() > first || Clock::now() >= deadline) break;
    }
    (void)maybe_commit(false);
    return {};
  }

  Status ack(const Message& msg) override {
    if (opts_.ephemeral) return {};
    std::lock_guard lock(mu_);
    auto it = by_generation_.find(msg.cookie[0]);
    if (it == by_generation_.end()) return {};  // moved on since (or not this consumer's)
    it->second->tracker.ack(msg.offset.value());
    return {};
  }

  Status commit() override {
    if (closed_ || opts_.ephemeral) return {};
    return maybe_commit(true);
  }

  Status close() override {
    if (closed_) return {};
    closed_ = true;
    if (heartbeat_.joinable()) {
      {
        std::lock_guard lock(hb_mu_);
        hb_stop_ = true;
      }
      hb_cv_.notify_all();
      heartbeat_.join();
    }
    if (opts_.ephemeral) return {};
    Status st = maybe_commit(true);
    std::vector<std::string> leases;
    {
      std::lock_guard lock(mu_);
      for (auto& [stream, p] : parts_) leases.push_back(p->lease);
      parts_.clear();
      by_generation_.clear();
    }
    for (const auto& l : leases) {
      Status r = conn_->run({"EVAL", kReleaseScript, "1", l, me_}).status();
      if (st.is_ok()) st = r;
    }
    Status leave = conn_->run({"ZREM", k_.members(opts_.group), me_}).status();
    if (leave.is_ok()) leave = conn_->run({"HDEL", k_.subs(opts_.group), me_}).status();
    if (st.is_ok()) st = leave;
    if (!st.is_ok()) {
      // Nothing is lost: the leases expire after session_timeout_ms and the next owner claims what
      // this member had not acknowledged.
      log::warn(
          "redis consumer: leaving the group cleanly failed; its partitions move after the session timeout",
          {{"group", opts_.group}, {"error", st.to_string()}});
    }
    return st;
  }

  std::vector<TopicPartition> assignment() const override {
    std::lock_guard lock(mu_);
    std::vector<TopicPartition> out;
    for (const auto& [stream, p] : parts_) out.push_back(TopicPartition{p->topic, p->partition});
    std::sort(out.begin(), out.end(), [](const TopicPartition& a, const TopicPartition& b) {
      return a.topic != b.topic ? a.topic < b.topic : a.partition.value() < b.partition.value();
    });
    return out;
  }

 private:
  Status init_ephemeral() {
    std::lock_guard lock(mu_);
    for (const auto& [t, n] : counts_) {
      for (int32_t p = 0; p < n; ++p) {
        auto part = std::make_unique<Part>();
        part->topic = t;
        part->partition = PartitionId(p);
        part->stream = k_.stream(t, part->partition);
        part->history = false;
        if (opts_.start_from == StartFrom::kLatest) {
          SLUICE_ASSIGN_OR_RETURN(StreamEnds e, stream_ends(*conn_, part->stream));
          part->cursor = e.end == 0 ? "0-0" : "0-" + std::to_string(e.end);
        }
        parts_[part->stream] = std::move(part);
      }
    }
    return {};
  }

  // The group on every partition's stream, made where missing (at the start or at the end, as
  // start_from says; an existing group keeps its position).
  Status ensure_groups() {
    const char* start = opts_.start_from == StartFrom::kLatest ? "$" : "0-0";
    for (const auto& [t, n] : counts_) {
      for (int32_t p = 0; p < n; ++p) {
        Status st =
            conn_->run({"XGROUP", "CREATE", k_.stream(t, PartitionId(p)), opts_.group, start, "MKSTREAM"})
                .status();
        if (!st.is_ok() && st.code() != Code::kAlreadyExists) return st;
      }
    }
    return {};
  }

  // Renews membership and leases while the polling thread is alive enough (max_poll_interval_ms).
  void heartbeat_loop() {
    const Millis every(std::max<int64_t>(s_.session_timeout_ms / 3, 100));
    bool stalled = false;
    std::unique_lock lock(hb_mu_);
    while (!hb_cv_.wait_for(lock, every, [&] { return hb_stop_; })) {
      lock.unlock();
      if (Clock::now() - last_poll_.load() > Millis(s_.max_poll_interval_ms)) {
        if (!stalled) {
          log::warn(
              "redis consumer: no poll for max_poll_interval_ms; its partitions will move to other members",
              {{"group", opts_.group}, {"member", me_}});
        }
        stalled = true;
      } else {
        stalled = false;
        renew();
      }
      lock.lock();
    }
  }

  void renew() {
    Status st = live_members(*hb_conn_, k_, opts_.group, &me_, topics_csv_, s_.session_timeout_ms).status();
    std::vector<std::pair<std::string, uint64_t>> held;
    {
      std::lock_guard lock(mu_);
      for (const auto& [stream, p] : parts_) held.emplace_back(p->lease, p->generation);
    }
    const std::string ttl = std::to_string(s_.session_timeout_ms);
    for (const auto& [lease, gen] : held) {
      if (!st.is_ok()) break;
      auto r = hb_conn_->run({"EVAL", kLeaseScript, "1", lease, me_, ttl, "1"});
      if (!r.is_ok()) {
        st = r.status();
      } else if (integer(r->get()).value_or(0) == 0) {
        std::lock_guard lock(mu_);
        lost_.insert(gen);
      }
    }
    if (!st.is_ok())
      log::warn("redis consumer: heartbeat failed", {{"group", opts_.group}, {"error", st.to_string()}});
  }

  // Gives up and takes partitions so that this member owns what the shared assignment says.
  Status rebalance() {
    SLUICE_ASSIGN_OR_RETURN(auto members,
                            live_members(*conn_, k_, opts_.group, &me_, topics_csv_, s_.session_timeout_ms));
    std::set<std::string> wanted;  // streams
    std::map<std::string, std::pair<std::string, PartitionId>> where;
    for (const auto& [t, n] : counts_) {
      std::vector<std::string> subs;
      for (const auto& m : members)
        if (std::find(m.topics.begin(), m.topics.end(), t) != m.topics.end()) subs.push_back(m.name);
      std::sort(subs.begin(), subs.end());
      if (subs.empty()) continue;
      for (int32_t p = 0; p < n; ++p) {
        if (subs[(static_cast<uint32_t>(p) + fnv1a(t)) % subs.size()] != me_) continue;
        std::string stream = k_.stream(t, PartitionId(p));
        where[stream] = {t, PartitionId(p)};
        wanted.insert(std::move(stream));
      }
    }
    // Lost (a lease that ran out while this member stalled): dropped without a commit, the new owner
    // decides. Not wanted: committed, then released.
    std::vector<std::unique_ptr<Part>> give_up, lost;
    {
      std::lock_guard lock(mu_);
      for (auto it = parts_.begin(); it != parts_.end();) {
        const bool is_lost = lost_.count(it->second->generation) > 0;
        if (!is_lost && wanted.count(it->first) > 0) {
          ++it;
          continue;
        }
        by_generation_.erase(it->second->generation);
        (is_lost ? lost : give_up).push_back(std::move(it->second));
        it = parts_.erase(it);
      }
      lost_.clear();
    }
    for (auto& p : lost) drop_buffered(p->generation);
    for (auto& p : give_up) {
      drop_buffered(p->generation);
      Status st = xack_prefix(*p);
      if (!st.is_ok())
        log::warn("redis consumer: commit before giving a partition up failed",
                  {{"stream", p->stream}, {"error", st.to_string()}});
      SLUICE_RETURN_IF_ERROR(conn_->run({"EVAL", kReleaseScript, "1", p->lease, me_}).status());
    }
    const std::string ttl = std::to_string(s_.session_timeout_ms);
    for (const auto& stream : wanted) {
      {
        std::lock_guard lock(mu_);
        if (parts_.count(stream) > 0) continue;
      }
      auto part = std::make_unique<Part>();
      part->topic = where[stream].first;
      part->partition = where[stream].second;
      part->stream = stream;
      part->lease = k_.lease(opts_.group, part->topic, part->partition);
      SLUICE_ASSIGN_OR_RETURN(Reply got, conn_->run({"EVAL", kLeaseScript, "1", part->lease, me_, ttl, "0"}));
      if (integer(got.get()).value_or(0) == 0) continue;  // its owner has not let go yet
      SLUICE_RETURN_IF_ERROR(claim_pending(*part));
      part->generation = ++generations;
      std::lock_guard lock(mu_);
      by_generation_[part->generation] = part.get();
      parts_[stream] = std::move(part);
    }
    return {};
  }

  // Makes every pending entry of the stream this member's (they were delivered to an earlier owner
  // and never acknowledged), so the history read delivers them again.
  Status claim_pending(const Part& p) {
    std::string cursor = "0-0";
    do {
      SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"XAUTOCLAIM", p.stream, opts_.group, me_, "0", cursor,
                                                   "COUNT", "1000", "JUSTID"}));
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) break;
      cursor = std::string(str(r->element[0]));
    } while (cursor != "0-0");
    return {};
  }

  void drop_buffered(uint64_t generation) {
    buffered_.erase(std::remove_if(buffered_.begin(), buffered_.end(),
                                   [&](const Message& m) { return m.cookie[0] == generation; }),
                    buffered_.end());
  }

  // One read: buffered messages first, then pending history, then new entries (blocking up to wait).
  Status read(std::vector<Message>& out, size_t want, Millis wait) {
    while (want > 0 && !buffered_.empty()) {
      out.push_back(std::move(buffered_.front()));
      buffered_.pop_front();
      --want;
    }
    if (want == 0) return {};
    std::vector<Part*> history, live;
    {
      std::lock_guard lock(mu_);
      for (auto& [stream, p] : parts_) (p->history ? history : live).push_back(p.get());
    }
    auto batch = std::make_shared<Batch>();
    std::vector<Message> got;
    const std::string count = std::to_string(want);
    for (Part* p : history) {
      SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run({"XREADGROUP", "GROUP", opts_.group, me_, "COUNT", count,
                                                   "STREAMS", p->stream, p->cursor}));
      size_t before = got.size();
      SLUICE_RETURN_IF_ERROR(decode(r.get(), *batch, got));
      if (got.size() == before && !had_deleted_) p->history = false;
      batch->replies.push_back(std::move(r));
      if (!got.empty()) break;
    }
    if (got.empty() && !live.empty()) {
      Args a = {"XREADGROUP", "GROUP", opts_.group, me_, "COUNT", count};
      if (opts_.ephemeral) a = {"XREAD", "COUNT", count};
      const std::string block = std::to_string(std::max<int64_t>(wait.count(), 1));
      if (wait.count() > 0) {
        a.push_back("BLOCK");
        a.push_back(block);
      }
      a.push_back("STREAMS");
      for (Part* p : live) a.push_back(p->stream);
      for (Part* p : live) a.push_back(opts_.ephemeral ? std::string_view(p->cursor) : std::string_view(">"));
      SLUICE_ASSIGN_OR_RETURN(Reply r, conn_->run(a));
      SLUICE_RETURN_IF_ERROR(decode(r.get(), *batch, got));
      batch->replies.push_back(std::move(r));
    } else if (got.empty() && history.empty() && wait.count() > 0) {
      std::this_thread::sleep_for(wait);  // owns nothing (yet)
    }
    // The headers are laid out now that the vector no longer grows.
    for (Message& m : got) {
      const size_t start = m.cookie[1] >> 32, n = m.cookie[1] & 0xffffffffu;
      m.headers = std::span<const Header>(batch->headers.data() + start, n);
      m.cookie[1] = 0;
      m.backing = batch;
    }
    for (Message& m : got) {
      if (want > 0) {
        out.push_back(std::move(m));
        --want;
      } else {
        buffered_.push_back(std::move(m));  // XREADGROUP's COUNT is per stream
      }
    }
    return {};
  }

  // Turns an XREAD/XREADGROUP reply ([[stream, [[id, [field, value, ...]], ...]], ...]) into
  // messages whose views point into the reply.
  Status decode(const redisReply* r, Batch& batch, std::vector<Message>& out) {
    had_deleted_ = false;
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return {};  // nil: nothing arrived
    for (size_t s = 0; s < r->elements; ++s) {
      const redisReply* sr = r->element[s];
      if (sr->type != REDIS_REPLY_ARRAY || sr->elements < 2) continue;
      std::string_view stream = str(sr->element[0]);
      Part* p = nullptr;
      {
        std::lock_guard lock(mu_);
        auto it = parts_.find(std::string(stream));
        if (it != parts_.end()) p = it->second.get();
      }
      if (p == nullptr) continue;
      // The topic's bytes in the reply: "PREFIX:s:TOPIC:N".
      const std::string_view topic = stream.substr(k_.prefix.size() + 3, p->topic.size());
      const redisReply* entries = sr->element[1];
      std::vector<std::string> deleted;
      for (size_t e = 0; e < entries->elements; ++e) {
        const redisReply* entry = entries->element[e];
        if (entry->elements < 2) continue;
        std::string_view id = str(entry->element[0]);
        auto offset = offset_of(id);
        if (p->history || opts_.ephemeral) p->cursor = std::string(id);
        if (!offset) continue;  // not written by sluice
        const redisReply* fields = entry->element[1];
        if (fields->type != REDIS_REPLY_ARRAY) {  // pending, but trimmed from the stream since
          deleted.emplace_back(id);
          continue;
        }
        Message m;
        m.topic = topic;
        m.partition = p->partition;
        m.offset = Offset(*offset);
        const size_t hstart = batch.headers.size();
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
          std::string_view name = str(fields->element[f]), value = str(fields->element[f + 1]);
          if (name == "v") {
            m.value = value;
          } else if (name == "k") {
            m.key = value;
          } else if (name == "t") {
            m.timestamp_ms = integer(fields->element[f + 1]).value_or(0);
          } else if (name == "h" && !decode_headers(value, batch.headers)) {
            return Status::corruption("entry " + std::string(id) + " of " + std::string(stream) +
                                      " has malformed headers");
          }
        }
        m.cookie[0] = p->generation;
        m.cookie[1] = (static_cast<uint64_t>(hstart) << 32) | (batch.headers.size() - hstart);
        if (!opts_.ephemeral) {
          std::lock_guard lock(mu_);
          p->tracker.hand_out(*offset);
          if (p->xacked < 0) p->xacked = *offset;
        }
        out.push_back(std::move(m));
      }
      if (!deleted.empty()) {
        had_deleted_ = true;
        Args a = {"XACK", p->stream, opts_.group};
        for (const auto& d : deleted) a.push_back(d);
        SLUICE_RETURN_IF_ERROR(conn_->run(a).status());
      }
    }
    return {};
  }

  // XACKs the acked prefix of a partition.
  Status xack_prefix(Part& p) {
    int64_t from = 0, to = 0;
    {
      std::lock_guard lock(mu_);
      to = p.tracker.position();
      from = p.xacked;
      if (to < 0 || from < 0 || to <= from) return {};
    }
    for (int64_t o = from; o < to;) {
      std::vector<std::string> ids;
      for (; o < to && ids.size() < kAckChunk; ++o) ids.push_back(entry_id(o));
      Args a = {"XACK", p.stream, opts_.group};
      for (const auto& id : ids) a.push_back(id);
      SLUICE_RETURN_IF_ERROR(conn_->run(a).status());
    }
    std::lock_guard lock(mu_);
    p.xacked = std::max(p.xacked, to);
    return {};
  }

  Status maybe_commit(bool now) {
    if (opts_.ephemeral) return {};
    if (!now && Clock::now() - last_commit_ < opts_.commit_interval) return {};
    last_commit_ = Clock::now();
    std::vector<Part*> parts;
    {
      std::lock_guard lock(mu_);
      for (auto& [stream, p] : parts_) parts.push_back(p.get());
    }
    Status first;
    for (Part* p : parts) {
      Status st = xack_prefix(*p);
      if (!st.is_ok() && first.is_ok()) first = st;
    }
    if (s_.maxlen > 0 && first.is_ok() && Clock::now() - last_trim_ > std::chrono::seconds(1)) {
      last_trim_ = Clock::now();
      for (Part* p : parts) {
        Status st = trim(*p);
        if (!st.is_ok())
          log::warn("redis consumer: trim failed", {{"stream", p->stream}, {"error", st.to_string()}});
      }
    }
    return first;
  }

  // Keeps about maxlen entries, never removing what some group has not acknowledged yet.
  Status trim(const Part& p) {
    SLUICE_ASSIGN_OR_RETURN(StreamEnds e, stream_ends(*conn_, p.stream));
    SLUICE_ASSIGN_OR_RETURN(auto positions, group_positions(*conn_, p.stream));
    int64_t keep_from = e.end - s_.maxlen;
    for (const auto& [g, pos] : positions) keep_from = std::min(keep_from, pos);
    if (keep_from <= e.start) return {};
    return conn_->run({"XTRIM", p.stream, "MINID", "~", entry_id(keep_from)}).status();
  }

  const RedisSettings s_;
  const Keys k_;
  ConsumerOptions opts_;
  std::string me_, topics_csv_;
  std::map<std::string, int32_t> counts_;
  std::unique_ptr<Conn> conn_;     // the polling thread's
  std::unique_ptr<Conn> hb_conn_;  // the heartbeat thread's
  bool closed_ = false;
  bool had_deleted_ = false;
  Clock::time_point last_rebalance_{}, last_commit_{}, last_trim_{}, last_outage_log_{};
  std::atomic<Clock::time_point> last_poll_{Clock::now()};
  std::deque<Message> buffered_;

  mutable std::mutex mu_;  // parts_, by_generation_, lost_ and the trackers (acks come from any thread)
  std::map<std::string, std::unique_ptr<Part>> parts_;  // by stream key
  std::unordered_map<uint64_t, Part*> by_generation_;
  std::set<uint64_t> lost_;

  std::mutex hb_mu_;
  std::condition_variable hb_cv_;
  bool hb_stop_ = false;
  std::thread heartbeat_;

  static inline std::atomic<uint64_t> generations{0};
};

}  // namespace

Result<std::unique_ptr<Consumer>> make_redis_consumer(const RedisSettings& s, ConsumerOptions opts) {
  auto c = std::make_unique<RedisConsumer>(s, std::move(opts));
  SLUICE_RETURN_IF_ERROR(c->init());
  return std::unique_ptr<Consumer>(std::move(c));
}

}  // namespace sluice::queue::redis
