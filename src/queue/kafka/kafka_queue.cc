#include "queue/kafka/kafka_queue.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "queue/kafka/kafka_client.h"
#include "queue/kafka/kafka_errors.h"

namespace sluice::queue::kafka {
namespace {

// How long a cached partition count is trusted: partitions can be added to a topic, and a
// producer must place keys by the new count soon after.
constexpr auto kCountTtl = std::chrono::seconds(30);
constexpr int kMetadataTimeoutMs = 10000;

// librdkafka's log lines, as sluice's JSON log lines.
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  log::Level l = level <= 3   ? log::Level::kError
                 : level == 4 ? log::Level::kWarn
                 : level <= 6 ? log::Level::kInfo
                              : log::Level::kDebug;
  log::write(l, buf, {{"component", "kafka"}, {"facility", fac}, {"client", rd_kafka_name(rk)}});
}

struct CreatorTable {
  std::mutex mu;
  std::map<std::string, TopicCreator, std::less<>> creators;
};
CreatorTable& creators() {
  static CreatorTable t;
  return t;
}

class KafkaQueue : public Queue {
 public:
  explicit KafkaQueue(std::shared_ptr<Cluster> cluster)
      : cluster_(std::move(cluster)), admin_(make_kafka_admin(cluster_)) {}

  std::string_view backend() const override { return "kafka"; }
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
    c.max_message_bytes = cluster_->max_message_bytes();
    return c;
  }
  Result<std::unique_ptr<Producer>> make_producer(ProducerOptions opts) override {
    return make_kafka_producer(cluster_, std::move(opts));
  }
  Result<std::unique_ptr<Consumer>> make_consumer(ConsumerOptions opts) override {
    return make_kafka_consumer(cluster_, std::move(opts));
  }
  Admin& admin() override { return *admin_; }

 private:
  std::shared_ptr<Cluster> cluster_;
  std::unique_ptr<Admin> admin_;
};

}  // namespace

TopicCreator find_topic_creator(std::string_view bootstrap_servers) {
  auto& t = creators();
  std::lock_guard lock(t.mu);
  auto it = t.creators.find(bootstrap_servers);
  return it == t.creators.end() ? TopicCreator() : it->second;
}

void register_topic_creator(const std::string& bootstrap_servers, TopicCreator creator) {
  auto& t = creators();
  std::lock_guard lock(t.mu);
  if (creator) {
    t.creators[bootstrap_servers] = std::move(creator);
  } else {
    t.creators.erase(bootstrap_servers);
  }
}

bool header_name_needs_encoding(std::string_view name) {
  return name.find('\0') != std::string_view::npos || name.starts_with(kEncodedNamePrefix);
}

TplPtr make_tpl(const std::vector<TopicPartition>& parts) {
  TplPtr l(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  for (const auto& tp : parts)
    rd_kafka_topic_partition_list_add(l.get(), tp.topic.c_str(), tp.partition.value());
  return l;
}

// ---------------------------------------------------------------------------------------------
// GroupRegistry

GroupRegistry& GroupRegistry::instance() {
  static GroupRegistry r;
  return r;
}

uint64_t GroupRegistry::join(const std::string& cluster, const std::string& group, const std::string& member,
                             const std::vector<std::string>& topics) {
  std::lock_guard lock(mu_);
  Group& g = groups_[{cluster, group}];
  g.members.push_back(Member{++next_id_, member, {}});
  g.topics.insert(topics.begin(), topics.end());
  return next_id_;
}

void GroupRegistry::set_assignment(const std::string& cluster, const std::string& group, uint64_t id,
                                   std::vector<TopicPartition> assignment) {
  std::lock_guard lock(mu_);
  auto it = groups_.find({cluster, group});
  if (it == groups_.end()) return;
  for (auto& m : it->second.members)
    if (m.id == id) m.assignment = std::move(assignment);
}

void GroupRegistry::leave(const std::string& cluster, const std::string& group, uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = groups_.find({cluster, group});
  if (it == groups_.end()) return;
  auto& ms = it->second.members;
  ms.erase(std::remove_if(ms.begin(), ms.end(), [&](const Member& m) { return m.id == id; }), ms.end());
}

std::optional<GroupRegistry::Group> GroupRegistry::get(const std::string& cluster,
                                                       const std::string& group) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find({cluster, group});
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> GroupRegistry::groups(const std::string& cluster) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, g] : groups_)
    if (key.first == cluster) out.push_back(key.second);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cluster

Cluster::~Cluster() = default;

