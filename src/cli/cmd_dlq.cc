// `sluice dlq list` shows the dead letters of every `<topic>.dlq` (or one topic's); `sluice dlq
// replay (--doc ID... | --all)` sends chosen dead letters back to the topic they failed on.
//
// Reading never disturbs a consumer group: every read is an ephemeral consumer that reads each
// partition from its first stored offset up to the end offset seen when the command started.
// What was replayed is recorded in a topic of its own (the ledger, kLedgerTopic), one message per
// replayed dead letter naming its DLQ topic, partition and offset, so `list` marks it and a second
// replay skips it on every queue backend. A replay is at-least-once like the rest of the pipeline:
// the messages are acknowledged before their ledger entries are written, so a crash between the
// two sends them again next time (the stages' sinks are idempotent).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/utf8.h"
#include "cli/common.h"
#include "pipeline/envelope.h"
#include "pipeline/stage_runner.h"

namespace sluice::cli {
namespace {

using Clock = std::chrono::steady_clock;
using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kDlqSuffix = ".dlq";
// The ledger of replayed dead letters.
constexpr const char* kLedgerTopic = pipeline::kTopicDlqLedger;
// Set on a replayed message: the dead letter it came from ("<dlq topic>/<partition>/<offset>").
constexpr const char* kHeaderReplayedFrom = "replayed_from";
// The table shows error messages up to this many characters; --json shows them whole.
constexpr size_t kTableErrorChars = 60;
// Reading to the end gives up after this long without a message.
constexpr auto kReadIdleLimit = std::chrono::seconds(10);
constexpr queue::Millis kPollSlice{200};
constexpr size_t kPollBatch = 1000;
// How long a replay waits for the queue to acknowledge its sends without progress.
constexpr queue::Millis kFlushSlice{30000};

struct DlqFlags {
  QueueFlags queue;   // given after `list` / `replay`
  QueueFlags parent;  // given after `dlq`
  std::string topic;
  bool json = false;
  std::vector<std::string> docs;
  bool all = false;
};

// Where a dead letter lives; what the ledger names.
struct Coordinates {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  auto operator<=>(const Coordinates&) const = default;
  std::string to_string() const {
    return topic + "/" + std::to_string(partition) + "/" + std::to_string(offset);
  }
};

struct LedgerEntry {
  std::string replayed_at;                       // ISO-8601 UTC
  std::optional<int64_t> dead_letter_timestamp;  // guards against a DLQ topic made anew
};

struct DeadLetter {
  Coordinates at;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;  // the doc id
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> replayed_at;  // set when the ledger names this dead letter

