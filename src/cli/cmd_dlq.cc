// `sluice dlq list` shows the dead letters of every `<topic>.dlq` (or one topic's); `sluice dlq
// replay (--doc ID... | --all)` sends chosen dead letters back to the topic they failed on.
//
// Reading them, the replay ledger and the at-least-once replay are pipeline/dead_letters.h's; this
// file holds the flags, which dead letters --doc/--all choose, the table and JSON output, and the
// exit codes.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "cli/common.h"
#include "cli/held.h"
#include "pipeline/dead_letters.h"
#include "pipeline/stage_runner.h"

namespace sluice::cli {
namespace {

using ordered_json = nlohmann::ordered_json;
using pipeline::DeadLetter;

// The table shows error messages up to this many characters; --json shows them whole.
constexpr size_t kTableErrorChars = 60;

struct DlqFlags {
  QueueFlags queue;   // given after `list` / `replay`
  QueueFlags parent;  // given after `dlq`
  std::string topic;
  bool json = false;
  std::vector<std::string> docs;
  bool all = false;
};

std::string scope_name(const std::string& topic) {
  if (topic.empty()) return "any dead-letter topic";
  return pipeline::dlq_topic_name(topic);
}

// ------------------------------------------------------------------------------------------------
// list

ordered_json optional_bytes(std::optional<std::string_view> v) {
  return v ? bytes_to_json(*v) : ordered_json(nullptr);
}

ordered_json dead_letter_json(const DeadLetter& d) {
  ordered_json j = ordered_json::object();
  j["dlq_topic"] = d.at.topic;
  j["partition"] = d.at.partition;
  j["offset"] = d.at.offset;
  j["doc_id"] = d.key ? bytes_to_json(*d.key) : ordered_json(nullptr);
  j["failed_stage"] = optional_bytes(d.header(pipeline::kHeaderFailedStage));
  j["original_topic"] = d.original_topic();
  j["error_class"] = optional_bytes(d.header(pipeline::kHeaderErrorClass));
  j["error_message"] = optional_bytes(d.header(pipeline::kHeaderErrorMessage));
  auto attempts = d.attempts();
  j["attempts"] = attempts ? ordered_json(*attempts) : ordered_json(nullptr);
  j["timestamp"] = d.timestamp_ms;
  j["time"] = iso8601_utc(d.timestamp_ms);
  j["trace_id"] = optional_bytes(d.header("trace_id"));
  j["replayed"] = d.replayed_at.has_value();
  j["replayed_at"] = d.replayed_at ? ordered_json(*d.replayed_at) : ordered_json(nullptr);
  return j;
}

int run_list(queue::Queue& q, const DlqFlags& f) {
  auto letters = pipeline::load_dead_letters(q, f.topic);
  if (!letters.is_ok()) return report(letters.status());
  if (letters->empty()) {
    std::fprintf(stderr, "no dead letters in %s\n", scope_name(f.topic).c_str());
    return kExitOk;
  }
  if (f.json) {
    std::string out;
    for (const DeadLetter& d : *letters) out += dump_line(dead_letter_json(d));
    return print_or_fail(out);
  }
  // The free-text error comes last: format_table pads by bytes, so a Chinese message would shift
  // every column after it.
  std::vector<std::vector<std::string>> rows = {{"DLQ-TOPIC", "PARTITION", "OFFSET", "DOC-ID", "STAGE",
                                                 "ORIGINAL-TOPIC", "ATTEMPTS", "TIME", "TRACE-ID", "REPLAYED",
                                                 "ERROR-CLASS", "ERROR"}};
  size_t replayed = 0;
  for (const DeadLetter& d : *letters) {
    auto attempts = d.attempts();
    if (d.replayed_at) ++replayed;
    rows.push_back({d.at.topic, std::to_string(d.at.partition), std::to_string(d.at.offset),
                    table_cell(d.key ? std::optional<std::string_view>(*d.key) : std::nullopt),
                    table_cell(d.header(pipeline::kHeaderFailedStage)), table_cell(d.original_topic()),
                    attempts ? std::to_string(*attempts) : "-", iso8601_utc(d.timestamp_ms),
                    table_cell(d.header("trace_id")), d.replayed_at ? "yes" : "no",
                    table_cell(d.header(pipeline::kHeaderErrorClass)),
                    table_cell(d.header(pipeline::kHeaderErrorMessage), kTableErrorChars)});
  }
  int code = print_or_fail(format_table(rows));
  std::fprintf(stderr, "%zu dead letters, %zu replayed\n", letters->size(), replayed);
  return code;
}

// ------------------------------------------------------------------------------------------------
// replay

HeldWords words(const DlqFlags& f) {
  return {"dead letter", "dead letters", "replayed", "replay", scope_name(f.topic), "sluice dlq list"};
}

// The dead letters --doc/--all choose, not yet replayed, oldest first.
Result<std::vector<const DeadLetter*>> choose(const std::vector<DeadLetter>& letters, const DlqFlags& f) {
  std::vector<const DeadLetter*> all;
  for (const DeadLetter& d : letters) all.push_back(&d);
  return choose_held(all, f.docs, f.all, words(f));
}

int run_replay(queue::Queue& q, const DlqFlags& f) {
  if (!f.all && f.docs.empty()) return usage_error("say what to replay: --doc ID (one or more) or --all");
  for (const std::string& id : f.docs)
    if (id.empty()) return usage_error("--doc needs a non-empty doc id");
  auto letters = pipeline::load_dead_letters(q, f.topic);
  if (!letters.is_ok()) return report(letters.status());
  auto chosen_or = choose(*letters, f);
  if (!chosen_or.is_ok()) return report(chosen_or.status());
  const std::vector<const DeadLetter*>& chosen = *chosen_or;
  if (chosen.empty()) {
    if (f.all) {
      std::fprintf(stderr, "sluice: nothing to replay: %s\n",
                   letters->empty() ? ("no dead letters in " + scope_name(f.topic)).c_str()
                                    : "every dead letter was already replayed");
    }
    if (f.json) return kExitOk;
    return print_or_fail("replayed 0 dead letters\n");
  }

  auto replay = pipeline::replay_dead_letters(q, chosen);
  if (!replay.is_ok()) return report(replay.status());
  const pipeline::ReplayResult& r = *replay;

  std::map<std::string, size_t> per_topic;
  for (const pipeline::Replayed& p : r.replayed) ++per_topic[p.to.topic];
  std::string out;
  if (f.json) {
    for (const pipeline::Replayed& p : r.replayed) {
      const DeadLetter& d = *p.letter;
      ordered_json j = ordered_json::object();
      j["dlq_topic"] = d.at.topic;
      j["partition"] = d.at.partition;
      j["offset"] = d.at.offset;
      j["doc_id"] = d.key ? bytes_to_json(*d.key) : ordered_json(nullptr);
      j["topic"] = p.to.topic;
      j["to_partition"] = p.to.partition;
      j["to_offset"] = p.to.offset;
      j["trace_id"] = optional_bytes(d.header("trace_id"));
      out += dump_line(j);
    }
  } else {
    out = "replayed " + std::to_string(r.replayed.size()) + " dead letter" +
          (r.replayed.size() == 1 ? "" : "s");
    std::string parts;
    for (const auto& [topic, n] : per_topic)
      parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " to " + topic;
    if (!parts.empty()) out += ": " + parts;
    out += "\n";
  }
  return finish_send(r, chosen.size(), print_or_fail(out), words(f));
}

}  // namespace

Command add_dlq_command(CLI::App& root) {
  auto flags = std::make_shared<DlqFlags>();
  CLI::App* app =
      root.add_subcommand("dlq", "Show dead letters (<topic>.dlq) and send them back to their topics");
  app->require_subcommand(1);
  add_queue_options(*app, flags->parent);

  CLI::App* list = app->add_subcommand(
      "list", "List the dead letters of every <topic>.dlq, oldest first, and whether each was replayed");
  add_queue_options(*list, flags->queue);
  list->add_option("--topic", flags->topic, "Only this topic's dead letters (T or T.dlq)");
  list->add_flag("--json", flags->json, "Print one JSON object per dead letter per line (full values)");

  CLI::App* replay = app->add_subcommand(
      "replay", "Send dead letters back to their original topic (attempt 1, same key, value and trace_id)");
  add_queue_options(*replay, flags->queue);
  CLI::Option* doc =
      replay->add_option("--doc", flags->docs, "Replay this document's dead letters (repeatable)");
  CLI::Option* all = replay->add_flag("--all", flags->all, "Replay every dead letter not yet replayed");
  all->excludes(doc);
  replay->add_option("--topic", flags->topic, "Only dead letters of this topic (T or T.dlq)");
  replay->add_flag("--json", flags->json, "Print one JSON object per replayed dead letter per line");

  return {app, [flags, list, replay] {
            auto q = open_queue(merge_queue_flags(flags->queue, flags->parent));
            if (!q.is_ok()) return report(q.status());
            if (list->parsed()) return run_list(**q, *flags);
            if (replay->parsed()) return run_replay(**q, *flags);
            return usage_error("dlq needs a subcommand: list or replay");
          }};
}

}  // namespace sluice::cli
