#include "pipeline/dead_letters.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "base/base64.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/utf8.h"
#include "pipeline/envelope.h"
#include "pipeline/read_to_end.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kDlq = kDlqSuffix;
constexpr const char* kLedgerTopic = kTopicDlqLedger;
// How long a replay waits for the queue to acknowledge its sends without progress.
constexpr queue::Millis kFlushSlice{30000};

// A string when the bytes are valid UTF-8, else {"base64": "..."}: bytes are never lost or mangled.
ordered_json bytes_json(std::string_view bytes) {
  if (utf8::is_valid(bytes)) return std::string(bytes);
  ordered_json obj = ordered_json::object();
  obj["base64"] = base64_encode(bytes);
  return obj;
}

ordered_json optional_bytes_json(std::optional<std::string_view> v) {
  return v ? bytes_json(*v) : ordered_json(nullptr);
}

// What the ledger says of one replayed dead letter.
struct LedgerEntry {
  std::string replayed_at;                       // ISO-8601 UTC
  std::optional<int64_t> dead_letter_timestamp;  // guards against a DLQ topic made anew
};

// A ledger: which held messages were sent on, and when. An absent ledger is an empty one.
Result<std::map<Coordinates, LedgerEntry>> read_ledger(queue::Queue& q, const std::string& ledger_topic) {
  std::map<Coordinates, LedgerEntry> ledger;
  auto info = q.admin().describe_topic(ledger_topic);
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
      log::warn("skipping a malformed entry of a replay ledger",
                {{"topic", ledger_topic}, {"partition", m.partition.value()}, {"offset", m.offset.value()}});
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

// The DLQ topics to look at: topic's (T or T.dlq), else every topic whose name ends in ".dlq".
Result<std::vector<queue::TopicInfo>> dlq_topics(queue::Admin& admin, const std::string& topic) {
  std::vector<queue::TopicInfo> out;
  if (!topic.empty()) {
    std::string name = dlq_topic_name(topic);
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
    if (!t.name.ends_with(kDlq) || t.name.size() == kDlq.size()) continue;
    SLUICE_ASSIGN_OR_RETURN(queue::TopicInfo info, admin.describe_topic(t.name));  // with offsets
    out.push_back(std::move(info));
  }
  return out;
}

// The headers a replayed message does not carry over: the failure's, and the standard ones (the
// message gets fresh ones with the same trace_id).
bool dropped_on_replay(std::string_view key) {
  static const std::set<std::string_view> kDropped = {
      kHeaderAttempt,       kHeaderNotBefore,   kHeaderErrorClass,   kHeaderErrorMessage,
      kHeaderOriginalTopic, kHeaderFailedStage, kHeaderReplayedFrom, "trace_id",
      "event_id",           "schema",           "produced_at"};
  return kDropped.count(key) > 0 || key.starts_with("error_");
}

std::vector<std::pair<std::string, std::string>> replay_headers(const DeadLetter& d) {
  std::vector<std::pair<std::string, std::string>> hs;
  for (const auto& [k, v] : d.headers)
    if (!dropped_on_replay(k)) hs.emplace_back(k, v);
  auto trace = d.header("trace_id");
  for (auto& h : standard_headers(trace && !trace->empty() ? *trace : random_id(), 1)) {
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
                               format_duration(kFlushSlice) + " without progress");
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
  j["doc_id"] = d.key ? bytes_json(*d.key) : ordered_json(nullptr);
  j["original_topic"] = s.topic;
  j["replayed_to"] = {{"topic", s.topic}, {"partition", s.partition}, {"offset", s.offset}};
  j["trace_id"] = optional_bytes_json(d.header("trace_id"));
  const int64_t now = wall_clock_ms();
  j["replayed_at"] = iso8601_utc(now);
  j["replayed_at_ms"] = now;
  // ensure_ascii=false keeps text readable; replace is only a safety net (the bytes are handled
  // by bytes_json already).
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

std::string dlq_topic_name(std::string_view topic) {
  return topic.ends_with(kDlq) ? std::string(topic) : std::string(topic) + std::string(kDlq);
}

std::string Coordinates::to_string() const {
  return topic + "/" + std::to_string(partition) + "/" + std::to_string(offset);
}

std::optional<std::string_view> DeadLetter::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string DeadLetter::original_topic() const {
  if (auto t = header(kHeaderOriginalTopic); t && !t->empty()) return std::string(*t);
  if (!at.topic.ends_with(kDlq)) return at.topic;
  return at.topic.substr(0, at.topic.size() - kDlq.size());
}

std::optional<int64_t> DeadLetter::attempts() const {
  auto a = header(kHeaderAttempt);
  if (!a || a->empty()) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(a->data(), a->data() + a->size(), v);
  if (ec != std::errc() || end != a->data() + a->size()) return std::nullopt;
  return v;
}

size_t ReplayResult::recorded() const {
  return static_cast<size_t>(
      std::count_if(replayed.begin(), replayed.end(), [](const Replayed& r) { return r.recorded; }));
}

Result<std::vector<DeadLetter>> load_dead_letters(queue::Queue& q, const std::string& topic) {
  if (!q.capabilities().offsets) {
    return Status::unsupported(
        "`sluice dlq` finds dead letters by their offsets, and the " + std::string(q.backend()) +
        " backend has none (an acknowledged message is gone); dead letters wait on topic T.dlq: read them "
        "with `sluice tail T.dlq --group NAME --from-beginning` and send one again with `sluice produce T`");
  }
  SLUICE_ASSIGN_OR_RETURN(auto topics, dlq_topics(q.admin(), topic));
  return load_held(q, topics, kLedgerTopic);
}

Result<std::vector<DeadLetter>> load_held(queue::Queue& q, const std::vector<queue::TopicInfo>& topics,
                                          const std::string& ledger_topic) {
  SLUICE_ASSIGN_OR_RETURN(auto messages, read_to_end(q, topics));
  std::vector<DeadLetter> out;
  if (messages.empty()) return out;
  SLUICE_ASSIGN_OR_RETURN(auto ledger, read_ledger(q, ledger_topic));
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

Result<ReplayResult> replay_dead_letters(queue::Queue& q, std::span<const DeadLetter* const> chosen) {
  return send_held_on(q, chosen, kLedgerTopic);
}

Result<ReplayResult> send_held_on(queue::Queue& q, std::span<const DeadLetter* const> chosen,
                                  const std::string& ledger_topic) {
  ReplayResult result;
  if (chosen.empty()) return result;

  // Every destination must exist before anything is sent: all or nothing for a missing topic.
  std::set<std::string> targets;
  for (const DeadLetter* d : chosen) targets.insert(d->original_topic());
  for (const std::string& t : targets) {
    auto info = q.admin().describe_topic(t);
    if (!info.is_ok()) return info.status().with_context("the original topic of a held message");
  }
  if (Status st = queue::ensure_topic(q.admin(), ledger_topic, {.partitions = 1}); !st.is_ok()) {
    return st.with_context("creating the replay ledger " + ledger_topic);
  }

  // 1. The dead letters go back to their topics; wait until the queue acknowledges each.
  std::vector<Sent> sent(chosen.size());
  Sender sender;
  SLUICE_RETURN_IF_ERROR(sender.open(q));
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
  std::vector<const Sent*> delivered;
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
  result.send_error = !send_error.is_ok() ? send_error : !delivery_error.is_ok() ? delivery_error : waited;

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
    m.topic = ledger_topic;
    m.key = ledger_keys[i];
    m.value = ledger_values[i];
    if (Status st = sender.send(m, &ledger_sent[i]); !st.is_ok()) {
      ledger_error = st;
      break;
    }
    ++ledger_queued;
  }
  Status ledger_waited = sender.wait();
  sender.close();  // no delivery report runs after this: ledger_sent is ours alone

  result.replayed.reserve(delivered.size());
  for (size_t i = 0; i < delivered.size(); ++i) {
    const Sent& s = *delivered[i];
    Replayed r{s.letter, {s.topic, s.partition, s.offset}, false};
    if (i < ledger_queued) {
      if (ledger_sent[i].reported && ledger_sent[i].status.is_ok()) {
        r.recorded = true;
      } else if (ledger_error.is_ok()) {
        ledger_error =
            ledger_sent[i].reported ? ledger_sent[i].status : Status::timeout("no acknowledgement");
      }
    }
    result.replayed.push_back(std::move(r));
  }
  if (ledger_error.is_ok() && !ledger_waited.is_ok()) ledger_error = ledger_waited;
  if (!ledger_error.is_ok()) {
    result.ledger_error = ledger_error.with_context("recording the replay in " + ledger_topic);
  }
  return result;
}

}  // namespace sluice::pipeline