  std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return std::string_view(v);
    return std::nullopt;
  }
  // The topic it failed on: its original_topic header, else the DLQ topic's name without ".dlq".
  std::string original_topic() const {
    if (auto t = header(pipeline::kHeaderOriginalTopic); t && !t->empty()) return std::string(*t);
    return at.topic.substr(0, at.topic.size() - kDlqSuffix.size());
  }
  std::optional<int64_t> attempts() const {
    auto a = header(pipeline::kHeaderAttempt);
    return a ? parse_int64(*a) : std::nullopt;
  }
};

int print_or_fail(const std::string& text) {
  if (write_stdout(text)) return kExitOk;
  return report(Status::io_error("writing to stdout failed"));
}

std::string reader_group_name() {
  static int n = 0;
  return "sluice-dlq-" + std::to_string(::getpid()) + "-" + std::to_string(wall_clock_ms()) + "-" +
         std::to_string(++n);
}

// Reads every message stored in the topics' partitions up to the end offsets in `topics` (from
// describe_topic), through an ephemeral group: no offsets are committed anywhere.
Result<std::vector<queue::Message>> read_to_end(queue::Queue& q,
                                                const std::vector<queue::TopicInfo>& topics) {
  std::map<std::pair<std::string, int32_t>, int64_t> end;  // partitions not yet read to their end
  std::vector<std::string> names;
  for (const queue::TopicInfo& t : topics) {
    bool any = false;
    for (const queue::PartitionInfo& p : t.partition_info) {
      if (p.end <= p.start) continue;
      end[{t.name, p.partition.value()}] = p.end.value();
      any = true;
    }
    if (any) names.push_back(t.name);
  }
  std::vector<queue::Message> out;
  if (names.empty()) return out;

  queue::ConsumerOptions copts;
  copts.group = reader_group_name();
  copts.topics = names;
  copts.start_from = queue::StartFrom::kEarliest;
  copts.ephemeral = true;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<queue::Consumer> consumer, q.make_consumer(std::move(copts)));
  auto last_progress = Clock::now();
  std::vector<queue::Message> batch;
  Status error;
  while (!end.empty()) {
    batch.clear();
    if (Status st = consumer->poll(batch, kPollBatch, kPollSlice); !st.is_ok()) {
      error = st;
      break;
    }
    if (batch.empty()) {
      if (Clock::now() - last_progress < kReadIdleLimit) continue;
      const auto& [tp, want] = *end.begin();
      error = Status::timeout("no message for " + std::to_string(kReadIdleLimit.count()) +
                              " s while reading " + tp.first + "/" + std::to_string(tp.second) +
                              " up to offset " + std::to_string(want) + "; try again");
      break;
    }
    last_progress = Clock::now();
    for (queue::Message& m : batch) {
      auto it = end.find({std::string(m.topic), m.partition.value()});
      if (it == end.end()) continue;  // a partition already read to its end: this one came later
      const bool last = m.offset.value() + 1 >= it->second;
      if (m.offset.value() < it->second) out.push_back(std::move(m));
      if (last) end.erase(it);
    }
  }
  Status closed = consumer->close();
  if (!error.is_ok()) return error;
  if (!closed.is_ok()) return closed.with_context("closing the reader");
  return out;
}

// The ledger: which dead letters were replayed, and when. An absent ledger is an empty one.
Result<std::map<Coordinates, LedgerEntry>> read_ledger(queue::Queue& q) {
  std::map<Coordinates, LedgerEntry> ledger;
  auto info = q.admin().describe_topic(kLedgerTopic);
  if (!info.is_ok()) {
    if (info.status().code() == Code::kNotFound) return ledger;
    return info.status();
  }
  SLUICE_ASSIGN_OR_RETURN(auto messages, read_to_end(q, {*info}));
  for (const queue::Message& m : messages) {
    auto j = nlohmann::json::parse(m.value, nullptr, false);
    if (!j.is_object() || !j.contains("dlq_topic") || !j["dlq_topic"].is_string() ||
        !j.contains("partition") || !j["partition"].is_number_integer() || !j.contains("offset") ||
        !j["offset"].is_number_integer()) {
      std::fprintf(stderr, "sluice: warning: skipping a malformed entry at %s/%d/%lld\n", kLedgerTopic,
                   m.partition.value(), static_cast<long long>(m.offset.value()));
      continue;
    }
    Coordinates at{j["dlq_topic"].get<std::string>(), j["partition"].get<int32_t>(),
                   j["offset"].get<int64_t>()};
    LedgerEntry e;
    if (j.contains("replayed_at") && j["replayed_at"].is_string()) e.replayed_at = j["replayed_at"];
    if (e.replayed_at.empty()) e.replayed_at = iso8601_utc(m.timestamp_ms);
    if (j.contains("dead_letter_timestamp") && j["dead_letter_timestamp"].is_number_integer()) {
      e.dead_letter_timestamp = j["dead_letter_timestamp"].get<int64_t>();
    }
    ledger.emplace(std::move(at), std::move(e));  // the first record of a dead letter wins
  }
  return ledger;
}

