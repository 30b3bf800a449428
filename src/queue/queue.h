// The queue interface: one contract for every message-log backend (the embedded `log`, and later
// Kafka, Redis Streams and RabbitMQ), checked by one conformance suite (tests/conformance).
//
// Concepts. A topic has a fixed number of partitions; a message goes to the partition its key
// hashes to (Kafka's murmur2, see partitioner.h) and gets the next offset there. Consumers join a
// group; the group's members split the partitions, each group keeps one committed offset per
// partition, and independent groups each receive every message.
//
// Ownership. A Queue owns the backend's connections and files; Producers, Consumers and the Admin
// it hands out must be destroyed before it. Messages returned by poll() keep their bytes alive
// through Message::backing, so they may outlive the Consumer that returned them.
//
// Thread-safety. Queue, Producer and Admin are thread-safe. A Consumer is used by one thread at a
// time (poll/ack/commit), except ack(), which may be called from any thread. Delivery callbacks
// run on a backend thread and must not block for long.
#pragma once

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

namespace sluice::queue {

using Millis = std::chrono::milliseconds;

// A header seen through views; what the views point at is owned by the caller (send) or by the
// Message's backing (poll).
struct Header {
  std::string_view key;
  std::string_view value;
};

// What a producer hands to send(). The views need only live for the duration of the call.
struct OutMessage {
  std::string_view topic;
  std::optional<std::string_view> key;  // nullopt: no key (spread round-robin)
  std::string_view value;
  std::span<const Header> headers;
  std::optional<PartitionId> partition;  // set: this partition, not the key's
  int64_t timestamp_ms = 0;              // 0: now
};

// Handed to the producer's delivery callback once per send(), after the message is durable as the
// backend promises (for `log` in the default mode: fsynced), or failed.
struct DeliveryReport {
  uint64_t ticket = 0;     // what send() returned
  void* opaque = nullptr;  // what send() was given
  Status status;           // OK, or why the message was not stored
  std::string_view topic;
  PartitionId partition{-1};
  Offset offset{-1};
};
using DeliveryCallback = std::function<void(const DeliveryReport&)>;

struct ProducerOptions {
  // Called once per message on a backend thread; may be empty (then use flush()).
  DeliveryCallback on_delivery;
  // send() blocks while this many bytes wait for acknowledgement, then fails with
  // ResourceLimit after send_timeout. Bounds memory under a burst.
  size_t max_buffered_bytes = 32u << 20;
  Millis send_timeout{30000};
};

class Producer {
 public:
  virtual ~Producer() = default;
  // Queues one message. Returns a ticket (1, 2, 3, ... per producer) that its DeliveryReport will
  // carry. Fails at once, with nothing queued, on bad input: unknown topic, partition out of
  // range, message larger than the backend's limit.
  [[nodiscard]] virtual Result<uint64_t> send(const OutMessage& msg, void* opaque = nullptr) = 0;
  // Waits until every message sent so far has its delivery report. Timeout: Code::kTimeout.
  // Returns the first delivery error seen since the previous flush, if any.
  [[nodiscard]] virtual Status flush(Millis timeout) = 0;
  // Messages sent whose delivery report has not yet been issued.
  virtual uint64_t outstanding() const = 0;
};

// A message as a consumer sees it. key/value/headers view bytes kept alive by `backing`.
struct Message {
  std::string_view topic;
  PartitionId partition{0};
  Offset offset{0};
  int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::string_view value;
  std::span<const Header> headers;
  std::shared_ptr<const void> backing;
  uint64_t cookie[2] = {0, 0};  // backend-private (which assignment handed it out)

