#include "queue/redis/redis_client.h"

#include <cstring>

#include "base/log.h"

namespace sluice::queue::redis {
namespace {

const config::Property kRedisProperties[] = {
    {"prefix", config::Kind::kString, "sluice",
     "Start of every key sluice uses on the server (several deployments can share one Redis)"},
    {"session_timeout_ms",
     config::Kind::kMillis,
     "10000",
     "How long a member's partitions stay its own without a heartbeat; a dead worker's partitions "
     "(and its pending messages, by XAUTOCLAIM) move to another member after this",
     {},
     1000,
     3'600'000},
    {"max_poll_interval_ms",
     config::Kind::kMillis,
     "300000",
     "A member that does not poll for this long stops renewing its partitions (a stuck worker gives "
     "them up)",
     {},
     1000,
     86'400'000},
    {"connect_timeout_ms", config::Kind::kMillis, "5000", "Connect and command timeout", {}, 100, 600'000},
    {"maxlen",
     config::Kind::kInt,
     "0",
     "Keep about this many entries per partition (XTRIM MINID), never trimming what a group has "
     "not acknowledged; 0 keeps everything",
     {},
     0},
    {"max_message_bytes",
     config::Kind::kSize,
     "8MiB",
     "Largest message (key + value + headers); larger sends fail with `too_large`",
     {},
     1024,
     512ll << 20},
    {"pipeline", config::Kind::kInt, "256", "XADD commands a producer keeps in flight", {}, 1, 65536},
    {"max_partitions", config::Kind::kInt, "1024", "Most partitions a topic may have", {}, 1, 65536},
};

// The heartbeat: renews the caller (when given), prunes members whose lease ran out (server time,
// so the members' clocks do not matter), returns the live members with their topics.
constexpr const char* kLiveMembersScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(dead) do redis.call('HDEL', KEYS[2], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('HGETALL', KEYS[2])
)lua";

}  // namespace

std::string RedisSettings::where() const {
  return "redis " + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

std::span<const config::Property> redis_properties() {
  return kRedisProperties;
}

Result<RedisSettings> parse_redis_uri(std::string_view uri,
                                      const std::function<const char*(const char*)>& getenv) {
  RedisSettings s;
  if (uri.starts_with("rediss://")) {
    return Status::unsupported(
        "rediss:// (Redis over TLS) is not available: Debian 12's hiredis 0.14 is built without TLS; "
        "reach the server over a TLS tunnel (stunnel, spiped) and use redis://");
  }
  SLUICE_ASSIGN_OR_RETURN(config::ServerUri u, config::split_server_uri(uri, "redis", "redis queue"));
  if (u.user && !u.password) {
    s.password = *u.user;  // redis://secret@host, as redis-cli -u reads it
  } else if (u.user) {
    s.user = *u.user;
    s.password = *u.password;
  }
  if (!u.host.empty()) s.host = std::string(u.host);
  if (u.port) s.port = *u.port;
  const std::string_view path = u.path.value_or(std::string_view());
  const std::string_view query = u.query;
  if (!path.empty()) {
    int db = 0;
    for (char c : path) {
      if (c < '0' || c > '9' || db > 100000) {
        return Status::invalid_argument("redis queue URI '" + std::string(uri) + "': database '" +
                                        std::string(path) + "' is not a number");
      }
      db = db * 10 + (c - '0');
    }
    s.db = db;
  }
  if (s.password.empty()) {
    for (const char* name : {"SLUICE_REDIS_PASSWORD", "REDIS_PASSWORD"}) {
      const char* v = getenv(name);
      if (v != nullptr && *v != '\0') {
        s.password = v;
        break;
      }
    }
  }
  const auto table = redis_properties();
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::parse_query(query, table, "redis queue"));
  SLUICE_ASSIGN_OR_RETURN(s.prefix, config::get_string(v, table, "prefix"));
  if (s.prefix.empty()) return Status::invalid_argument("redis queue URI: prefix is empty");
  SLUICE_ASSIGN_OR_RETURN(s.session_timeout_ms, config::get_int(v, table, "session_timeout_ms"));
  SLUICE_ASSIGN_OR_RETURN(s.max_poll_interval_ms, config::get_int(v, table, "max_poll_interval_ms"));
  SLUICE_ASSIGN_OR_RETURN(s.connect_timeout_ms, config::get_int(v, table, "connect_timeout_ms"));
  SLUICE_ASSIGN_OR_RETURN(s.maxlen, config::get_int(v, table, "maxlen"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_msg, config::get_int(v, table, "max_message_bytes"));
  s.max_message_bytes = static_cast<uint64_t>(max_msg);
  SLUICE_ASSIGN_OR_RETURN(int64_t pipeline, config::get_int(v, table, "pipeline"));
  s.pipeline = static_cast<int>(pipeline);
  SLUICE_ASSIGN_OR_RETURN(int64_t max_parts, config::get_int(v, table, "max_partitions"));
  s.max_partitions = static_cast<int32_t>(max_parts);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Conn

Result<std::unique_ptr<Conn>> Conn::connect(const RedisSettings& s) {
  std::unique_ptr<Conn> c(new Conn(s));
  c->timeout_ = std::chrono::milliseconds(s.connect_timeout_ms);
  SLUICE_RETURN_IF_ERROR(c->open());
  return c;
}

Conn::~Conn() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

Status Conn::open() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  timeval tv{static_cast<time_t>(s_.connect_timeout_ms / 1000),
             static_cast<suseconds_t>((s_.connect_timeout_ms % 1000) * 1000)};
  ctx_ = redisConnectWithTimeout(s_.host.c_str(), s_.port, tv);
  if (ctx_ == nullptr) return Status::resource_limit("cannot allocate a redis connection");
  if (ctx_->err != 0) {
    Status st = Status::unavailable("cannot reach " + s_.where() + ": " + ctx_->errstr +
                                    " (is redis-server running there?)");
    redisFree(ctx_);
    ctx_ = nullptr;
    return st;
  }
  set_timeout(timeout_);
  if (!s_.password.empty()) {
    Args auth = {"AUTH"};
    if (!s_.user.empty()) auth.push_back(s_.user);
    auth.push_back(s_.password);
    SLUICE_ASSIGN_OR_RETURN(Reply r, run(auth));
  }
  if (s_.db != 0) {
    std::string db = std::to_string(s_.db);
    SLUICE_ASSIGN_OR_RETURN(Reply r, run({"SELECT", db}));
  } else {
    // A server that wants a password says so now (NOAUTH), not at the first real command.
    SLUICE_ASSIGN_OR_RETURN(Reply r, run({"PING"}));
  }
  return {};
}

Status Conn::ensure_open() {
  if (ctx_ != nullptr && ctx_->err == 0) return {};
  return open();
}

Status Conn::io_status(std::string_view what) {
  std::string msg = s_.where() + ": " + std::string(what) + ": " +
                    (ctx_ != nullptr && ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost");
  // The context is unusable now; the next command reconnects.
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  return Status::unavailable(std::move(msg));
}

void Conn::set_timeout(std::chrono::milliseconds t) {
  timeout_ = t;
  if (ctx_ == nullptr) return;
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  redisSetTimeout(ctx_, tv);
}

Status Conn::append(const Args& args) {
  SLUICE_RETURN_IF_ERROR(ensure_open());
  std::vector<const char*> argv(args.size());
  std::vector<size_t> lens(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()) != REDIS_OK)
    return io_status("queueing a command");
  return {};
}

Result<Reply> Conn::read() {
  if (ctx_ == nullptr) return Status::unavailable(s_.where() + ": connection lost before a reply");
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return io_status("waiting for a reply");
  return Reply(static_cast<redisReply*>(raw));
}

Result<Reply> Conn::run(const Args& args) {
  SLUICE_RETURN_IF_ERROR(append(args));
  SLUICE_ASSIGN_OR_RETURN(Reply r, read());
  if (r->type == REDIS_REPLY_ERROR) return reply_status(r.get(), args.empty() ? "" : args[0], s_.where());
  return r;
}

Status reply_status(const redisReply* r, std::string_view what, std::string_view where) {
  std::string_view e = str(r);
  std::string msg = std::string(where) + ": " + std::string(what) + " answered: " + std::string(e);
  auto is = [&](std::string_view code) { return e.starts_with(code); };
  if (is("NOAUTH") || is("WRONGPASS") || is("NOPERM") || is("ERR invalid password") || is("ERR AUTH") ||
      is("ERR Client sent AUTH"))
    return Status::invalid_argument(msg +
                                    " (check the user and password in the URI or SLUICE_REDIS_PASSWORD)");
  if (is("NOGROUP")) return Status::not_found(msg);
  if (is("BUSYGROUP")) return Status::already_exists(msg);
  if (is("OOM")) return Status::resource_limit(msg + " (the server reached maxmemory)");
  if (is("LOADING") || is("BUSY") || is("TRYAGAIN") || is("READONLY") || is("MASTERDOWN") ||
      is("CLUSTERDOWN"))
    return Status::unavailable(msg);
  if (is("ERR unknown command") || is("ERR syntax error"))
    return Status::unsupported(msg + " (sluice needs Redis 7.0 or later)");
  if (is("ERR DB index")) return Status::invalid_argument(msg + " (the database number in the URI)");
  return Status::internal(msg);
}

std::string_view str(const redisReply* r) {
  if (r == nullptr) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    return std::string_view(r->str, r->len);
  return {};
}

std::optional<int64_t> integer(const redisReply* r) {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  std::string_view s = str(r);
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  bool neg = s.front() == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return neg ? -v : v;
}

const redisReply* field(const redisReply* r, std::string_view name) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return nullptr;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (str(r->element[i]) == name) return r->element[i + 1];
  return nullptr;
}

std::string entry_id(int64_t offset) {
  return "0-" + std::to_string(offset + 1);
}

std::optional<int64_t> seq_of(std::string_view id) {
  if (!id.starts_with("0-")) return std::nullopt;
  id.remove_prefix(2);
  if (id.empty()) return std::nullopt;
  int64_t v = 0;
  for (char c : id) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<int64_t> offset_of(std::string_view id) {
  auto s = seq_of(id);
  if (!s || *s == 0) return std::nullopt;
  return *s - 1;
}

Result<std::vector<Member>> live_members(Conn& c, const Keys& k, std::string_view group,
                                         const std::string* renew_member, std::string_view renew_topics,
                                         int64_t ttl_ms) {
  const std::string members = k.members(group), subs = k.subs(group), ttl = std::to_string(ttl_ms);
  std::string_view me = renew_member != nullptr ? std::string_view(*renew_member) : std::string_view();
  SLUICE_ASSIGN_OR_RETURN(Reply r,
                          c.run({"EVAL", kLiveMembersScript, "2", members, subs, me, ttl, renew_topics}));
  std::vector<Member> out;
  if (r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    Member m;
    m.name = std::string(str(r->element[i]));
    std::string_view t = str(r->element[i + 1]);
    while (!t.empty()) {
      auto comma = t.find(',');
      m.topics.emplace_back(t.substr(0, comma));
      if (comma == std::string_view::npos) break;
      t.remove_prefix(comma + 1);
    }
    out.push_back(std::move(m));
  }
  return out;
}

Result<int32_t> topic_partitions(Conn& c, const Keys& k, std::string_view topic) {
  SLUICE_ASSIGN_OR_RETURN(Reply r, c.run({"HGET", k.topics(), topic}));
  auto n = integer(r.get());
  if (!n) {
    return Status::not_found("topic '" + std::string(topic) + "' does not exist on " + c.settings().where() +
                             " (prefix '" + k.prefix + "'); create it with `sluice topics create`");
  }
  return static_cast<int32_t>(*n);
}

Result<StreamEnds> stream_ends(Conn& c, const std::string& stream) {
  auto r = c.run({"XINFO", "STREAM", stream});
  if (!r.is_ok()) {
    // "ERR no such key": nothing was written to the partition yet.
    if (r.status().message().find("no such key") != std::string::npos) return StreamEnds{};
    return r.status();
  }
  StreamEnds e;
  e.end = seq_of(str(field(r->get(), "last-generated-id"))).value_or(0);
  auto length = integer(field(r->get(), "length")).value_or(0);
  const redisReply* first = field(r->get(), "first-entry");
  if (length > 0 && first != nullptr && first->type == REDIS_REPLY_ARRAY && first->elements > 0) {
    e.start = offset_of(str(first->element[0])).value_or(e.end);
  } else {
    e.start = e.end;
  }
  return e;
}

Result<std::vector<std::pair<std::string, int64_t>>> group_positions(Conn& c, const std::string& stream) {
  std::vector<std::pair<std::string, int64_t>> out;
  auto groups = c.run({"XINFO", "GROUPS", stream});
  if (!groups.is_ok()) {
    if (groups.status().message().find("no such key") != std::string::npos) return out;
    return groups.status();
  }
  for (size_t i = 0; i < (*groups)->elements; ++i) {
    const redisReply* g = (*groups)->element[i];
    std::string name(str(field(g, "name")));
    int64_t pos = seq_of(str(field(g, "last-delivered-id"))).value_or(0);
    if (integer(field(g, "pending")).value_or(0) > 0) {
      SLUICE_ASSIGN_OR_RETURN(Reply first, c.run({"XPENDING", stream, name, "-", "+", "1"}));
      if (first->elements > 0 && first->element[0]->elements > 0)
        if (auto o = offset_of(str(first->element[0]->element[0]))) pos = std::min(pos, *o);
    }
    out.emplace_back(std::move(name), pos);
  }
  return out;
}

}  // namespace sluice::queue::redis