// The DLQ topics to look at: --topic's (T or T.dlq), else every topic whose name ends in ".dlq".
Result<std::vector<queue::TopicInfo>> dlq_topics(queue::Admin& admin, const std::string& topic) {
  std::vector<queue::TopicInfo> out;
  if (!topic.empty()) {
    std::string name = topic.ends_with(kDlqSuffix) ? topic : topic + std::string(kDlqSuffix);
    SLUICE_RETURN_IF_ERROR(queue::validate_topic_name(name).with_context("--topic"));
    auto info = admin.describe_topic(name);
    if (!info.is_ok()) {
      return info.status().with_context("no dead-letter topic for --topic '" + topic + "'");
    }
    out.push_back(std::move(info).value());
    return out;
  }
  SLUICE_ASSIGN_OR_RETURN(auto listed, admin.list_topics());
  for (const queue::TopicInfo& t : listed) {
    if (!t.name.ends_with(kDlqSuffix) || t.name.size() == kDlqSuffix.size()) continue;
    SLUICE_ASSIGN_OR_RETURN(queue::TopicInfo info, admin.describe_topic(t.name));  // with offsets
    out.push_back(std::move(info));
  }
  return out;
}

// Every dead letter in scope, oldest first, each marked when the ledger names it.
Result<std::vector<DeadLetter>> load_dead_letters(queue::Queue& q, const std::string& topic) {
  if (!q.capabilities().offsets) {
    return Status::unsupported(
        "`sluice dlq` finds dead letters by their offsets, and the " + std::string(q.backend()) +
        " backend has none (an acknowledged message is gone); dead letters wait on topic T.dlq: read them "
        "with `sluice tail T.dlq --group NAME --from-beginning` and send one again with `sluice produce T`");
  }
  SLUICE_ASSIGN_OR_RETURN(auto topics, dlq_topics(q.admin(), topic));
  SLUICE_ASSIGN_OR_RETURN(auto messages, read_to_end(q, topics));
  std::vector<DeadLetter> out;
  if (messages.empty()) return out;
  SLUICE_ASSIGN_OR_RETURN(auto ledger, read_ledger(q));
  out.reserve(messages.size());
  for (const queue::Message& m : messages) {
    DeadLetter d;
    d.at = {std::string(m.topic), m.partition.value(), m.offset.value()};
    d.timestamp_ms = m.timestamp_ms;
    if (m.key) d.key = std::string(*m.key);
    d.value = std::string(m.value);
    for (const queue::Header& h : m.headers) d.headers.emplace_back(std::string(h.key), std::string(h.value));
    auto it = ledger.find(d.at);
    if (it != ledger.end() &&
        (!it->second.dead_letter_timestamp || *it->second.dead_letter_timestamp == d.timestamp_ms)) {
      d.replayed_at = it->second.replayed_at;
    }
    out.push_back(std::move(d));
  }
  std::stable_sort(out.begin(), out.end(), [](const DeadLetter& a, const DeadLetter& b) {
    return std::tie(a.timestamp_ms, a.at) < std::tie(b.timestamp_ms, b.at);
  });
  return out;
}

