// `sluice search QUERY`: hybrid search (keywords + vectors, fused by reciprocal rank) over the
// index `sluice ingest` built. A readable table by default; `--json` prints one object per hit per
// line with score, doc_id, source, page, heading, chunk_id and text (DESIGN.md's contract).
#include <chrono>
#include <cstdio>
#include <filesystem>
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
  if (f.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return report(Status::invalid_argument("the query is empty"));
  }
  auto embedder = embed::open_embedder(settings->embedder);
  if (!embedder.is_ok()) return report(embedder.status().with_context("embedder " + settings->embedder));
  auto index = index::open_index(settings->index, (*embedder)->dimension(), (*embedder)->name());
  if (!index.is_ok()) return report(index.status().with_context("index " + settings->index));

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> vec;
  index::SearchOptions opts;
  opts.k = f.k;
  opts.mode = f.mode == "keyword"  ? index::SearchOptions::Mode::kKeyword
              : f.mode == "vector" ? index::SearchOptions::Mode::kVector
                                   : index::SearchOptions::Mode::kHybrid;
  if (opts.mode != index::SearchOptions::Mode::kKeyword) {
    std::string_view q = f.query;
    if (Status st = (*embedder)->embed({&q, 1}, &vec); !st.is_ok()) return report(st);
  }
  auto hits = (*index)->search(f.query, vec, opts);
  if (!hits.is_ok()) return report(hits.status());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::string out;
  if (f.json) {
    int rank = 0;
    for (const auto& h : *hits) {
      nlohmann::ordered_json j = {{"rank", ++rank},         {"score", h.score}, {"doc_id", h.doc_id},
                                  {"source", h.source},     {"page", h.page},   {"heading", h.heading},
                                  {"chunk_id", h.chunk_id}, {"text", h.text}};
      out += dump_line(j);
    }
    if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
    std::fprintf(stderr, "%zu hits in %.1f ms\n", hits->size(), ms);
    return kExitOk;
  }
  if (hits->empty()) {
    std::fprintf(stderr, "no matches (%.1f ms)\n", ms);
    return kExitOk;
  }
  int rank = 0;
  for (const auto& h : *hits) {
    char head[64];
    std::snprintf(head, sizeof head, "%d. [%.4f] ", ++rank, h.score);
    out += head + h.source;
    if (h.page > 0) out += "  page " + std::to_string(h.page);
    out += "\n";
    if (!h.heading.empty()) out += "   § " + h.heading + "\n";
    out += "   " + snippet(h.text, 240) + "\n\n";
  }
  if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
  std::fprintf(stderr, "%zu hits in %.1f ms\n", hits->size(), ms);
  return kExitOk;
}

}  // namespace

Command add_search_command(CLI::App& root) {
  auto flags = std::make_shared<SearchFlags>();
  CLI::App* app = root.add_subcommand("search", "Search the ingested documents (keywords + vectors)");
  app->add_option("query", flags->query, "What to look for, in any language")->required();
  app->add_option("-k", flags->k, "How many hits (default 5)")->check(CLI::Range(1, 1000));
  app->add_flag("--json", flags->json, "One JSON object per hit per line");
  app->add_option("--mode", flags->mode, "hybrid (default), keyword or vector")
      ->check(CLI::IsMember({"hybrid", "keyword", "vector"}));
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings, {"index", "embedder"});
  return {app, [flags] { return run_search(*flags); }};
}

}  // namespace sluice::cli
