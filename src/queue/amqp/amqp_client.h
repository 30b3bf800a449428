// The amqp backend's plumbing: its settings (what `amqp://[user:password@]host[:port][/vhost]?...`
// says), one librabbitmq connection with one channel and reconnection, the names every client of
// one queue shares, and the one place where AMQP replies and socket errors become Status
// (reply_status).
//
// Layout on the broker, under a prefix (default "sluice", `?prefix=`), every object durable:
//   exchange P.T            direct; routing key = partition number; its alternate exchange
//                           catches what no group's queue is bound for
//   exchange P.T.unrouted   fanout, and queue P.T.unrouted bound to it: messages sent while no
//                           group was declared wait there (never dropped); consumers drain it
//   queue    P.T.partitions the topic's marker: holds one message per partition (published in one
//                           transaction), so a passive declare's message count is the partition
//                           count; its x-max-length makes re-creating idempotent and a different
//                           count an "inequivalent argument" refusal
//   queue    P.T.N.G        group G's queue for partition N of T, bound to P.T with key N
//   queue    P.reader.ID    an ephemeral consumer's: durable, so a broker restart loses nothing
//                           sent to it, and expiring (x-expires) once its process is gone
//   queue    P.registry     one message per topic ("t\tT") and group ("g\tG\tT1,T2,..."): the
//                           only way to list them over AMQP 0-9-1 (read by get + requeue)
// Names longer than AMQP's 255 bytes keep their start and end with a hash of the whole.
//
// Ownership: a Conn owns its librabbitmq connection. Thread-safety: a Conn is used by one thread at
// a time; settings and name helpers are values.
#pragma once

#include <amqp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "queue/queue.h"

namespace sluice::queue::amqp {

struct AmqpSettings {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  std::string prefix = "sluice";
  std::string queue_type = "classic";  // or "quorum"
  int prefetch = 256;                  // unacked messages a consumer holds
  // Quorum queues: a message delivered this many times without an ack (a document that crashes
  // every worker) is dead-lettered to topic T.dlq instead of being delivered again. 0: never.
  int delivery_limit = 0;
  int64_t connect_timeout_ms = 5000;
  int heartbeat_s = 60;
  uint64_t max_message_bytes = 16u << 20;
  int confirm_window = 1024;  // unconfirmed publishes a producer keeps in flight
  int32_t max_partitions = 1024;

  std::string where() const;  // "amqp 127.0.0.1:5672/", for messages
};

// Parses an amqp:// URI; SLUICE_AMQP_PASSWORD (or RABBITMQ_PASSWORD) gives the password when the
// URI has none. amqps:// is refused (this build does not configure TLS).
[[nodiscard]] Result<AmqpSettings> parse_amqp_uri(std::string_view uri,
                                                  const std::function<const char*(const char*)>& getenv);

// Object names (see the top of this file).
struct Names {
  std::string prefix;
  std::string exchange(std::string_view topic) const;
  std::string unrouted(std::string_view topic) const;  // exchange and queue
  std::string marker(std::string_view topic) const;
  std::string group_queue(std::string_view topic, PartitionId p, std::string_view group) const;
  std::string registry() const;
  // An ephemeral consumer's own queue (id: random, unique to the consumer).
  std::string reader(std::string_view id) const;
};

// Arguments of a queue or exchange declaration (x-max-length, x-queue-type, ...).
struct TableArg {
  std::string key;
  std::variant<int64_t, std::string, bool> value;
};

struct QueueCounts {
  uint32_t messages = 0;  // ready (not delivered, or delivered and returned)
  uint32_t consumers = 0;
};

// A message as received: what the broker's delivery said, copied out of librabbitmq's buffers.
struct Delivery {
  uint64_t tag = 0;
  std::string consumer_tag;
  std::string exchange;
  std::string routing_key;
  bool redelivered = false;
  std::string body;
  std::optional<std::string> key;  // header "k"
  std::string headers_blob;        // header "h" (header_codec.h)
  int64_t timestamp_ms = 0;        // header "t"
};

// One connection with channel 1 open. A call that fails on the socket marks the connection broken;
// ensure_open() reconnects. A channel the broker closed (a 404 on a passive declare, say) is
// reopened by the next call.
class Conn {
 public:
  static Result<std::unique_ptr<Conn>> connect(const AmqpSettings& s);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  [[nodiscard]] Status ensure_open();
  bool broken() const { return state_ == nullptr; }
  // Increments on every (re)opened channel 1: delivery tags of an older generation mean nothing
  // now, and consumers set up on it are gone.
  uint64_t generation() const { return generation_; }
  const AmqpSettings& settings() const { return s_; }

