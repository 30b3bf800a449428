// `sluice topics`: lists topics with their partitions' offsets; `topics create` and
// `topics describe` make and show one topic.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"

namespace sluice::cli {
namespace {

struct TopicsFlags {
  QueueFlags queue;
  bool json = false;
  std::string name;  // create / describe
  int32_t partitions = 1;
  int64_t retention_ms = -1;
  int64_t retention_bytes = -1;
};

// False on a backend without offsets (RabbitMQ): its start and end are unknown, shown as "-".
bool has_offsets(const queue::PartitionInfo& p) {
  return p.start.value() >= 0;
}

// START, END and MESSAGES of a table row.
std::vector<std::string> offset_cells(const queue::PartitionInfo& p) {
  if (!has_offsets(p)) return {"-", "-", "-"};
  return {std::to_string(p.start.value()), std::to_string(p.end.value()), std::to_string(p.end - p.start)};
}

nlohmann::ordered_json topic_json(const queue::TopicInfo& t) {
  nlohmann::ordered_json parts = nlohmann::ordered_json::array();
  for (const queue::PartitionInfo& p : t.partition_info) {
    if (!has_offsets(p)) {
      parts.push_back(
          {{"partition", p.partition.value()}, {"start", nullptr}, {"end", nullptr}, {"messages", nullptr}});
      continue;
    }
    parts.push_back({{"partition", p.partition.value()},
                     {"start", p.start.value()},
                     {"end", p.end.value()},
                     {"messages", p.end - p.start}});
  }
  return {{"name", t.name}, {"partitions", t.partitions}, {"partition_info", std::move(parts)}};
}

int print_or_fail(const std::string& text) {
  if (write_stdout(text)) return kExitOk;
  return report(Status::io_error("writing to stdout failed"));
}

int run_list(queue::Admin& admin, const TopicsFlags& f) {
  auto listed = admin.list_topics();
  if (!listed.is_ok()) return report(listed.status());
  std::vector<queue::TopicInfo> topics;
  for (const queue::TopicInfo& t : *listed) {
    auto info = admin.describe_topic(t.name);  // list_topics leaves the offsets out
    if (!info.is_ok()) return report(info.status());
    topics.push_back(std::move(info).value());
  }
  std::sort(topics.begin(), topics.end(), [](const auto& a, const auto& b) { return a.name < b.name; });

  std::string out;
  if (f.json) {
    for (const queue::TopicInfo& t : topics) out += dump_line(topic_json(t));
    return print_or_fail(out);
  }
  if (topics.empty()) {
    std::fputs("no topics\n", stderr);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "PARTITIONS", "PARTITION", "START", "END", "MESSAGES"}};
  for (const queue::TopicInfo& t : topics) {
    for (const queue::PartitionInfo& p : t.partition_info) {
      std::vector<std::string> row = {t.name, std::to_string(t.partitions),
                                      std::to_string(p.partition.value())};
      for (auto& c : offset_cells(p)) row.push_back(std::move(c));
      rows.push_back(std::move(row));
    }
    if (t.partition_info.empty()) rows.push_back({t.name, std::to_string(t.partitions), "-", "-", "-", "-"});
  }
  return print_or_fail(format_table(rows));
}

int run_describe(queue::Admin& admin, const TopicsFlags& f) {
  if (Status st = queue::validate_topic_name(f.name); !st.is_ok()) return report(st);
  auto info = admin.describe_topic(f.name);
  if (!info.is_ok()) return report(info.status());
  if (f.json) return print_or_fail(dump_line(topic_json(*info)));
  std::string out = "Topic: " + info->name + "\nPartitions: " + std::to_string(info->partitions) + "\n\n";
  std::vector<std::vector<std::string>> rows = {{"PARTITION", "START", "END", "MESSAGES"}};
  for (const queue::PartitionInfo& p : info->partition_info) {
    std::vector<std::string> row = {std::to_string(p.partition.value())};
    for (auto& c : offset_cells(p)) row.push_back(std::move(c));
    rows.push_back(std::move(row));
  }
  return print_or_fail(out + format_table(rows));
}

int run_create(queue::Admin& admin, const TopicsFlags& f) {
  if (Status st = queue::validate_topic_name(f.name); !st.is_ok()) return report(st);
  // Looked up first only to tell "created" from "already there"; create_topic decides.
  auto before = admin.describe_topic(f.name);
  queue::TopicConfig cfg;
  cfg.partitions = f.partitions;
  cfg.retention_ms = f.retention_ms;
  cfg.retention_bytes = f.retention_bytes;
  if (Status st = admin.create_topic(f.name, cfg); !st.is_ok()) return report(st);
  if (before.is_ok()) {
    return print_or_fail("topic " + f.name + " already exists with " + std::to_string(before->partitions) +
                         " partitions\n");
  }
  return print_or_fail("created topic " + f.name + " with " + std::to_string(f.partitions) + " partitions\n");
}

}  // namespace

Command add_topics_command(CLI::App& root) {
  auto flags = std::make_shared<TopicsFlags>();
  CLI::App* app = root.add_subcommand("topics", "List topics with their partitions' start and end offsets");
  add_queue_options(*app, flags->queue);
  app->add_flag("--json", flags->json, "Print one JSON object per topic per line");

  // The nested commands take --queue/--data/--json from `topics` (fallthrough), in any position.
  CLI::App* create = app->add_subcommand("create", "Create a topic");
  create->fallthrough();
  create->footer("Also takes --queue and --data (see `sluice topics --help`).");
  create->add_option("NAME", flags->name, "The topic's name")->required();
  create->add_option("--partitions", flags->partitions, "Number of partitions (default 1)")
      ->check(CLI::Range(1, 1 << 20));
  create->add_option("--retention-ms", flags->retention_ms, "Delete data older than this (default: keep)");
  create->add_option("--retention-bytes", flags->retention_bytes,
                     "Delete the oldest data past this size (default: keep)");

  CLI::App* describe = app->add_subcommand("describe", "Show one topic's partitions and offsets");
  describe->fallthrough();
  describe->footer("Also takes --queue, --data and --json (see `sluice topics --help`).");
  describe->add_option("NAME", flags->name, "The topic's name")->required();

  return {app, [flags, create, describe] {
            auto q = open_queue(flags->queue, /*create=*/create->parsed());
            if (!q.is_ok()) return report(q.status());
            queue::Admin& admin = (*q)->admin();
            if (create->parsed()) return run_create(admin, *flags);
            if (describe->parsed()) return run_describe(admin, *flags);
            return run_list(admin, *flags);
          }};
}

}  // namespace sluice::cli
