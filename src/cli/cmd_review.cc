// `sluice review list` shows the documents the quality gate holds on doc_review (low OCR
// confidence, too many empty pages) and why; `sluice review release (--doc ID... | --all)` sends
// them on past the gate, to embed and index.
//
// Reading them, the ledger and the at-least-once send are pipeline/review.h's; the choosing, the
// table cells and the exit codes are shared with `sluice dlq` (cli/held.h). This file holds the
// flags and the output.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "cli/common.h"
#include "cli/held.h"
#include "pipeline/review.h"

namespace sluice::cli {
namespace {

using ordered_json = nlohmann::ordered_json;
using pipeline::HeldDocument;

// The table shows reasons up to this many characters; --json shows them whole.
constexpr size_t kTableReasonChars = 80;

struct ReviewFlags {
  QueueFlags queue;   // given after `list` / `release`
  QueueFlags parent;  // given after `review`
  bool json = false;
  std::vector<std::string> docs;
  bool all = false;
};

const HeldWords& words() {
  static const HeldWords w{"held document", "held documents",       "released",
                           "release",       pipeline::kTopicReview, "sluice review list"};
  return w;
}

std::string source_of(const HeldDocument& d) {
  if (!d.work) return {};
  const pipeline::SourceRef& s = d.work->task.source;
  return s.key.empty() || !s.bucket.empty() ? s.uri : s.key;
}

std::string confidence_text(const HeldDocument& d) {
  if (!d.work || !d.work->ocr || !d.work->ocr->mean_confidence) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", *d.work->ocr->mean_confidence);
  return buf;
}

ordered_json held_json(const HeldDocument& d) {
  const pipeline::DeadLetter& m = d.message;
  ordered_json j = ordered_json::object();
  j["doc_id"] = m.key ? bytes_to_json(*m.key) : ordered_json(nullptr);
  j["source"] = d.work ? ordered_json(source_of(d)) : ordered_json(nullptr);
  j["format"] = d.work ? ordered_json(d.work->format) : ordered_json(nullptr);
  j["pages"] = d.work ? ordered_json(d.work->pages) : ordered_json(nullptr);
  j["empty_pages"] = d.work ? ordered_json(d.work->empty_pages) : ordered_json(nullptr);
  j["ocr_pages"] = d.work && d.work->ocr ? ordered_json(d.work->ocr->pages) : ordered_json(0);
  j["ocr_confidence"] = d.work && d.work->ocr && d.work->ocr->mean_confidence
                            ? ordered_json(*d.work->ocr->mean_confidence)
                            : ordered_json(nullptr);
  j["reason"] = d.reason;
  j["topic"] = m.at.topic;
  j["partition"] = m.at.partition;
  j["offset"] = m.at.offset;
  j["timestamp"] = m.timestamp_ms;
  j["time"] = iso8601_utc(m.timestamp_ms);
  auto trace = m.header("trace_id");
  j["trace_id"] = trace ? bytes_to_json(*trace) : ordered_json(nullptr);
  j["released"] = m.replayed_at.has_value();
  j["released_at"] = m.replayed_at ? ordered_json(*m.replayed_at) : ordered_json(nullptr);
  return j;
}

int run_list(queue::Queue& q, const ReviewFlags& f) {
  auto held = pipeline::load_held_for_review(q);
  if (!held.is_ok()) return report(held.status());
  if (held->empty()) {
    std::fprintf(stderr, "no documents held for review in %s\n", pipeline::kTopicReview);
    return kExitOk;
  }
  if (f.json) {
    std::string out;
    for (const HeldDocument& d : *held) out += dump_line(held_json(d));
    return print_or_fail(out);
  }
  // Free text last: format_table pads by bytes, so a Chinese path or reason would shift the columns.
  std::vector<std::vector<std::string>> rows = {
      {"DOC-ID", "PAGES", "EMPTY", "OCR-CONF", "TIME", "RELEASED", "SOURCE", "REASON"}};
  size_t released = 0;
  for (const HeldDocument& d : *held) {
    const pipeline::DeadLetter& m = d.message;
    if (m.replayed_at) ++released;
    rows.push_back({table_cell(m.key ? std::optional<std::string_view>(*m.key) : std::nullopt),
                    d.work ? std::to_string(d.work->pages) : "-",
                    d.work ? std::to_string(d.work->empty_pages) : "-", confidence_text(d),
                    iso8601_utc(m.timestamp_ms), m.replayed_at ? "yes" : "no", table_cell(source_of(d)),
                    table_cell(d.reason, kTableReasonChars)});
  }
  int code = print_or_fail(format_table(rows));
  std::fprintf(stderr, "%zu held documents, %zu released\n", held->size(), released);
  return code;
}

int run_release(queue::Queue& q, const ReviewFlags& f) {
  if (!f.all && f.docs.empty()) return usage_error("say what to release: --doc ID (one or more) or --all");
  for (const std::string& id : f.docs)
    if (id.empty()) return usage_error("--doc needs a non-empty doc id");
  auto held = pipeline::load_held_for_review(q);
  if (!held.is_ok()) return report(held.status());
  std::vector<const pipeline::DeadLetter*> messages;
  for (const HeldDocument& d : *held) messages.push_back(&d.message);
  auto chosen_or = choose_held(messages, f.docs, f.all, words());
  if (!chosen_or.is_ok()) return report(chosen_or.status());
  const std::vector<const pipeline::DeadLetter*>& chosen = *chosen_or;
  if (chosen.empty()) {
    if (f.all) {
      std::fprintf(
          stderr, "sluice: nothing to release: %s\n",
          held->empty() ? "no documents are held for review" : "every held document was already released");
    }
    if (f.json) return kExitOk;
    return print_or_fail("released 0 held documents\n");
  }

  auto sent = pipeline::release_from_review(q, chosen);
  if (!sent.is_ok()) return report(sent.status());
  const pipeline::ReplayResult& r = *sent;
  std::string out;
  if (f.json) {
    for (const pipeline::Replayed& p : r.replayed) {
      const pipeline::DeadLetter& d = *p.letter;
      ordered_json j = ordered_json::object();
      j["doc_id"] = d.key ? bytes_to_json(*d.key) : ordered_json(nullptr);
      j["topic"] = p.to.topic;
      j["partition"] = p.to.partition;
      j["offset"] = p.to.offset;
      auto trace = d.header("trace_id");
      j["trace_id"] = trace ? bytes_to_json(*trace) : ordered_json(nullptr);
      out += dump_line(j);
    }
  } else {
    out = "released " + std::to_string(r.replayed.size()) + " held document" +
          (r.replayed.size() == 1 ? "" : "s") + " to " + pipeline::kTopicParsed +
          " (embed and index take them from there)\n";
  }
  return finish_send(r, chosen.size(), print_or_fail(out), words());
}

}  // namespace

Command add_review_command(CLI::App& root) {
  auto flags = std::make_shared<ReviewFlags>();
  CLI::App* app = root.add_subcommand(
      "review", "Show the documents the quality gate holds on doc_review and release them to the index");
  app->require_subcommand(1);
  add_queue_options(*app, flags->parent);

  CLI::App* list = app->add_subcommand(
      "list", "List the documents held for review (low OCR confidence, too many empty pages), oldest first");
  add_queue_options(*list, flags->queue);
  list->add_flag("--json", flags->json, "Print one JSON object per held document per line");

  CLI::App* release = app->add_subcommand(
      "release", "Send held documents on past the gate to doc_parsed (then embed and index), same trace_id");
  add_queue_options(*release, flags->queue);
  CLI::Option* doc = release->add_option("--doc", flags->docs, "Release this document (repeatable)");
  CLI::Option* all = release->add_flag("--all", flags->all, "Release every held document not yet released");
  all->excludes(doc);
  release->add_flag("--json", flags->json, "Print one JSON object per released document per line");

  return {app, [flags, list, release] {
            auto q = open_queue(merge_queue_flags(flags->queue, flags->parent));
            if (!q.is_ok()) return report(q.status());
            if (list->parsed()) return run_list(**q, *flags);
            if (release->parsed()) return run_release(**q, *flags);
            return usage_error("review needs a subcommand: list or release");
          }};
}

}  // namespace sluice::cli