  std::optional<std::string_view> header(std::string_view k) const {
    for (const auto& h : headers)
      if (h.key == k) return h.value;
    return std::nullopt;
  }
};

enum class StartFrom { kEarliest, kLatest };

struct ConsumerOptions {
  std::string group;
  std::vector<std::string> topics;
  // Where a partition starts when the group has no committed offset for it. For an ephemeral
  // consumer, kLatest is the end as of make_consumer(): nothing sent after it returns is missed,
  // however long the consumer takes to be assigned its partitions.
  StartFrom start_from = StartFrom::kEarliest;
  // How often acknowledged offsets are committed (also on close and on commit()).
  Millis commit_interval{200};
  // A name shown in describe_group; defaults to "<host>:<pid>:<n>".
  std::string member_name;
  // A group that lives only in this consumer's process: no committed offsets are stored, it is
  // not listed and never holds back retention (for `sluice tail` without --group, and probes).
  bool ephemeral = false;
};

struct TopicPartition {
  std::string topic;
  PartitionId partition{0};
  bool operator==(const TopicPartition&) const = default;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Appends up to max messages to out, waiting up to timeout for the first. Messages of one
  // partition come in offset order. An empty result with OK status means nothing arrived in time.
  [[nodiscard]] virtual Status poll(std::vector<Message>& out, size_t max, Millis timeout) = 0;
  // Marks one message processed. Acks may come in any order; the committed offset of a partition
  // is the end of its contiguous acked prefix. An ack for a partition this member no longer owns is
  // ignored (the new owner receives the message again).
  [[nodiscard]] virtual Status ack(const Message& msg) = 0;
  // Commits the acked prefix now and waits until it is durable.
  [[nodiscard]] virtual Status commit() = 0;
  // Commits and leaves the group; unacked messages go to the remaining members (or to whoever
  // joins next). Idempotent; the destructor closes too.
  [[nodiscard]] virtual Status close() = 0;
  // The partitions this member owns now (empty while it waits as a standby).
  virtual std::vector<TopicPartition> assignment() const = 0;
};

struct PartitionInfo {
  PartitionId partition{0};
  Offset start{0};  // first offset still stored; -1 on backends without Capabilities::offsets
  Offset end{0};    // next offset to be written; -1 likewise
};

struct TopicInfo {
  std::string name;
  int32_t partitions = 0;
  std::vector<PartitionInfo> partition_info;  // filled by describe_topic
};

struct TopicConfig {
  int32_t partitions = 1;
  int16_t replication_factor = 1;  // ignored by single-node backends
  // Retention; negative means unlimited. By default data is never deleted before every known
  // group has consumed it.
  int64_t retention_ms = -1;
  int64_t retention_bytes = -1;
};

struct GroupPartition {
  std::string topic;
  PartitionId partition{0};
  std::optional<Offset> committed;  // nullopt: the group never committed here
  Offset end{0};
  int64_t lag = 0;     // end - committed (or end - start when never committed)
  std::string member;  // owner, empty when unassigned
};

struct GroupInfo {
  std::string group;
  std::string state;  // "active" (a process consumes), "empty" (nobody does)
  std::vector<std::string> members;
  std::vector<GroupPartition> partitions;
};

struct ResetSpec {
  enum class Kind { kEarliest, kLatest, kTimestamp, kOffset };
  Kind kind = Kind::kEarliest;
  int64_t value = 0;  // milliseconds since the epoch for kTimestamp, the offset for kOffset
};

struct PartitionOffset {
  PartitionId partition{0};
  Offset offset{0};
};

class Admin {
 public:
  virtual ~Admin() = default;
  // Creates a topic. Creating one that exists with the same partition count is OK; with another
  // count it is Code::kAlreadyExists.
  [[nodiscard]] virtual Status create_topic(std::string_view name, const TopicConfig& cfg) = 0;
  [[nodiscard]] virtual Result<std::vector<TopicInfo>> list_topics() = 0;
  [[nodiscard]] virtual Result<TopicInfo> describe_topic(std::string_view name) = 0;
  [[nodiscard]] virtual Result<std::vector<std::string>> list_groups() = 0;
  [[nodiscard]] virtual Result<GroupInfo> describe_group(std::string_view group) = 0;
  // Moves a group's committed offsets on every partition of topic (or one partition). The group
  // must have no active members (Code::kBusy otherwise). Returns the new offsets.
  [[nodiscard]] virtual Result<std::vector<PartitionOffset>> reset_offsets(
      std::string_view group, std::string_view topic, const ResetSpec& spec,
      std::optional<PartitionId> partition = std::nullopt) = 0;
  // Makes sure group receives every message sent to topics from now on, before any member runs
  // (the pipeline calls it for every stage before the first task is sent). Backends whose groups
  // read the topic's history (Capabilities::late_groups) need nothing: the default does nothing.
  [[nodiscard]] virtual Status declare_group(std::string_view group, std::span<const std::string> topics) {
    (void)group;
    (void)topics;
    return {};
  }
};

// What a backend can promise; the conformance suite tests every capability declared true.
struct Capabilities {
  bool persistent = false;       // messages survive a restart of the backend
  bool per_key_order = false;    // one key's messages are delivered in send order
  bool partitions = false;       // topics have several partitions
  bool replay = false;           // offsets can be reset to earlier positions
  bool timestamp_reset = false;  // offsets can be reset to a timestamp
  bool lag = false;              // describe_group reports end offsets and lag
  bool multi_process_producers = false;
  // Every message has a dense offset per partition (0, 1, 2, ...) that delivery reports and
  // Message carry, describe_topic gives start/end offsets, and a group's committed position is the
  // end of its contiguous acked prefix. Without it (RabbitMQ) offsets are -1 and each message is
  // acknowledged on its own: after a failure exactly the unacked messages come again.
  bool offsets = false;
  // One member of a group owns a partition at a time (assignment() is exclusive): a member may
  // wait as a standby, and a partition moves as a whole. Without it the group's members compete
  // for every partition's messages, as on a shared work queue.
  bool exclusive_partitions = false;
  // A group that subscribes for the first time receives what was sent before it existed (from
  // the topic's retained history). Without it a group receives what is sent after its queues were
  // declared (Admin::declare_group, or its first make_consumer).
  bool late_groups = false;
  size_t max_message_bytes = 0;  // the limit send() enforces
};

class Queue {
 public:
  virtual ~Queue() = default;
  virtual std::string_view backend() const = 0;  // "log", "kafka", ...
  virtual Capabilities capabilities() const = 0;
  [[nodiscard]] virtual Result<std::unique_ptr<Producer>> make_producer(ProducerOptions opts) = 0;
  [[nodiscard]] virtual Result<std::unique_ptr<Consumer>> make_consumer(ConsumerOptions opts) = 0;
  virtual Admin& admin() = 0;
};

struct QueueOpenOptions {
  // false: a queue that does not exist yet is Code::kNotFound instead of being created (for
  // commands that only look, so a mistyped path is reported rather than made).
  bool create_if_missing = true;
};

// Opens a backend by URI: "log:DIR[?k=v&...]" (or a bare path), "kafka://HOST:PORT,...[?prop=v&...]"
// (queue/kafka/kafka_queue.h). Unknown schemes are BadInput.
[[nodiscard]] Result<std::unique_ptr<Queue>> open_queue(std::string_view uri,
                                                        const QueueOpenOptions& opts = {});

// Creates a topic with cfg unless it exists already (also when another process creates it at the
// same time; the existing topic's settings are kept). Other errors are returned.
[[nodiscard]] Status ensure_topic(Admin& admin, std::string_view name, const TopicConfig& cfg);

// A consumer's name when ConsumerOptions::member_name is empty: "<host>:<pid>:<n>", unique in
// the process.
std::string default_member_name();

// Checks a topic name the way Kafka does: 1..249 chars of [A-Za-z0-9._-], not "." or "..".
[[nodiscard]] Status validate_topic_name(std::string_view name);
// Group names follow the same rule (they name directories and Kafka groups alike).
[[nodiscard]] Status validate_group_name(std::string_view name);

}  // namespace sluice::queue
