// `sluice search QUERY`: hybrid search (keywords + vectors, fused by reciprocal rank) over the
// index `sluice ingest` built. A readable table by default; `--json` prints one object per hit per
// line with score, doc_id, source, page, heading, chunk_id and text (DESIGN.md's contract).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "cli/common.h"
#include "embed/embedder.h"
#include "index/index.h"
#include "pipeline/settings.h"

namespace sluice::cli {
namespace {

struct SearchFlags {
  QueueFlags queue;  // for --data
  config::Values settings;
  std::string query;
  size_t k = 5;
  bool json = false;
  std::string mode = "hybrid";
};

// The first max_chars characters of s on one line (whitespace runs become one space), cut at a
// character boundary.
std::string snippet(std::string_view s, size_t max_chars) {
  std::string out;
  size_t chars = 0;
  bool space = false;
  size_t i = 0;
  while (i < s.size() && chars < max_chars) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      ++i;
      continue;
    }
    if (space) {
      out += ' ';
      ++chars;
      space = false;
    }
    utf8::append(out, utf8::decode(s, i));  // whole characters; a broken byte becomes U+FFFD
    ++chars;
  }
  if (i < s.size()) out += "…";  // cut short
  return out;
}

// The hits as DESIGN.md's JSON objects, ranked from 1.
std::vector<nlohmann::ordered_json> hits_json(const std::vector<index::SearchHit>& hits) {
  std::vector<nlohmann::ordered_json> out;
  int rank = 0;
  for (const auto& h : hits) out.push_back(index::search_hit_json(h, ++rank));
  return out;
}

// The hits as a person reads them: rank, score, file and page, heading path, a snippet.
std::string hits_table(const std::vector<index::SearchHit>& hits) {
  std::string out;
  int rank = 0;
  for (const auto& h : hits) {
    char head[64];
    std::snprintf(head, sizeof head, "%d. [%.4f] ", ++rank, h.score);
    out += head + h.source;
    if (h.page > 0) out += "  page " + std::to_string(h.page);
    out += "\n";
    if (!h.heading.empty()) out += "   § " + h.heading + "\n";
    out += "   " + snippet(h.text, 240) + "\n\n";
  }
  return out;
}

int run_search(const SearchFlags& f) {
  const std::string data = resolve_data_dir(f.queue);
  auto settings = pipeline::resolve_settings(f.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());
  if (settings->index.starts_with("local:")) {
    std::string dir = settings->index.substr(6);
    if (!std::filesystem::exists(dir + "/index.db")) {
      return report(
          Status::not_found("no index at " + dir + ": run `sluice ingest PATH` first (or give --data DIR)"));
    }
  }
  const bool batch = f.query == "-";
  if (!batch && f.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return report(Status::invalid_argument("the query is empty"));
  }
  auto embedder = embed::open_embedder(settings->embedder);
  if (!embedder.is_ok()) return report(embedder.status().with_context("embedder " + settings->embedder));
  auto index = index::open_index(settings->index, (*embedder)->dimension(), (*embedder)->name());
  if (!index.is_ok()) return report(index.status().with_context("index " + settings->index));

  index::SearchOptions opts;
  opts.k = f.k;
  opts.mode = f.mode == "keyword"  ? index::SearchOptions::Mode::kKeyword
              : f.mode == "vector" ? index::SearchOptions::Mode::kVector
                                   : index::SearchOptions::Mode::kHybrid;
  // One query: embedded (unless keyword-only), searched, timed.
  auto search = [&](const std::string& query, double* ms) -> Result<std::vector<index::SearchHit>> {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> vec;
    if (opts.mode != index::SearchOptions::Mode::kKeyword) {
      std::string_view q = query;
      SLUICE_RETURN_IF_ERROR((*embedder)->embed({&q, 1}, &vec));
    }
    auto hits = (*index)->search(query, vec, opts);
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return hits;
  };

  if (!batch) {
    double ms = 0;
    auto hits = search(f.query, &ms);
    if (!hits.is_ok()) return report(hits.status());
    std::string out;
    if (f.json) {
      for (const auto& j : hits_json(*hits)) out += dump_line(j);
    } else {
      if (hits->empty()) {
        std::fprintf(stderr, "no matches (%.1f ms)\n", ms);
        return kExitOk;
      }
      out = hits_table(*hits);
    }
    if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
    std::fprintf(stderr, "%zu hits in %.1f ms\n", hits->size(), ms);
    return kExitOk;
  }

  // `sluice search -`: one query per line of stdin, answered as it is read, in one process (the
  // index is opened once, so each answer costs only its search).
  std::vector<double> times;
  std::string line;
  int failures = 0;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    double ms = 0;
    auto hits = search(line, &ms);
    std::string out;
    if (!hits.is_ok()) {
      // One bad query (say, only punctuation) is reported and the rest still run.
      ++failures;
      std::fprintf(stderr, "sluice: query %zu: %s\n", times.size() + failures,
                   hits.status().to_string().c_str());
      if (f.json) {
        out = dump_line(nlohmann::ordered_json{{"query", line}, {"error", hits.status().message()}});
      }
    } else {
      times.push_back(ms);
      if (f.json) {
        out = dump_line(nlohmann::ordered_json{{"query", line}, {"ms", ms}, {"hits", hits_json(*hits)}});
      } else {
        out = "== " + line + "  (" + std::to_string(hits->size()) + " hits)\n" + hits_table(*hits);
      }
    }
    if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
    std::fflush(stdout);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted.empty() ? 0.0 : sorted[static_cast<size_t>(p * (sorted.size() - 1))];
  };
  std::fprintf(stderr, "%zu queries, %d failed; per query p50 %.1f ms, p99 %.1f ms\n", times.size(), failures,
               pct(0.5), pct(0.99));
  return failures == 0 ? kExitOk : kExitSomeFailed;
}

}  // namespace

Command add_search_command(CLI::App& root) {
  auto flags = std::make_shared<SearchFlags>();
  CLI::App* app = root.add_subcommand("search", "Search the ingested documents (keywords + vectors)");
  app->add_option("query", flags->query,
                  "What to look for, in any language; - reads one query per line from stdin (with --json: "
                  "one object per query with its hits and ms)")
      ->required();
  app->add_option("-k", flags->k, "How many hits (default 5)")->check(CLI::Range(1, 1000));
  app->add_flag("--json", flags->json, "One JSON object per hit per line");
  app->add_option("--mode", flags->mode, "hybrid (default), keyword or vector")
      ->check(CLI::IsMember({"hybrid", "keyword", "vector"}));
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings, {"index", "embedder"});
  return {app, [flags] { return run_search(*flags); }};
}

}  // namespace sluice::cli
