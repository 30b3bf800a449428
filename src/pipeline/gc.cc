#include "pipeline/gc.h"

#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "base/clock.h"
#include "pipeline/read_to_end.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

// "YYYY-MM-DDTHH:MM:SSZ", the form ObjectInfo::last_modified has, so times compare as strings.
std::string rfc3339(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool key_char(char c) {
  return c != '"' && c != '\\' && c != ' ' && c != '\n' && c != '\t' && c != '\'' && c != '?' && c != '&';
}

// Every "<prefix>..." run of key characters in text: the blob keys a message names, however the
// envelope spells the URI around them (file:/dir/KEY, file:///dir/KEY, s3://bucket/KEY).
void collect_keys(std::string_view text, const std::vector<std::string>& prefixes,
                  std::set<std::string>* out) {
  for (const auto& prefix : prefixes) {
    for (size_t at = text.find(prefix); at != std::string_view::npos; at = text.find(prefix, at + 1)) {
      size_t end = at;
      while (end < text.size() && key_char(text[end])) ++end;
      out->emplace(text.substr(at, end - at));
    }
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The keys live messages name (see gc.h).
Result<std::set<std::string>> live_keys(queue::Queue& q, const PipelineSettings& settings,
                                        const std::vector<std::string>& prefixes) {
  // Each stage input's committed offsets, by partition: messages before them are done.
  std::map<std::string, std::map<int32_t, std::optional<int64_t>>> committed;
  std::map<std::string, bool> is_input;
  for (const auto& [name, input] : builtin_stages()) {
    is_input[input] = true;
    auto group = q.admin().describe_group(stage_group(settings, name));
    if (!group.is_ok()) {
      if (group.status().code() == Code::kNotFound) continue;  // never ran: everything is live
      return group.status().with_context("reading the offsets of " + stage_group(settings, name));
    }
    for (const auto& p : group->partitions) {
      if (p.topic != input) continue;
      committed[input][p.partition.value()] =
          p.committed ? std::optional<int64_t>(p.committed->value()) : std::nullopt;
    }
  }
  std::vector<queue::TopicInfo> topics;
  for (const auto& name : pipeline_topic_names()) {
    const bool side = ends_with(name, kRetrySuffix) || ends_with(name, kDlqSuffix);
    if (!side && !is_input.count(name)) continue;
    auto info = q.admin().describe_topic(name);
    if (!info.is_ok()) {
      if (info.status().code() == Code::kNotFound) continue;
      return info.status().with_context("describing " + name);
    }
    topics.push_back(std::move(info).value());
  }
  std::set<std::string> keys;
  if (topics.empty()) return keys;
  SLUICE_RETURN_IF_ERROR(for_each_to_end(q, topics, [&](const queue::Message& m) {
    auto c = committed.find(std::string(m.topic));
    if (c != committed.end()) {
      auto p = c->second.find(m.partition.value());
      if (p != c->second.end() && p->second && m.offset.value() < *p->second) return;  // done
    }
    collect_keys(m.value, prefixes, &keys);
  }));
  return keys;
}

}  // namespace

Result<GcReport> collect_garbage(queue::Queue& q, store::BlobStore& store, const PipelineSettings& settings,
                                 const GcOptions& opts) {
  // The cutoff is taken before the topics are read: a blob written after it is young anyway.
  const std::string cutoff = rfc3339(wall_clock_ms() - opts.older_than.count());
  SLUICE_ASSIGN_OR_RETURN(std::set<std::string> live, live_keys(q, settings, opts.prefixes));
  GcReport report;
  for (const auto& prefix : opts.prefixes) {
    std::string token;
    do {
      SLUICE_ASSIGN_OR_RETURN(store::ListPage page, store.list(prefix, token, 1000));
      for (const auto& o : page.objects) {
        ++report.listed;
        if (o.last_modified.empty() || o.last_modified >= cutoff) {
          ++report.young;
          continue;
        }
        if (live.count(o.key)) {
          ++report.referenced;
          continue;
        }
        if (!opts.dry_run) {
          if (Status st = store.remove(o.uri); !st.is_ok()) {
            report.errors.push_back(st.to_string());
            continue;
          }
        }
        ++report.removed;
        report.removed_bytes += o.size;
        if (report.removed_uris.size() < 1000) report.removed_uris.push_back(o.uri);
      }
      token = page.next;
    } while (!token.empty());
  }
  return report;
}

}  // namespace sluice::pipeline
