// The redis backend's plumbing: its settings (what `redis://[user:password@]host[:port][/db]?...`
// says), one synchronous hiredis connection with reconnection, and the key layout every client of
// one queue shares. Error replies and socket errors become Status in one place (redis_status).
//
// Key layout, under a prefix (default "sluice", `?prefix=`), so several deployments share a server:
//   P:topics                      hash   topic -> partition count
//   P:s:TOPIC:N                   stream partition N of TOPIC; entry ids are 0-(offset+1)
//   P:groups                      set    every group that ever consumed or was reset
//   P:g:GROUP:topics              set    the topics GROUP consumes
//   P:g:GROUP:members             zset   live member -> lease expiry (server time, ms)
//   P:g:GROUP:subs                hash   live member -> its topics, comma-separated
//   P:g:GROUP:own:TOPIC:N         string the member owning partition N of TOPIC (expires)
// Entry ids `0-*` let Redis number the entries of a stream 1, 2, 3, ... itself (XADD with an
// explicit zero milliseconds part, Redis >= 7.0), so offsets are dense and need no script.
//
// Ownership: a Conn owns its hiredis context. Thread-safety: a Conn is used by one thread at a
// time; settings and key helpers are values.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "config/property.h"
#include "queue/header_codec.h"
#include "queue/queue.h"
#include "queue/redis/redis_queue.h"

namespace sluice::queue::redis {

struct RedisSettings {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string user;      // empty: AUTH with the password only (the default user)
  std::string password;  // empty: no AUTH
  std::string prefix = "sluice";
  int64_t session_timeout_ms = 10000;  // a member's lease; a dead member's partitions move after it
  int64_t max_poll_interval_ms = 300000;
  int64_t connect_timeout_ms = 5000;
  int64_t maxlen = 0;  // 0: never trim; else keep about this many entries per partition
  uint64_t max_message_bytes = 8u << 20;
  int pipeline = 256;  // XADDs a producer keeps in flight
  int32_t max_partitions = 1024;

  std::string where() const;  // "redis 127.0.0.1:6379/0", for messages
};

// Parses a redis:// URI; SLUICE_REDIS_PASSWORD (or REDIS_PASSWORD) gives the password when the
// URI has none, so it need not appear in process lists. rediss:// is refused: Debian 12's hiredis
// (0.14) is built without TLS.
[[nodiscard]] Result<RedisSettings> parse_redis_uri(std::string_view uri,
                                                    const std::function<const char*(const char*)>& getenv);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Arguments of one command; the views must live until the command was sent.
using Args = std::vector<std::string_view>;

// One connection. A command that fails on the socket marks the connection broken; the next
// command reconnects (and authenticates and selects the database again) first.
class Conn {
 public:
  static Result<std::unique_ptr<Conn>> connect(const RedisSettings& s);
  ~Conn();

  // Runs one command and waits for its reply; an error reply is returned as a Status.
  [[nodiscard]] Result<Reply> run(const Args& args);
  // Pipelining: queue commands, then read their replies in order. read() returns error replies as
  // replies (type REDIS_REPLY_ERROR), so the caller can tell which command failed.
  [[nodiscard]] Status append(const Args& args);
  [[nodiscard]] Result<Reply> read();
  // Changes the socket timeout (a blocking read must not time out before its BLOCK does).
  void set_timeout(std::chrono::milliseconds t);
  const RedisSettings& settings() const { return s_; }

 private:
  explicit Conn(RedisSettings s) : s_(std::move(s)) {}
  Status open();
  Status ensure_open();
  Status io_status(std::string_view what);

  RedisSettings s_;
  redisContext* ctx_ = nullptr;
  std::chrono::milliseconds timeout_{0};
};

// The Status of an error reply (its first word is Redis's error code), what says what was asked.
[[nodiscard]] Status reply_status(const redisReply* r, std::string_view what, std::string_view where);

// Reply helpers. str() of a non-string reply is empty.
std::string_view str(const redisReply* r);
std::optional<int64_t> integer(const redisReply* r);  // an integer reply, or a string holding one
// The value of name in a flat [name, value, name, value, ...] array reply (XINFO, HGETALL).
const redisReply* field(const redisReply* r, std::string_view name);

// Offsets and stream entry ids: offset o is entry 0-(o+1).
std::string entry_id(int64_t offset);
// The offset of an id; nullopt for an id not written by sluice (a milliseconds part).
std::optional<int64_t> offset_of(std::string_view id);
// The sequence number of an id "0-N" (N), 0 for "0-0"; nullopt when not of that form.
std::optional<int64_t> seq_of(std::string_view id);

// Key names (see the top of this file).
struct Keys {
  std::string prefix;
  std::string topics() const { return prefix + ":topics"; }
  std::string stream(std::string_view topic, PartitionId p) const {
    return prefix + ":s:" + std::string(topic) + ":" + std::to_string(p.value());
  }
  std::string groups() const { return prefix + ":groups"; }
  std::string group_topics(std::string_view g) const { return prefix + ":g:" + std::string(g) + ":topics"; }
  std::string members(std::string_view g) const { return prefix + ":g:" + std::string(g) + ":members"; }
  std::string subs(std::string_view g) const { return prefix + ":g:" + std::string(g) + ":subs"; }
  std::string lease(std::string_view g, std::string_view topic, PartitionId p) const {
    return prefix + ":g:" + std::string(g) + ":own:" + std::string(topic) + ":" + std::to_string(p.value());
  }
};

// The live members of a group and their topics, by server time; pruning the dead ones. Run by every
// member's heartbeat (which also renews itself when `renew` is set) and by the admin.
struct Member {
  std::string name;
  std::vector<std::string> topics;
};
[[nodiscard]] Result<std::vector<Member>> live_members(Conn& c, const Keys& k, std::string_view group,
                                                       const std::string* renew_member = nullptr,
                                                       std::string_view renew_topics = {},
                                                       int64_t ttl_ms = 0);

// The partition count of a topic (NotFound when it was never created).
[[nodiscard]] Result<int32_t> topic_partitions(Conn& c, const Keys& k, std::string_view topic);

// Where a partition's stream starts and ends: the first offset still stored and the next offset to
// be written (both 0 for a stream that does not exist yet).
struct StreamEnds {
  int64_t start = 0;
  int64_t end = 0;
};
[[nodiscard]] Result<StreamEnds> stream_ends(Conn& c, const std::string& stream);

// Where each group that read the stream would resume: its first pending entry, or one past the
// last entry delivered to it (consumers XACK only their acked prefix, so this is the committed
// offset). Empty for a stream that does not exist.
[[nodiscard]] Result<std::vector<std::pair<std::string, int64_t>>> group_positions(Conn& c,
                                                                                   const std::string& stream);

// A consumer of the group (or an ephemeral one) on the settings' server (redis_consumer.cc).
[[nodiscard]] Result<std::unique_ptr<Consumer>> make_redis_consumer(const RedisSettings& s,
                                                                    ConsumerOptions opts);

}  // namespace sluice::queue::redis