std::string scope_name(const std::string& topic) {
  if (topic.empty()) return "any dead-letter topic";
  return topic.ends_with(kDlqSuffix) ? topic : topic + std::string(kDlqSuffix);
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

// One table cell: control characters become spaces, malformed UTF-8 becomes U+FFFD, and text
// longer than max_chars characters (0: no limit) is cut to fit, ending in "…".
std::string table_cell(std::optional<std::string_view> s, size_t max_chars = 0) {
  if (!s || s->empty()) return "-";
  std::u32string chars;
  for (size_t i = 0; i < s->size();) {
    char32_t c = utf8::decode(*s, i);
    chars.push_back(c < 0x20 || c == 0x7f ? U' ' : c);
  }
  bool cut = false;
  if (max_chars > 0 && chars.size() > max_chars) {
    chars.resize(max_chars - 1);
    cut = true;
  }
  std::string out;
  for (char32_t c : chars) utf8::append(out, c);
  if (cut) out += "…";
  return out;
}

int run_list(queue::Queue& q, const DlqFlags& f) {
  auto letters = load_dead_letters(q, f.topic);
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

// The headers a replayed message does not carry over: the failure's, and the standard ones (the
// message gets fresh ones with the same trace_id).
bool dropped_on_replay(std::string_view key) {
  static const std::set<std::string_view> kDropped = {pipeline::kHeaderAttempt,
                                                      pipeline::kHeaderNotBefore,
                                                      pipeline::kHeaderErrorClass,
                                                      pipeline::kHeaderErrorMessage,
                                                      pipeline::kHeaderOriginalTopic,
                                                      pipeline::kHeaderFailedStage,
                                                      kHeaderReplayedFrom,
                                                      "trace_id",
                                                      "event_id",
                                                      "schema",
                                                      "produced_at"};
  return kDropped.count(key) > 0 || key.starts_with("error_");
}

std::vector<std::pair<std::string, std::string>> replay_headers(const DeadLetter& d) {
  std::vector<std::pair<std::string, std::string>> hs;
  for (const auto& [k, v] : d.headers)
    if (!dropped_on_replay(k)) hs.emplace_back(k, v);
  auto trace = d.header("trace_id");
  for (auto& h : pipeline::standard_headers(trace && !trace->empty() ? *trace : pipeline::random_id(), 1)) {
    hs.push_back(std::move(h));
  }
  hs.emplace_back(kHeaderReplayedFrom, d.at.to_string());
  return hs;
}

// One send and its delivery report.
struct Sent {
  const DeadLetter* letter = nullptr;
  std::string topic;
  bool reported = false;
  Status status;
  int32_t partition = -1;
  int64_t offset = -1;
};

// A producer whose delivery reports land in `sent` (indexed by the opaque pointer).
class Sender {
 public:
  Status open(queue::Queue& q) {
    queue::ProducerOptions popts;
    popts.on_delivery = [this](const queue::DeliveryReport& r) {
      std::lock_guard<std::mutex> l(mu_);
      auto* s = static_cast<Sent*>(r.opaque);
      s->reported = true;
      s->status = r.status;
      s->partition = r.partition.value();
      s->offset = r.offset.value();
    };
    SLUICE_ASSIGN_OR_RETURN(producer_, q.make_producer(std::move(popts)));
    return {};
  }
  Status send(const queue::OutMessage& m, Sent* s) { return producer_->send(m, s).status(); }
  // Waits for every delivery report, as long as the queue keeps making progress.
  Status wait() {
    uint64_t last = producer_->outstanding();
    for (;;) {
      Status st = producer_->flush(kFlushSlice);
      uint64_t now = producer_->outstanding();
      if (now == 0) return {};  // delivery failures are in the reports
      if (!st.is_ok() && st.code() != Code::kTimeout) return st;
      if (now >= last) {
        return Status::timeout(std::to_string(now) + " messages still unacknowledged after " +
                               std::to_string(kFlushSlice.count() / 1000) + " s without progress");
      }
      last = now;
    }
  }
  // Ends the producer: no delivery report runs after this.
  void close() { producer_.reset(); }
  std::mutex& mu() { return mu_; }

 private:
  std::mutex mu_;
  std::unique_ptr<queue::Producer> producer_;
};

std::string ledger_value(const Sent& s) {
  const DeadLetter& d = *s.letter;
  ordered_json j = ordered_json::object();
  j["dlq_topic"] = d.at.topic;
  j["partition"] = d.at.partition;
  j["offset"] = d.at.offset;
  j["dead_letter_timestamp"] = d.timestamp_ms;
  j["doc_id"] = d.key ? bytes_to_json(*d.key) : ordered_json(nullptr);
  j["original_topic"] = s.topic;
  j["replayed_to"] = {{"topic", s.topic}, {"partition", s.partition}, {"offset", s.offset}};
  j["trace_id"] = optional_bytes(d.header("trace_id"));
  const int64_t now = wall_clock_ms();
  j["replayed_at"] = iso8601_utc(now);
  j["replayed_at_ms"] = now;
  std::string line = dump_line(j);
  line.pop_back();  // no newline in the stored value
  return line;
}

// The dead letters --doc/--all choose, not yet replayed, oldest first.
Result<std::vector<const DeadLetter*>> choose(const std::vector<DeadLetter>& letters, const DlqFlags& f) {
  std::vector<const DeadLetter*> chosen;
  if (f.all) {
    for (const DeadLetter& d : letters)
      if (!d.replayed_at) chosen.push_back(&d);
    return chosen;
  }
  std::set<std::string> wanted(f.docs.begin(), f.docs.end());
  std::vector<std::string> missing;
  for (const std::string& id : f.docs) {
    if (!wanted.count(id)) continue;  // named twice
    wanted.erase(id);
    size_t found = 0, done = 0;
    for (const DeadLetter& d : letters) {
      if (!d.key || *d.key != id) continue;
      ++found;
      if (d.replayed_at) {
        ++done;
      } else {
        chosen.push_back(&d);
      }
    }
    if (found == 0) {
      missing.push_back(id);
    } else if (found == done) {
      std::fprintf(stderr, "sluice: doc '%s': its %zu dead letter%s already replayed; not sent again\n",
                   id.c_str(), done, done == 1 ? " was" : "s were");
    }
  }
  if (!missing.empty()) {
    std::string names;
    for (const std::string& id : missing) names += (names.empty() ? "'" : ", '") + id + "'";
    return Status::not_found("no dead letter for doc " + names + " in " + scope_name(f.topic) +
                             " (see `sluice dlq list`); nothing was replayed");
  }
  std::sort(chosen.begin(), chosen.end(), [&](const DeadLetter* a, const DeadLetter* b) {
    return std::tie(a->timestamp_ms, a->at) < std::tie(b->timestamp_ms, b->at);
  });
  return chosen;
}

int run_replay(queue::Queue& q, const DlqFlags& f) {
  if (!f.all && f.docs.empty()) return usage_error("say what to replay: --doc ID (one or more) or --all");
  for (const std::string& id : f.docs)
    if (id.empty()) return usage_error("--doc needs a non-empty doc id");
  auto letters = load_dead_letters(q, f.topic);
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

  // Every destination must exist before anything is sent: all or nothing for a missing topic.
  std::set<std::string> targets;
  for (const DeadLetter* d : chosen) targets.insert(d->original_topic());
  for (const std::string& t : targets) {
    auto info = q.admin().describe_topic(t);
    if (!info.is_ok()) return report(info.status().with_context("the original topic of a dead letter"));
  }
  if (Status st = queue::ensure_topic(q.admin(), kLedgerTopic, {.partitions = 1}); !st.is_ok()) {
    return report(st.with_context("creating the replay ledger " + std::string(kLedgerTopic)));
  }

  // 1. The dead letters go back to their topics; wait until the queue acknowledges each.
  std::vector<Sent> sent(chosen.size());
  Sender sender;
  if (Status st = sender.open(q); !st.is_ok()) return report(st);
  Status send_error;
  size_t queued = 0;
  for (size_t i = 0; i < chosen.size(); ++i) {
    const DeadLetter& d = *chosen[i];
    Sent& s = sent[i];
    s.letter = &d;
    s.topic = d.original_topic();
    auto hs_owned = replay_headers(d);
    std::vector<queue::Header> hs;
    for (const auto& [k, v] : hs_owned) hs.push_back({k, v});
    queue::OutMessage m;
    m.topic = s.topic;
    if (d.key) m.key = *d.key;
    m.value = d.value;
    m.headers = hs;
    if (Status st = sender.send(m, &s); !st.is_ok()) {
      send_error = st.with_context("sending " + d.at.to_string() + " back to " + s.topic);
      break;
    }
    ++queued;
  }
  Status waited = sender.wait();

  // 2. The ledger records each dead letter the queue acknowledged.
  std::vector<Sent*> delivered;
  Status delivery_error;
  {
    std::lock_guard<std::mutex> l(sender.mu());
    for (size_t i = 0; i < queued; ++i) {
      if (sent[i].reported && sent[i].status.is_ok()) {
        delivered.push_back(&sent[i]);
      } else if (delivery_error.is_ok()) {
        delivery_error = sent[i].reported
                             ? sent[i].status.with_context("sending " + chosen[i]->at.to_string() + " back")
                             : Status::timeout("no acknowledgement for " + chosen[i]->at.to_string());
      }
    }
  }
  std::vector<std::string> ledger_values;
  std::vector<std::string> ledger_keys;
  for (const Sent* s : delivered) {
    ledger_values.push_back(ledger_value(*s));
    ledger_keys.push_back(s->letter->at.to_string());
  }
  std::vector<Sent> ledger_sent(delivered.size());
  Status ledger_error;
  size_t ledger_queued = 0;
  for (size_t i = 0; i < delivered.size(); ++i) {
    ledger_sent[i].letter = delivered[i]->letter;
    queue::OutMessage m;
    m.topic = kLedgerTopic;
    m.key = ledger_keys[i];
    m.value = ledger_values[i];
    if (Status st = sender.send(m, &ledger_sent[i]); !st.is_ok()) {
      ledger_error = st;
      break;
    }
    ++ledger_queued;
  }
  Status ledger_waited = sender.wait();
  sender.close();
  size_t recorded = 0;
  for (size_t i = 0; i < ledger_queued; ++i) {
    if (ledger_sent[i].reported && ledger_sent[i].status.is_ok()) {
      ++recorded;
    } else if (ledger_error.is_ok()) {
      ledger_error = ledger_sent[i].reported ? ledger_sent[i].status : Status::timeout("no acknowledgement");
    }
  }
  if (ledger_error.is_ok() && !ledger_waited.is_ok()) ledger_error = ledger_waited;

  // 3. The summary.
  std::map<std::string, size_t> per_topic;
  for (const Sent* s : delivered) ++per_topic[s->topic];
  std::string out;
  if (f.json) {
    for (const Sent* s : delivered) {
      const DeadLetter& d = *s->letter;
      ordered_json j = ordered_json::object();
      j["dlq_topic"] = d.at.topic;
      j["partition"] = d.at.partition;
      j["offset"] = d.at.offset;
      j["doc_id"] = d.key ? bytes_to_json(*d.key) : ordered_json(nullptr);
      j["topic"] = s->topic;
      j["to_partition"] = s->partition;
      j["to_offset"] = s->offset;
      j["trace_id"] = optional_bytes(d.header("trace_id"));
      out += dump_line(j);
    }
  } else {
    out =
        "replayed " + std::to_string(delivered.size()) + " dead letter" + (delivered.size() == 1 ? "" : "s");
    std::string parts;
    for (const auto& [topic, n] : per_topic)
      parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " to " + topic;
    if (!parts.empty()) out += ": " + parts;
    out += "\n";
  }
  int code = print_or_fail(out);

  Status failure = !send_error.is_ok() ? send_error : !delivery_error.is_ok() ? delivery_error : waited;
  if (!failure.is_ok()) {
    int c = report(failure);
    std::fprintf(stderr, "sluice: %zu of %zu chosen dead letters were not replayed; run the replay again\n",
                 chosen.size() - delivered.size(), chosen.size());
    if (code == kExitOk) code = c;
  }
  if (!ledger_error.is_ok()) {
    report(ledger_error.with_context("recording the replay in " + std::string(kLedgerTopic)));
    std::fprintf(stderr,
                 "sluice: %zu replayed dead letters are not recorded as replayed; a second replay would send "
                 "them again\n",
                 delivered.size() - recorded);
    code = kExitFailure;
  }
  return code;
}

QueueFlags merged(const DlqFlags& f) {
  QueueFlags q = f.queue;
  if (q.queue.empty()) q.queue = f.parent.queue;
  if (q.data.empty()) q.data = f.parent.data;
  return q;
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
            auto q = open_queue(merged(*flags));
            if (!q.is_ok()) return report(q.status());
            if (list->parsed()) return run_list(**q, *flags);
            if (replay->parsed()) return run_replay(**q, *flags);
            return usage_error("dlq needs a subcommand: list or replay");
          }};
}

}  // namespace sluice::cli
