// `sluice replay GROUP --topic T --to earliest|latest|TIME|OFFSET`: moves a stopped group's
// committed offsets so its consumers re-read (or skip) messages.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"

namespace sluice::cli {
namespace {

struct ReplayFlags {
  QueueFlags queue;
  std::string group;
  std::string topic;
  std::string to;
  int32_t partition = -1;
  bool json = false;
};

// Reads an ISO-8601 time left to right.
class TimeCursor {
 public:
  explicit TimeCursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ == s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void advance() {
    if (!done()) ++i_;
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  // Exactly n decimal digits.
  bool digits(int n, int& out) {
    if (s_.size() - i_ < static_cast<size_t>(n)) return false;
    int v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s_[i_ + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i_ += n;
    out = v;
    return true;
  }
  // One or more digits of a fraction of a second, as milliseconds (truncated past the third).
  bool fraction_ms(int& out) {
    int v = 0, n = 0;
    while (!done() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (n < 3) v = v * 10 + (s_[i_] - '0');
      ++n;
      ++i_;
    }
    for (int k = n; k < 3; ++k) v *= 10;
    out = v;
    return n > 0;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// "YYYY-MM-DDTHH:MM[:SS[.fff]]" followed by "Z" or an offset "+HH:MM", "+HHMM" or "+HH". A time
// without a zone is refused: guessing one would replay from the wrong hour.
Result<int64_t> parse_iso8601_ms(std::string_view s) {
  TimeCursor c(s);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (!c.digits(4, y) || !c.eat('-') || !c.digits(2, mo) || !c.eat('-') || !c.digits(2, d)) {
    return Status::invalid_argument("expected a date YYYY-MM-DD");
  }
  if (!(c.eat('T') || c.eat('t') || c.eat(' '))) {
    return Status::invalid_argument("expected 'T' and a time HH:MM[:SS] after the date, then Z or +HH:MM");
  }
  if (!c.digits(2, h) || !c.eat(':') || !c.digits(2, mi))
    return Status::invalid_argument("expected a time HH:MM");
  if (c.eat(':')) {
    if (!c.digits(2, sec)) return Status::invalid_argument("expected seconds SS after HH:MM:");
    if ((c.eat('.') || c.eat(',')) && !c.fraction_ms(ms)) {
      return Status::invalid_argument("expected digits after the decimal point of the seconds");
    }
  }
  int offset_min = 0;
  if (c.peek() == '+' || c.peek() == '-') {
    const int sign = c.peek() == '-' ? -1 : 1;
    c.advance();
    int oh = 0, om = 0;
    if (!c.digits(2, oh)) return Status::invalid_argument("expected a zone offset +HH:MM");
    if (c.eat(':')) {
      if (!c.digits(2, om)) return Status::invalid_argument("expected a zone offset +HH:MM");
    } else if (!c.done() && !c.digits(2, om)) {
      return Status::invalid_argument("expected a zone offset +HH:MM");
    }
    if (oh > 23 || om > 59) return Status::invalid_argument("the zone offset is out of range");
    offset_min = sign * (oh * 60 + om);
  } else if (!c.eat('Z') && !c.eat('z')) {
    if (c.done())
      return Status::invalid_argument("the time has no zone: add Z (UTC) or an offset such as +08:00");
    return Status::invalid_argument("expected Z or a zone offset +HH:MM after the time");
  }
  if (!c.done()) return Status::invalid_argument("unexpected characters after the time");

  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return Status::invalid_argument("no such date");
  if (h > 23 || mi > 59 || sec > 59) return Status::invalid_argument("the time of day is out of range");
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t secs = ((days * 24 + h) * 60 + mi) * 60 + sec - static_cast<int64_t>(offset_min) * 60;
  return secs * 1000 + ms;
}

Result<queue::ResetSpec> parse_to(std::string_view to) {
  using Kind = queue::ResetSpec::Kind;
  std::string lower;
  for (char ch : to) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "earliest") return queue::ResetSpec{Kind::kEarliest, 0};
  if (lower == "latest") return queue::ResetSpec{Kind::kLatest, 0};
  const std::string forms =
      " (expected earliest, latest, an OFFSET, an ISO-8601 TIME such as "
      "2026-11-21T10:00:00Z or 2026-11-21T18:00:00+08:00, or @EPOCH-MS)";
  if (to.starts_with('@')) {
    auto ms = parse_int64(to.substr(1));
    if (!ms || *ms < 0) {
      return Status::invalid_argument("--to '" + std::string(to) +
                                      "': expected milliseconds since the epoch after @");
    }
    return queue::ResetSpec{Kind::kTimestamp, *ms};
  }
  if (!to.empty() && std::isdigit(static_cast<unsigned char>(to[0])) &&
      to.find('-') == std::string_view::npos) {
    auto offset = parse_int64(to);
    if (!offset)
      return Status::invalid_argument("--to '" + std::string(to) + "' is not a valid offset" + forms);
    return queue::ResetSpec{Kind::kOffset, *offset};
  }
  if (!to.empty() && std::isdigit(static_cast<unsigned char>(to[0]))) {
    auto ms = parse_iso8601_ms(to);
    if (!ms.is_ok()) return ms.status().with_context("--to '" + std::string(to) + "'");
    return queue::ResetSpec{Kind::kTimestamp, *ms};
  }
  return Status::invalid_argument("--to '" + std::string(to) + "' is not understood" + forms);
}

int run_replay(const ReplayFlags& f) {
  if (Status st = queue::validate_topic_name(f.topic); !st.is_ok()) return report(st);
  if (f.group.empty()) return usage_error("the group name is empty");
  auto spec = parse_to(f.to);
  if (!spec.is_ok()) return report(spec.status());

  auto q = open_queue(f.queue);
  if (!q.is_ok()) return report(q.status());
  std::optional<PartitionId> partition;
  if (f.partition >= 0) partition = PartitionId(f.partition);
  auto moved = (*q)->admin().reset_offsets(f.group, f.topic, *spec, partition);
  if (!moved.is_ok()) {
    int code = report(moved.status());
    if (moved.status().code() == Code::kBusy) {
      std::fprintf(stderr,
                   "sluice: group '%s' has active consumers; stop them first (offsets can only move while "
                   "nobody consumes), then run replay again\n",
                   f.group.c_str());
    }
    return code;
  }

  std::string out;
  if (f.json) {
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const queue::PartitionOffset& p : *moved) {
      parts.push_back({{"partition", p.partition.value()}, {"offset", p.offset.value()}});
    }
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["group"] = f.group;
    j["topic"] = f.topic;
    j["partitions"] = std::move(parts);
    out = dump_line(j);
  } else {
    std::vector<std::vector<std::string>> rows = {{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"}};
    for (const queue::PartitionOffset& p : *moved) {
      rows.push_back(
          {f.group, f.topic, std::to_string(p.partition.value()), std::to_string(p.offset.value())});
    }
    out = format_table(rows);
  }
  if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
  return kExitOk;
}

}  // namespace

Command add_replay_command(CLI::App& root) {
  auto flags = std::make_shared<ReplayFlags>();
  CLI::App* app = root.add_subcommand("replay", "Move a stopped consumer group's offsets on a topic");
  app->add_option("GROUP", flags->group, "The consumer group")->required();
  add_queue_options(*app, flags->queue);
  app->add_option("--topic", flags->topic, "The topic whose offsets move")->required();
  app->add_option("--to", flags->to,
                  "earliest, latest, an OFFSET, an ISO-8601 TIME (2026-11-21T10:00:00Z, "
                  "2026-11-21T18:00:00+08:00) or @EPOCH-MS")
      ->required();
  app->add_option("--partition", flags->partition, "Move only this partition")->check(CLI::NonNegativeNumber);
  app->add_flag("--json", flags->json, "Print the new offsets as one JSON object");
  return {app, [flags] { return run_replay(*flags); }};
}

}  // namespace sluice::cli