Result<ConfPtr> Cluster::make_conf(Scope scope, const Props& defaults, const Props& forced) const {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  auto set = [&](const std::string& name, const std::string& value, std::string_view source) -> Status {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::string shown = is_secret_property(name) ? "(hidden)" : "'" + value + "'";
      return Status::invalid_argument("kafka property '" + name + "' = " + shown + " (from " +
                                      std::string(source) + ") refused by librdkafka: " + err);
    }
    return {};
  };
  SLUICE_RETURN_IF_ERROR(set("bootstrap.servers", settings_.bootstrap_servers, "the URI or environment"));
  SLUICE_RETURN_IF_ERROR(set("client.id", "sluice", "sluice's defaults"));
  for (const auto& [k, v] : defaults) SLUICE_RETURN_IF_ERROR(set(k, v, "sluice's defaults"));
  for (const auto& p : settings_.properties) {
    Scope s = property_scope(p.name);
    if (scope != Scope::kAll && s != Scope::kAll && s != scope) continue;
    SLUICE_RETURN_IF_ERROR(set(p.name, p.value, p.source));
  }
  for (const auto& [k, v] : forced) SLUICE_RETURN_IF_ERROR(set(k, v, "sluice"));
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  return conf;
}

Result<RkPtr> Cluster::make_client(rd_kafka_type_t type, ConfPtr conf) const {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (rk == nullptr) {
    return Status::invalid_argument("cannot create a Kafka client for " + where() + ": " + err);
  }
  conf.release();  // rd_kafka_new took it
  return RkPtr(rk);
}

Status Cluster::init() {
  // Every property is checked once here, on a configuration of every scope, so that a misspelt
  // one fails open_queue rather than the first consumer.
  SLUICE_ASSIGN_OR_RETURN(ConfPtr all, make_conf(Scope::kAll, {}, {}));
  char buf[64];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(all.get(), "message.max.bytes", buf, &size) == RD_KAFKA_CONF_OK) {
    int64_t v = std::atoll(buf);
    if (v > static_cast<int64_t>(2 * kRecordOverhead))
      max_message_bytes_ = static_cast<size_t>(v) - kRecordOverhead;
  }
  SLUICE_ASSIGN_OR_RETURN(ConfPtr conf, make_conf(Scope::kProducer, {}, {}));
  SLUICE_ASSIGN_OR_RETURN(meta_, make_client(RD_KAFKA_PRODUCER, std::move(conf)));
  // Reach the cluster now: a wrong address is reported by open_queue, not by a later call.
  return topics().status();
}

Result<std::map<std::string, int32_t>> Cluster::topics() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      retry_transient([&] { return rd_kafka_metadata(meta_.get(), 1, nullptr, &md, kMetadataTimeoutMs); },
                      kMetadataTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(err, "listing the topics of " + where());
  std::map<std::string, int32_t> out;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) out[t.topic] = t.partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  counts_.clear();
  for (const auto& [name, n] : out) counts_[name] = {n, now};
  return out;
}

Result<int32_t> Cluster::partition_count(std::string_view topic, bool refresh) {
  if (!refresh) {
    std::lock_guard lock(mu_);
    auto it = counts_.find(topic);
    if (it != counts_.end() && std::chrono::steady_clock::now() - it->second.second < kCountTtl)
      return it->second.first;
  }
  SLUICE_ASSIGN_OR_RETURN(auto all, topics());
  auto it = all.find(std::string(topic));
  if (it == all.end()) {
    return Status::not_found("topic '" + std::string(topic) + "' does not exist on " + where() +
                             " (create it with `sluice topics create` or the cluster's tools)");
  }
  return it->second;
}

void Cluster::forget(std::string_view topic) {
  std::lock_guard lock(mu_);
  auto it = counts_.find(topic);
  if (it != counts_.end()) counts_.erase(it);
}

Result<std::pair<int64_t, int64_t>> Cluster::watermarks(const std::string& topic, int32_t partition) {
  int64_t lo = 0;
  int64_t hi = 0;
  bool retry = false;
  rd_kafka_resp_err_t err = retry_transient(
      [&] {
        // The query goes to the leader librdkafka has cached, and a NOT_LEADER answer does not
        // refresh that cache: after a leader move, ask for the topic's metadata before trying again.
        if (std::exchange(retry, true)) {
          const rd_kafka_metadata_t* md = nullptr;
          TopicPtr t(rd_kafka_topic_new(meta_.get(), topic.c_str(), nullptr));
          if (rd_kafka_metadata(meta_.get(), 0, t.get(), &md, kMetadataTimeoutMs) ==
              RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
          }
        }
        return rd_kafka_query_watermark_offsets(meta_.get(), topic.c_str(), partition, &lo, &hi,
                                                kMetadataTimeoutMs);
      },
      kMetadataTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_status(
        err, "reading the offsets of " + topic + "/" + std::to_string(partition) + " on " + where());
  }
  return std::make_pair(lo, hi);
}

Result<std::unique_ptr<Queue>> open_kafka_queue(std::string_view uri) {
  SLUICE_ASSIGN_OR_RETURN(KafkaSettings settings, parse_kafka_uri(uri, process_environment()));
  for (const auto& note : settings.notes)
    sluice::log::warn("kafka: environment variable not applied", {{"note", note}});
  auto cluster = std::make_shared<Cluster>(std::move(settings));
  SLUICE_RETURN_IF_ERROR(cluster->init());
  return std::unique_ptr<Queue>(new KafkaQueue(std::move(cluster)));
}

}  // namespace sluice::queue::kafka
