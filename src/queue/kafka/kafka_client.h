// Internals of the kafka backend shared by its producer, consumer and admin (not for use outside
// src/queue/kafka): owning handles for librdkafka objects, the Cluster every client of one Queue
// builds its configuration from and reads topic metadata through, the process-wide table of
// consumers this process runs (what describe_group falls back on when the cluster cannot describe
// groups), and the encoding of header names librdkafka cannot carry.
//
// librdkafka's C API is used throughout: its C++ wrapper lacks the admin operations and the mock
// cluster, and copies header values that the C API lends; one API keeps the ownership rules one.
// Thread-safety: Cluster and GroupRegistry are thread-safe; the handles are as librdkafka's.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "queue/kafka/kafka_config.h"
#include "queue/kafka/kafka_queue.h"
#include "queue/queue.h"

namespace sluice::queue::kafka {

struct RkDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RkPtr = std::unique_ptr<rd_kafka_t, RkDeleter>;
struct TplDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using TplPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, TplDeleter>;
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using RkQueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

inline int to_ms(Millis m) {
  return static_cast<int>(std::min<int64_t>(m.count(), INT32_MAX));
}

// A topic partition by view, to look one up without copying the topic's name.
struct TpRef {
  std::string_view topic;
  PartitionId partition{0};
};

// Topic partitions with an order, for maps; transparent, so TpRef finds a TopicPartition.
struct TpLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    const std::string_view at = a.topic, bt = b.topic;
    return at != bt ? at < bt : a.partition < b.partition;
  }
};

// The largest partition count create_topic accepts: far above any sensible topic, far below what
// makes a cluster (or the mock) allocate itself out of memory.
inline constexpr int32_t kMaxPartitions = 10000;
// How much of message.max.bytes a record's framing (lengths, header counts, batch header) may
// take; send() refuses key + value + headers above message.max.bytes minus this.
inline constexpr size_t kRecordOverhead = 1024;

// Header names are NUL-terminated in librdkafka's API, so a name holding a NUL byte cannot come
// back. Such names (and, so the encoding stays reversible, names that start with the prefix) are
// sent as kEncodedNamePrefix + base64(name) and decoded on receipt.
inline constexpr std::string_view kEncodedNamePrefix = "sluice-b64:";
bool header_name_needs_encoding(std::string_view name);

// The consumers this process runs, by cluster and group: names, subscribed topics and current
// assignments. Used where a cluster cannot describe groups (librdkafka 2.0.2's mock cluster answers
// ListGroups/DescribeGroups with "unsupported"); a real cluster's own answer is preferred.
class GroupRegistry {
 public:
  struct Member {
    uint64_t id = 0;
    std::string name;
    std::vector<TopicPartition> assignment;
  };
  struct Group {
    std::vector<Member> members;
    std::set<std::string> topics;  // every topic a member of this process ever subscribed
  };
  static GroupRegistry& instance();

  uint64_t join(const std::string& cluster, const std::string& group, const std::string& member,
                const std::vector<std::string>& topics);
  void set_assignment(const std::string& cluster, const std::string& group, uint64_t id,
                      std::vector<TopicPartition> assignment);
  void leave(const std::string& cluster, const std::string& group, uint64_t id);
  // nullopt: no consumer of this process ever joined the group.
  std::optional<Group> get(const std::string& cluster, const std::string& group) const;
  std::vector<std::string> groups(const std::string& cluster) const;

 private:
  mutable std::mutex mu_;
  uint64_t next_id_ = 0;
  std::map<std::pair<std::string, std::string>, Group> groups_;
};

// What every client of one Queue shares: the settings, a handle for metadata and admin requests,
// and a cache of partition counts.
class Cluster {
 public:
  explicit Cluster(KafkaSettings settings) : settings_(std::move(settings)) {}
  ~Cluster();
  // Checks every property with librdkafka and connects the metadata handle.
  [[nodiscard]] Status init();

  const std::string& bootstrap() const { return settings_.bootstrap_servers; }
  // "the Kafka cluster at host:9092,...": how messages name the cluster.
  std::string where() const { return "the Kafka cluster at " + settings_.bootstrap_servers; }
  size_t max_message_bytes() const { return max_message_bytes_; }

  using Props = std::vector<std::pair<std::string, std::string>>;
  // A client configuration: sluice's defaults, then the user's properties for scope, then the
  // forced ones (which the user cannot change, see kafka_config.h).
  [[nodiscard]] Result<ConfPtr> make_conf(Scope scope, const Props& defaults, const Props& forced) const;
  // A new client of type on a conf from make_conf.
  [[nodiscard]] Result<RkPtr> make_client(rd_kafka_type_t type, ConfPtr conf) const;

  rd_kafka_t* meta() const { return meta_.get(); }

  // Every topic of the cluster and its partition count, from one Metadata request for all
  // topics: a request naming one topic makes a broker with auto.create.topics.enable (and the mock)
  // create it, and looking must not create.
  [[nodiscard]] Result<std::map<std::string, int32_t>> topics();
  // The partition count of topic, cached; kNotFound naming the topic and the cluster.
  [[nodiscard]] Result<int32_t> partition_count(std::string_view topic, bool refresh = false);
  void forget(std::string_view topic);

  // Offsets [start, end) of one partition.
  [[nodiscard]] Result<std::pair<int64_t, int64_t>> watermarks(const std::string& topic, int32_t partition);

  // Whether the cluster answers ListGroups/DescribeGroups (unknown until first asked).
  enum class Support { kUnknown, kYes, kNo };
  std::atomic<Support> group_api{Support::kUnknown};

 private:
  KafkaSettings settings_;
  RkPtr meta_;
  size_t max_message_bytes_ = 1000000 - kRecordOverhead;
  std::mutex mu_;
  std::map<std::string, std::pair<int32_t, std::chrono::steady_clock::time_point>, std::less<>> counts_;
};

// The creator registered for a cluster without CreateTopics (kafka_queue.h); empty when none.
TopicCreator find_topic_creator(std::string_view bootstrap_servers);

// A topic partition list holding (topic, partition) pairs.
TplPtr make_tpl(const std::vector<TopicPartition>& parts);

// The clients a Queue hands out.
[[nodiscard]] Result<std::unique_ptr<Producer>> make_kafka_producer(std::shared_ptr<Cluster> cluster,
                                                                    ProducerOptions opts);
[[nodiscard]] Result<std::unique_ptr<Consumer>> make_kafka_consumer(std::shared_ptr<Cluster> cluster,
                                                                    ConsumerOptions opts);
std::unique_ptr<Admin> make_kafka_admin(std::shared_ptr<Cluster> cluster);

}  // namespace sluice::queue::kafka
