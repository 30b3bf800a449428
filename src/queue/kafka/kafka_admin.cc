// The kafka backend's Admin. Topics: Metadata and CreateTopics (or a registered creator where the
// cluster lacks CreateTopics). Groups: DescribeGroups/ListGroups where the cluster answers them,
// else what this process's consumers know (GroupRegistry). Committed offsets are read and written
// through a consumer client of the group that never joins it (OffsetFetch/OffsetCommit with no
// generation: Kafka accepts such commits only while the group has no members).
#include <algorithm>
#include <functional>
#include <thread>

#include "queue/kafka/kafka_client.h"
#include "queue/kafka/kafka_errors.h"

namespace sluice::queue::kafka {
namespace {

constexpr int kAdminTimeoutMs = 15000;
constexpr size_t kMaxGroupClients = 8;

std::string tp_name(const std::string& topic, int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

class KafkaAdmin : public Admin {
 public:
  explicit KafkaAdmin(std::shared_ptr<Cluster> cluster) : cluster_(std::move(cluster)) {}

  Status create_topic(std::string_view name, const TopicConfig& cfg) override {
    SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
    if (cfg.partitions < 1 || cfg.partitions > kMaxPartitions) {
      return Status::invalid_argument("topic '" + std::string(name) + "': " + std::to_string(cfg.partitions) +
                                      " partitions; a topic has 1 to " + std::to_string(kMaxPartitions));
    }
    const std::string topic(name);
    SLUICE_ASSIGN_OR_RETURN(auto topics, cluster_->topics());
    if (auto it = topics.find(topic); it != topics.end())
      return same_count(topic, it->second, cfg.partitions);

    if (TopicCreator creator = find_topic_creator(cluster_->bootstrap())) {
      SLUICE_RETURN_IF_ERROR(creator(topic, cfg.partitions, std::max<int16_t>(cfg.replication_factor, 1)));
    } else {
      SLUICE_RETURN_IF_ERROR(create_with_request(topic, cfg));
    }
    // Wait until the metadata shows it, so a send right after finds it.
    for (int i = 0; i < 100; ++i) {
      auto n = cluster_->partition_count(topic, true);
      if (n.is_ok()) return same_count(topic, *n, cfg.partitions);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::timeout("topic '" + topic + "' was created on " + cluster_->where() +
                           " but does not show in its metadata yet");
  }

  Result<std::vector<TopicInfo>> list_topics() override {
    SLUICE_ASSIGN_OR_RETURN(auto topics, cluster_->topics());
    std::vector<TopicInfo> out;
    for (const auto& [name, n] : topics) {
      if (name.starts_with("__")) continue;  // Kafka's internal topics (__consumer_offsets)
      out.push_back(TopicInfo{name, n, {}});
    }
    return out;
  }

  Result<TopicInfo> describe_topic(std::string_view name) override {
    const std::string topic(name);
    SLUICE_ASSIGN_OR_RETURN(int32_t n, cluster_->partition_count(topic, true));
    TopicInfo info{topic, n, {}};
    for (int32_t p = 0; p < n; ++p) {
      SLUICE_ASSIGN_OR_RETURN(auto wm, cluster_->watermarks(topic, p));
      info.partition_info.push_back(PartitionInfo{PartitionId(p), Offset(wm.first), Offset(wm.second)});
    }
    return info;
  }

  Result<std::vector<std::string>> list_groups() override {
    std::set<std::string> names;
    SLUICE_RETURN_IF_ERROR(list_with_request(names));
    for (auto& g : GroupRegistry::instance().groups(cluster_->bootstrap())) names.insert(g);
    std::vector<std::string> out;
    for (const auto& g : names)
      if (g.find(".ephemeral-") == std::string::npos) out.push_back(g);
    return out;
  }

  Result<GroupInfo> describe_group(std::string_view name) override {
    const std::string group(name);
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    GroupInfo info;
    info.group = group;
    std::map<TopicPartition, std::string, TpLess> owners;
    std::set<std::string> topics;
    SLUICE_RETURN_IF_ERROR(members(group, info, owners, topics));
    SLUICE_ASSIGN_OR_RETURN(auto client, group_client(group));

    // Committed offsets of every partition of the group's topics.
    std::vector<TopicPartition> tps;
    for (const auto& t : topics) {
      auto n = cluster_->partition_count(t);
      if (!n.is_ok()) continue;  // deleted since
      for (int32_t p = 0; p < *n; ++p) tps.push_back(TopicPartition{t, PartitionId(p)});
    }
    TplPtr list = make_tpl(tps);
    if (!tps.empty()) {
      SLUICE_RETURN_IF_ERROR(kafka_status(
          retry_transient([&] { return rd_kafka_committed(client.get(), list.get(), kAdminTimeoutMs); },
                          kAdminTimeoutMs),
          "reading the committed offsets of group '" + group + "' on " + cluster_->where()));
    }
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      GroupPartition gp;
      gp.topic = e.topic;
      gp.partition = PartitionId(e.partition);
      SLUICE_ASSIGN_OR_RETURN(auto wm, cluster_->watermarks(gp.topic, e.partition));
      gp.end = Offset(wm.second);
      if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) gp.committed = Offset(e.offset);
      gp.lag = wm.second - (gp.committed ? std::max(gp.committed->value(), wm.first) : wm.first);
      if (auto it = owners.find(TopicPartition{gp.topic, gp.partition}); it != owners.end())
        gp.member = it->second;
      info.partitions.push_back(std::move(gp));
    }
    return info;
  }

  Result<std::vector<PartitionOffset>> reset_offsets(std::string_view group_name, std::string_view topic_name,
                                                     const ResetSpec& spec,
                                                     std::optional<PartitionId> partition) override {
    const std::string group(group_name);
    const std::string topic(topic_name);
    SLUICE_RETURN_IF_ERROR(validate_group_name(group));
    SLUICE_ASSIGN_OR_RETURN(int32_t n, cluster_->partition_count(topic, true));
    if (partition && (partition->value() < 0 || partition->value() >= n)) {
      return Status::invalid_argument("partition " + std::to_string(partition->value()) +
                                      " is out of range: topic '" + topic + "' has " + std::to_string(n) +
                                      " partitions");
    }
    {
      GroupInfo info;
      std::map<TopicPartition, std::string, TpLess> owners;
      std::set<std::string> topics;
      SLUICE_RETURN_IF_ERROR(members(group, info, owners, topics));
      if (info.state != "empty") {
        return Status::busy("group '" + group + "' has " + std::to_string(info.members.size()) +
                            " active members on " + cluster_->where() +
                            "; stop its consumers before moving its offsets");
      }
    }
    std::vector<PartitionOffset> out;
    for (int32_t p = 0; p < n; ++p) {
      if (partition && partition->value() != p) continue;
      SLUICE_ASSIGN_OR_RETURN(auto wm, cluster_->watermarks(topic, p));
      int64_t target = 0;
      switch (spec.kind) {
        case ResetSpec::Kind::kEarliest: target = wm.first; break;
        case ResetSpec::Kind::kLatest: target = wm.second; break;
        case ResetSpec::Kind::kOffset: target = std::clamp(spec.value, wm.first, wm.second); break;
        case ResetSpec::Kind::kTimestamp: {
          SLUICE_ASSIGN_OR_RETURN(target, offset_for_time(topic, p, spec.value, wm));
          break;
        }
      }
      out.push_back(PartitionOffset{PartitionId(p), Offset(target)});
    }
    SLUICE_ASSIGN_OR_RETURN(auto client, group_client(group));
    TplPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(out.size())));
    for (const auto& po : out)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), po.partition.value())->offset =
          po.offset.value();
    rd_kafka_resp_err_t err = rd_kafka_commit(client.get(), list.get(), 0);
    const bool refused =
        err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION;
    if (refused && cluster_->group_api.load() == Cluster::Support::kNo) {
      // A cluster that cannot describe groups may also refuse commits from outside the group
      // (librdkafka's mock does, for any group it has seen); our look at the group found it empty,
      // so commit as its only member.
      SLUICE_RETURN_IF_ERROR(commit_as_member(group, topic, list.get()));
      return out;
    }
    if (refused) {
      return Status::busy("group '" + group + "' on " + cluster_->where() +
                          " has active members (the broker refused the reset); stop its consumers first");
    }
    SLUICE_RETURN_IF_ERROR(kafka_status(
        err, "moving the offsets of group '" + group + "' on topic '" + topic + "' on " + cluster_->where()));
    return out;
  }

 private:
  // Issues one admin request on a queue of its own and waits for its result event; a request-level
  // error becomes the Status (results per topic or group are the caller's to read).
  Result<EventPtr> admin_call(const std::string& context, const std::function<void(rd_kafka_queue_t*)>& issue,
                              int timeout_ms = kAdminTimeoutMs) {
    RkQueuePtr q(rd_kafka_queue_new(cluster_->meta()));
    issue(q.get());
    EventPtr ev(rd_kafka_queue_poll(q.get(), timeout_ms));
    if (!ev) return Status::timeout(context + ": no answer");
    SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_event_error(ev.get()), context));
    return ev;
  }

  Status same_count(const std::string& topic, int32_t has, int32_t wanted) {
    if (has == wanted) return {};
    return Status::already_exists("topic '" + topic + "' exists on " + cluster_->where() + " with " +
                                  std::to_string(has) + " partitions, not " + std::to_string(wanted));
  }

  Status create_with_request(const std::string& topic, const TopicConfig& cfg) {
    char err[512];
    const int replication = cfg.replication_factor > 0 ? cfg.replication_factor : -1;
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(topic.c_str(), cfg.partitions, replication, err, sizeof err);
    if (nt == nullptr) return Status::invalid_argument("topic '" + topic + "': " + err);
    if (cfg.retention_ms >= 0)
      rd_kafka_NewTopic_set_config(nt, "retention.ms", std::to_string(cfg.retention_ms).c_str());
    if (cfg.retention_bytes >= 0)
      rd_kafka_NewTopic_set_config(nt, "retention.bytes", std::to_string(cfg.retention_bytes).c_str());
    rd_kafka_AdminOptions_t* options =
        rd_kafka_AdminOptions_new(cluster_->meta(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, kAdminTimeoutMs, err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(options, kAdminTimeoutMs, err, sizeof err);
    const std::string context = "creating topic '" + topic + "' on " + cluster_->where();
    auto ev = admin_call(
        context, [&](rd_kafka_queue_t* q) { rd_kafka_CreateTopics(cluster_->meta(), &nt, 1, options, q); },
        kAdminTimeoutMs + 5000);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(nt);
    if (!ev.is_ok() && ev.status().code() == Code::kTimeout) {
      return Status::timeout(
          context +
          ": no answer (a cluster without CreateTopics, such as librdkafka's mock, needs the topic "
          "created with its own tools, e.g. `create-topic` in sluice-kafka-mock)");
    }
    SLUICE_RETURN_IF_ERROR(ev.status());
    size_t n = 0;
    const rd_kafka_topic_result_t** res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) return {};  // raced; same_count decides
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* detail = rd_kafka_topic_result_error_string(res[i]);
        return kafka_status(e, context + (detail != nullptr ? std::string(": ") + detail : std::string()));
      }
    }
    return {};
  }

  // ListGroups into names; decides Cluster::group_api. Also the probe for DescribeGroups: asking a
  // cluster that lacks DescribeGroups leaves librdkafka 2.0.2 deadlocked in rd_kafka_destroy(), so
  // it is only asked once ListGroups (which came with it in Kafka 0.9) was answered.
  Status list_with_request(std::set<std::string>& names) {
    if (cluster_->group_api.load() == Cluster::Support::kNo) return {};
    const std::string context = "listing the groups of " + cluster_->where();
    SLUICE_ASSIGN_OR_RETURN(EventPtr ev, admin_call(context, [&](rd_kafka_queue_t* q) {
                              rd_kafka_ListConsumerGroups(cluster_->meta(), nullptr, q);
                            }));
    const auto* res = rd_kafka_event_ListConsumerGroups_result(ev.get());
    size_t n = 0;
    const rd_kafka_ConsumerGroupListing_t** valid = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    for (size_t i = 0; i < n; ++i) names.insert(rd_kafka_ConsumerGroupListing_group_id(valid[i]));
    size_t nerr = 0;
    const rd_kafka_error_t** errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    size_t unsupported = 0;
    for (size_t i = 0; i < nerr; ++i) {
      if (rd_kafka_error_code(errs[i]) == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
        ++unsupported;
      } else {
        return kafka_status(errs[i], context);
      }
    }
    cluster_->group_api.store(unsupported > 0 && n == 0 ? Cluster::Support::kNo : Cluster::Support::kYes);
    return {};
  }

  // Fills info.state/members, the owner of each assigned partition and the group's topics.
  Status members(const std::string& group, GroupInfo& info,
                 std::map<TopicPartition, std::string, TpLess>& owners, std::set<std::string>& topics) {
    if (cluster_->group_api.load() == Cluster::Support::kUnknown) {
      std::set<std::string> ignored;
      SLUICE_RETURN_IF_ERROR(list_with_request(ignored));
    }
    if (cluster_->group_api.load() == Cluster::Support::kYes)
      return describe_with_request(group, info, owners, topics);
    // The cluster cannot describe groups: what this process's consumers know.
    auto local = GroupRegistry::instance().get(cluster_->bootstrap(), group);
    info.state = "empty";
    if (!local) return {};
    topics = local->topics;
    for (const auto& m : local->members) {
      info.members.push_back(m.name);
      for (const auto& tp : m.assignment) owners[tp] = m.name;
    }
    if (!info.members.empty()) info.state = "active";
    return {};
  }

  Status describe_with_request(const std::string& group, GroupInfo& info,
                               std::map<TopicPartition, std::string, TpLess>& owners,
                               std::set<std::string>& topics) {
    const std::string context = "describing group '" + group + "' on " + cluster_->where();
    const char* groups[] = {group.c_str()};
    SLUICE_ASSIGN_OR_RETURN(EventPtr ev, admin_call(context, [&](rd_kafka_queue_t* q) {
                              rd_kafka_DescribeConsumerGroups(cluster_->meta(), groups, 1, nullptr, q);
                            }));
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** descs = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &n);
    if (n != 1) return Status::internal(context + ": " + std::to_string(n) + " descriptions for one group");
    SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_ConsumerGroupDescription_error(descs[0]), context));
    const auto state = rd_kafka_ConsumerGroupDescription_state(descs[0]);
    info.state = state == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY ||
                         state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD ||
                         state == RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN
                     ? "empty"
                     : "active";
    const size_t members = rd_kafka_ConsumerGroupDescription_member_count(descs[0]);
    for (size_t i = 0; i < members; ++i) {
      const auto* m = rd_kafka_ConsumerGroupDescription_member(descs[0], i);
      std::string name = rd_kafka_MemberDescription_client_id(m);
      info.members.push_back(name);
      const auto* parts = rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
      for (int j = 0; parts != nullptr && j < parts->cnt; ++j) {
        owners[TopicPartition{parts->elems[j].topic, PartitionId(parts->elems[j].partition)}] = name;
        topics.insert(parts->elems[j].topic);
      }
    }
    if (info.members.empty()) info.state = "empty";
    // The topics the group committed on, members or not.
    if (auto local = GroupRegistry::instance().get(cluster_->bootstrap(), group))
      topics.insert(local->topics.begin(), local->topics.end());
    return committed_topics(group, topics);
  }

  // Adds the topics group has committed offsets on (OffsetFetch for all topics).
  Status committed_topics(const std::string& group, std::set<std::string>& topics) {
    const std::string context = "listing the offsets of group '" + group + "' on " + cluster_->where();
    SLUICE_ASSIGN_OR_RETURN(EventPtr ev, admin_call(context, [&](rd_kafka_queue_t* q) {
                              rd_kafka_ListConsumerGroupOffsets_t* req =
                                  rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), nullptr);
                              rd_kafka_ListConsumerGroupOffsets(cluster_->meta(), &req, 1, nullptr, q);
                              rd_kafka_ListConsumerGroupOffsets_destroy(req);
                            }));
    size_t n = 0;
    const rd_kafka_group_result_t** res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_group_result_error(res[i]), context));
      const auto* parts = rd_kafka_group_result_partitions(res[i]);
      for (int j = 0; parts != nullptr && j < parts->cnt; ++j) topics.insert(parts->elems[j].topic);
    }
    return {};
  }

  // The first offset whose timestamp is at or after ts.
  Result<int64_t> offset_for_time(const std::string& topic, int32_t p, int64_t ts,
                                  std::pair<int64_t, int64_t> wm) {
    if (wm.first >= wm.second) return wm.second;
    TplPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = ts;
    const std::string context =
        "looking up time " + std::to_string(ts) + " in " + tp_name(topic, p) + " on " + cluster_->where();
    // The answer overwrites the query's offset, so each try sets it again.
    auto lookup = [&] {
      list->elems[0].offset = ts;
      return rd_kafka_offsets_for_times(cluster_->meta(), list.get(), kAdminTimeoutMs);
    };
    SLUICE_RETURN_IF_ERROR(kafka_status(retry_transient(lookup, kAdminTimeoutMs), context));
    SLUICE_RETURN_IF_ERROR(kafka_status(list->elems[0].err, context));
    const int64_t answer = list->elems[0].offset;
    if (answer >= 0) return std::clamp(answer, wm.first, wm.second);
    // "No message at or after ts" (-1) is checked against the last message: a cluster without a
    // time index (librdkafka's mock) answers -1 for every time, and then the partition is read.
    SLUICE_ASSIGN_OR_RETURN(int64_t found, scan_for_time(topic, p, ts, wm.second - 1, wm.second));
    if (found == wm.second) return wm.second;
    return scan_for_time(topic, p, ts, wm.first, wm.second);
  }

  // Reads topic/p from `from` up to end and returns the first offset with a timestamp >= ts (end
  // when none has).
  Result<int64_t> scan_for_time(const std::string& topic, int32_t p, int64_t ts, int64_t from, int64_t end) {
    // librdkafka 2.0.2 refuses assign() without a group.id; this one is never joined nor committed.
    SLUICE_ASSIGN_OR_RETURN(ConfPtr conf, cluster_->make_conf(Scope::kConsumer, {},
                                                              {{"group.id", "sluice-offset-scan"},
                                                               {"enable.auto.commit", "false"},
                                                               {"enable.auto.offset.store", "false"}}));
    SLUICE_ASSIGN_OR_RETURN(RkPtr rk, cluster_->make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    TplPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = from;
    const std::string context = "reading " + tp_name(topic, p) + " on " + cluster_->where();
    SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_assign(rk.get(), list.get()), context));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAdminTimeoutMs);
    int64_t next = from;
    Result<int64_t> result = end;
    while (next < end) {
      if (std::chrono::steady_clock::now() > deadline) {
        result = Status::timeout(context + ": the partition could not be read to " + std::to_string(end) +
                                 " in time");
        break;
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
      if (m == nullptr) continue;
      const bool ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
      const int64_t offset = m->offset;
      rd_kafka_timestamp_type_t type;
      const int64_t mts = rd_kafka_message_timestamp(m, &type);
      rd_kafka_message_destroy(m);
      if (!ok) continue;
      if (mts >= ts) {
        result = offset;
        break;
      }
      next = offset + 1;
    }
    rd_kafka_consumer_close(rk.get());
    return result;
  }

  // Joins group alone, takes topic's partitions and commits offsets within its generation.
  Status commit_as_member(const std::string& group, const std::string& topic,
                          const rd_kafka_topic_partition_list_t* offsets) {
    const std::string context =
        "moving the offsets of group '" + group + "' on topic '" + topic + "' on " + cluster_->where();
    SLUICE_ASSIGN_OR_RETURN(
        ConfPtr conf,
        cluster_->make_conf(Scope::kConsumer, {{"partition.assignment.strategy", "cooperative-sticky"}},
                            {{"group.id", group},
                             {"client.id", "sluice-admin-reset"},
                             {"enable.auto.commit", "false"},
                             {"enable.auto.offset.store", "false"}}));
    SLUICE_ASSIGN_OR_RETURN(RkPtr rk, cluster_->make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    rd_kafka_poll_set_consumer(rk.get());
    TplPtr subs(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(subs.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    SLUICE_RETURN_IF_ERROR(kafka_status(rd_kafka_subscribe(rk.get(), subs.get()), context));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAdminTimeoutMs * 2);
    Status st = Status::timeout(context + ": could not join the group in time");
    while (std::chrono::steady_clock::now() < deadline) {
      // The default rebalance handling assigns; messages fetched meanwhile are dropped uncommitted.
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100)) rd_kafka_message_destroy(m);
      rd_kafka_topic_partition_list_t* assigned = nullptr;
      if (rd_kafka_assignment(rk.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      TplPtr owned(assigned);
      if (owned->cnt == 0) continue;
      st = kafka_status(rd_kafka_commit(rk.get(), offsets, 0), context);
      break;
    }
    rd_kafka_consumer_close(rk.get());
    return st;
  }

  // A consumer client of group that never joins it, for OffsetFetch and OffsetCommit.
  // Shared: an evicted client stays alive while a caller still uses it.
  Result<std::shared_ptr<rd_kafka_t>> group_client(const std::string& group) {
    std::lock_guard lock(mu_);
    auto it = group_clients_.find(group);
    if (it != group_clients_.end()) return it->second;
    if (group_clients_.size() >= kMaxGroupClients) group_clients_.erase(group_clients_.begin());
    SLUICE_ASSIGN_OR_RETURN(
        ConfPtr conf,
        cluster_->make_conf(Scope::kConsumer, {}, {{"group.id", group}, {"enable.auto.commit", "false"}}));
    SLUICE_ASSIGN_OR_RETURN(RkPtr rk, cluster_->make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    std::shared_ptr<rd_kafka_t> shared(rk.release(), RkDeleter());
    group_clients_.emplace(group, shared);
    return shared;
  }

  std::shared_ptr<Cluster> cluster_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<rd_kafka_t>> group_clients_;
};

}  // namespace

std::unique_ptr<Admin> make_kafka_admin(std::shared_ptr<Cluster> cluster) {
  return std::make_unique<KafkaAdmin>(std::move(cluster));
}

}  // namespace sluice::queue::kafka