  [[nodiscard]] Status declare_exchange(const std::string& name, const char* type,
                                        const std::vector<TableArg>& args = {});
  // passive: only check it exists (NotFound otherwise).
  [[nodiscard]] Result<QueueCounts> declare_queue(const std::string& name, bool passive,
                                                  const std::vector<TableArg>& args = {});
  [[nodiscard]] Status delete_queue(const std::string& name);
  // Drops every ready message of queue; returns how many.
  [[nodiscard]] Result<uint32_t> purge(const std::string& name);
  [[nodiscard]] Status bind(const std::string& queue, const std::string& exchange, const std::string& key);
  // global: one limit over every consumer of the channel (classic queues only); otherwise the
  // limit is each consumer's.
  [[nodiscard]] Status qos(uint16_t prefetch, bool global);
  [[nodiscard]] Status consume(const std::string& queue, const std::string& tag);
  // basic.cancel, waiting for cancel-ok: the broker sends that consumer nothing more.
  [[nodiscard]] Status cancel(const std::string& tag);
  [[nodiscard]] Status confirm_select();
  // Publishes bodies straight to queue (the default exchange) in one transaction, on a channel of
  // its own (2): on return the broker holds all of them durably, and nobody ever saw a part. Channel
  // 1's mode (confirms, unacked gets) is untouched, as a transactional channel defers acks too.
  [[nodiscard]] Status publish_tx(const std::string& queue, const std::vector<std::string>& bodies);

  // One publish. props: the sluice fields (key, headers blob, timestamp) go in the AMQP headers.
  [[nodiscard]] Status publish(const std::string& exchange, const std::string& routing_key,
                               std::string_view body, const std::optional<std::string_view>& key,
                               std::string_view headers_blob, int64_t timestamp_ms);
  // basic.get with manual ack; nullopt when the queue is empty.
  [[nodiscard]] Result<std::optional<Delivery>> get(const std::string& queue);
  [[nodiscard]] Status ack(uint64_t tag, bool multiple);
  [[nodiscard]] Status reject(uint64_t tag, bool requeue);
  [[nodiscard]] Status nack(uint64_t tag, bool multiple, bool requeue);
  // Waits up to timeout for the next delivery on the channel; nullopt on timeout. Confirms
  // (basic.ack / basic.nack from the broker) are handed to on_confirm instead.
  using ConfirmFn = std::function<void(uint64_t tag, bool multiple, bool ok)>;
  [[nodiscard]] Result<std::optional<Delivery>> next(std::chrono::milliseconds timeout,
                                                     const ConfirmFn& on_confirm = {});
  // Closes channel and connection politely (unacked deliveries go back to their queues).
  void close();

 private:
  explicit Conn(AmqpSettings s) : s_(std::move(s)) {}
  Status open();
  Status ensure_channel();
  // Translates the last RPC's reply on channel; marks the connection or channel broken as the
  // reply says.
  Status rpc_status(amqp_rpc_reply_t r, std::string_view what, amqp_channel_t channel = 1);
  Status publish_on(amqp_channel_t channel, const std::string& exchange, const std::string& routing_key,
                    std::string_view body, const std::optional<std::string_view>& key,
                    std::string_view headers_blob, int64_t timestamp_ms);
  Status io_status(int code, std::string_view what);
  void drop();

  AmqpSettings s_;
  amqp_connection_state_t state_ = nullptr;
  bool channel_open_ = false;
  bool tx_channel_open_ = false;  // channel 2, in tx mode
  uint64_t generation_ = 0;
};

// The partition count of a topic: NotFound when it was never created (or is being created).
[[nodiscard]] Result<int32_t> topic_partitions(Conn& c, const Names& n, std::string_view topic);

// The registry's entries (deduplicated, in first-seen order) and appending to it.
struct Registry {
  std::vector<std::string> topics;
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // group -> its topics
};
[[nodiscard]] Result<Registry> read_registry(Conn& c, const Names& n);
[[nodiscard]] Status append_registry(Conn& c, const Names& n, std::string entry);

// Declares a topic's exchanges, unrouted queue and marker (idempotent; AlreadyExists with another
// partition count) and records it in the registry.
[[nodiscard]] Status create_topic_objects(Conn& c, const Names& n, const std::string& topic,
                                          int32_t partitions);

// Declares group's queues for every partition of topics and binds them, recording a new group in
// the registry. Used by Admin::declare_group and by every consumer of a named group.
[[nodiscard]] Status declare_group_queues(Conn& c, const Names& n, std::string_view group,
                                          const std::vector<std::string>& topics);

// A consumer of the group (or an ephemeral one) on the settings' broker (amqp_consumer.cc).
[[nodiscard]] Result<std::unique_ptr<Consumer>> make_amqp_consumer(const AmqpSettings& s,
                                                                   ConsumerOptions opts);

}  // namespace sluice::queue::amqp
