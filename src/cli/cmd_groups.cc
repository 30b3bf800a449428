// `sluice groups [GROUP]`: lists consumer groups, or shows one group's committed offsets, end
// offsets, lag and owners per partition (as `kafka-consumer-groups --describe`).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "cli/common.h"

namespace sluice::cli {
namespace {

struct GroupsFlags {
  QueueFlags queue;
  std::string group;
  bool json = false;
};

void sort_partitions(queue::GroupInfo& g) {
  std::sort(g.partitions.begin(), g.partitions.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
}

int64_t total_lag(const queue::GroupInfo& g) {
  int64_t lag = 0;
  for (const queue::GroupPartition& p : g.partitions) lag += p.lag;
  return lag;
}

nlohmann::ordered_json group_json(const queue::GroupInfo& g) {
  nlohmann::ordered_json parts = nlohmann::ordered_json::array();
  for (const queue::GroupPartition& p : g.partitions) {
    nlohmann::ordered_json row = nlohmann::ordered_json::object();
    row["topic"] = p.topic;
    row["partition"] = p.partition.value();
    row["committed"] =
        p.committed ? nlohmann::ordered_json(p.committed->value()) : nlohmann::ordered_json(nullptr);
    row["end"] = p.end.value();
    row["lag"] = p.lag;
    row["member"] = p.member.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(p.member);
    parts.push_back(std::move(row));
  }
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["group"] = g.group;
  j["state"] = g.state;
  j["members"] = g.members;
  j["lag"] = total_lag(g);
  j["partitions"] = std::move(parts);
  return j;
}

int print_or_fail(const std::string& text) {
  if (write_stdout(text)) return kExitOk;
  return report(Status::io_error("writing to stdout failed"));
}

int run_list(queue::Admin& admin, const GroupsFlags& f) {
  auto names = admin.list_groups();
  if (!names.is_ok()) return report(names.status());
  std::vector<std::string> sorted = *names;
  std::sort(sorted.begin(), sorted.end());
  std::vector<queue::GroupInfo> groups;
  for (const std::string& name : sorted) {
    auto info = admin.describe_group(name);
    if (!info.is_ok()) return report(info.status());
    groups.push_back(std::move(info).value());
    sort_partitions(groups.back());
  }
  if (f.json) {
    std::string out;
    for (const queue::GroupInfo& g : groups) out += dump_line(group_json(g));
    return print_or_fail(out);
  }
  if (groups.empty()) {
    std::fputs("no consumer groups\n", stderr);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"GROUP", "STATE", "MEMBERS", "LAG"}};
  for (const queue::GroupInfo& g : groups) {
    rows.push_back({g.group, g.state, std::to_string(g.members.size()), std::to_string(total_lag(g))});
  }
  return print_or_fail(format_table(rows));
}

int run_describe(queue::Admin& admin, const GroupsFlags& f) {
  auto info = admin.describe_group(f.group);
  if (!info.is_ok()) return report(info.status());
  queue::GroupInfo g = std::move(info).value();
  sort_partitions(g);
  if (f.json) return print_or_fail(dump_line(group_json(g)));

  std::string members;
  for (const std::string& m : g.members) members += (members.empty() ? "" : ", ") + m;
  std::string out = "Group: " + g.group + "\nState: " + g.state +
                    "\nMembers: " + (members.empty() ? std::string("(none)") : members) + "\n\n";
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"}};
  for (const queue::GroupPartition& p : g.partitions) {
    rows.push_back({p.topic, std::to_string(p.partition.value()),
                    p.committed ? std::to_string(p.committed->value()) : "-", std::to_string(p.end.value()),
                    std::to_string(p.lag), p.member.empty() ? "-" : p.member});
  }
  return print_or_fail(out + format_table(rows));
}

}  // namespace

Command add_groups_command(CLI::App& root) {
  auto flags = std::make_shared<GroupsFlags>();
  CLI::App* app = root.add_subcommand(
      "groups", "List consumer groups, or show one group's offsets, lag and members per partition");
  app->add_option("GROUP", flags->group, "Show this group in detail");
  add_queue_options(*app, flags->queue);
  app->add_flag("--json", flags->json, "Print JSON (one object per group per line)");
  return {app, [flags] {
            auto q = open_queue(flags->queue);
            if (!q.is_ok()) return report(q.status());
            queue::Admin& admin = (*q)->admin();
            return flags->group.empty() ? run_list(admin, *flags) : run_describe(admin, *flags);
          }};
}

}  // namespace sluice::cli
