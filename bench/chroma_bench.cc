// chroma_bench: what sluice's chroma index costs over Chroma itself. It starts one Chroma server
// (tests/support/chroma_server.h: the npm package's `chroma run` on a free loopback port) and, in
// every repeat, writes the same records twice into fresh collections of that server:
//  - sluice: Index::upsert_document per document (its pointer read, chunk batches, commit token,
//    pointer write and old-version delete: everything a replacement costs);
//  - plain: a loop of POST .../upsert with the same chunk batches (ids, base64 float32 vectors as
//    sluice sends them, texts, the same metadata), through the same pooled HTTP client, nothing else.
// Both run on one thread; which goes first alternates between repeats (the server's database grows
// during a run). Prints one JSON line per repeat and a summary with the medians, the ratio
// sluice/plain (the target: >= 0.8) and the machine.
//
// Usage: chroma_bench [--docs N] [--chunks C] [--dim D] [--batch B] [--text-bytes T] [--repeats R]
//                     [--quick]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/base64.h"
#include "bench_util.h"
#include "index/index.h"
#include "store/http_client.h"
#include "support/chroma_server.h"

namespace {

using sluice::bench::Clock;
using sluice::bench::round_to;
using sluice::bench::seconds_since;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

struct Options {
  int docs = 40;
  int chunks = 250;  // per document
  int dim = 384;
  int batch = 250;  // records per upsert request, both paths
  int text_bytes = 600;
  int repeats = 3;
};

struct Corpus {
  std::vector<sluice::index::DocumentRecord> docs;
  std::vector<std::vector<sluice::index::ChunkRecord>> chunks;
};

Corpus make_corpus(const Options& o) {
  std::mt19937_64 rng(42);
  std::normal_distribution<float> gauss;
  const std::string words[] = {"queue",   "partition", "segment", "offset",
                               "replica", "leader",    "消息",    "队列"};
  Corpus c;
  for (int d = 0; d < o.docs; ++d) {
    sluice::index::DocumentRecord doc;
    doc.doc_id = "doc-" + std::to_string(d);
    doc.version = "v1";
    doc.source = "/bench/corpus/manual-" + std::to_string(d) + ".pdf";
    doc.pages = o.chunks / 4 + 1;
    doc.metadata_json = R"({"format":"pdf"})";
    std::vector<sluice::index::ChunkRecord> chunks(static_cast<size_t>(o.chunks));
    for (int i = 0; i < o.chunks; ++i) {
      auto& ch = chunks[static_cast<size_t>(i)];
      ch.chunk_id = doc.doc_id + "@v1#" + std::to_string(i);
      ch.seq = i;
      ch.page = i / 4 + 1;
      ch.heading = "Chapter " + std::to_string(i / 20 + 1) + " > Section " + std::to_string(i % 20 + 1);
      while (ch.text.size() < static_cast<size_t>(o.text_bytes)) ch.text += words[rng() % 8] + " ";
      ch.vector.resize(static_cast<size_t>(o.dim));
      double norm = 0;
      for (float& x : ch.vector) {
        x = gauss(rng);
        norm += double{x} * x;
      }
      for (float& x : ch.vector) x = static_cast<float>(x / std::sqrt(norm));
    }
    c.docs.push_back(std::move(doc));
    c.chunks.push_back(std::move(chunks));
  }
  return c;
}

[[noreturn]] void die(const char* what, const sluice::Status& st) {
  std::fprintf(stderr, "chroma_bench: %s: %s\n", what, st.to_string().c_str());
  std::exit(1);
}

// Records/s through sluice's index into collection `name`.
double run_sluice(const Options& o, const Corpus& c, const sluice::testing::ChromaServer& server,
                  const std::string& name) {
  auto index = sluice::index::open_index(server.uri(name, "batch=" + std::to_string(o.batch)),
                                         static_cast<size_t>(o.dim), "bench:" + std::to_string(o.dim));
  if (!index.is_ok()) die("open the chroma index", index.status());
  const auto t0 = Clock::now();
  for (size_t d = 0; d < c.docs.size(); ++d) {
    sluice::Status st = (*index)->upsert_document(c.docs[d], c.chunks[d]);
    if (!st.is_ok()) die("sluice upsert", st);
  }
  const double secs = seconds_since(t0);
  return static_cast<double>(c.docs.size()) * o.chunks / secs;
}

// Records/s of a plain batched upsert loop into collection `name`.
double run_plain(const Options& o, const Corpus& c, sluice::store::HttpClient& http,
                 const std::string& name) {
  const std::string db = "/api/v2/tenants/default_tenant/databases/default_database";
  sluice::store::HttpRequest create;
  create.method = "POST";
  create.path = db + "/collections";
  create.body = json{{"name", name}, {"configuration", {{"hnsw", {{"space", "cosine"}}}}}}.dump();
  auto made = http.send(create);
  if (!made.is_ok()) die("create the plain collection", made.status());
  const std::string upsert_path =
      db + "/collections/" + json::parse(made->body).at("id").get<std::string>() + "/upsert";
  const auto t0 = Clock::now();
  for (size_t d = 0; d < c.docs.size(); ++d) {
    const auto& doc = c.docs[d];
    const auto& chunks = c.chunks[d];
    for (size_t at = 0; at < chunks.size(); at += static_cast<size_t>(o.batch)) {
      const size_t end = std::min(chunks.size(), at + static_cast<size_t>(o.batch));
      json ids = json::array(), emb = json::array(), texts = json::array(), metas = json::array();
      for (size_t i = at; i < end; ++i) {
        const auto& ch = chunks[i];
        ids.push_back(ch.chunk_id);
        emb.push_back(sluice::base64_encode(std::string_view(reinterpret_cast<const char*>(ch.vector.data()),
                                                             ch.vector.size() * sizeof(float))));
        texts.push_back(ch.text);
        metas.push_back({{"doc_id", doc.doc_id},
                         {"version", doc.version},
                         {"source", doc.source},
                         {"page", ch.page},
                         {"heading", ch.heading},
                         {"seq", ch.seq}});
      }
      sluice::store::HttpRequest req;
      req.method = "POST";
      req.path = upsert_path;
      req.body = json{{"ids", std::move(ids)},
                      {"embeddings", std::move(emb)},
                      {"documents", std::move(texts)},
                      {"metadatas", std::move(metas)}}
                     .dump();
      auto r = http.send(req);
      if (!r.is_ok()) die("plain upsert", r.status());
    }
  }
  const double secs = seconds_since(t0);
  return static_cast<double>(c.docs.size()) * o.chunks / secs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chroma_bench: sluice's chroma index beside a plain batched upsert loop on one Chroma server"};
  Options o;
  bool quick = false;
  app.add_option("--docs", o.docs, "Documents per run")->check(CLI::Range(1, 100000));
  app.add_option("--chunks", o.chunks, "Chunks per document")->check(CLI::Range(1, 100000));
  app.add_option("--dim", o.dim, "Vector dimension")->check(CLI::Range(1, 8192));
  app.add_option("--batch", o.batch, "Records per upsert request (both paths)")->check(CLI::Range(1, 100000));
  app.add_option("--text-bytes", o.text_bytes, "Bytes of text per chunk")->check(CLI::Range(1, 1000000));
  app.add_option("--repeats", o.repeats, "Runs (medians are reported)")->check(CLI::Range(1, 100));
  app.add_flag("--quick", quick, "A smoke run: 8 documents of 50 chunks, one repeat");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    o.docs = 8;
    o.chunks = 50;
    o.batch = std::min(o.batch, 50);
    o.repeats = 1;
  }

  sluice::testing::ChromaServer server;
  if (sluice::Status st = server.start(); !st.is_ok()) die("start chroma", st);
  auto http = sluice::store::HttpClient::open(server.url(), {.service = "chroma"});
  if (!http.is_ok()) die("http client", http.status());
  // Both paths send at most the server's max batch size (sluice caps its batches to it).
  {
    sluice::store::HttpRequest pre;
    pre.path = "/api/v2/pre-flight-checks";
    auto r = (*http)->send(pre);
    if (!r.is_ok()) die("pre-flight-checks", r.status());
    const int max_batch = json::parse(r->body).value("max_batch_size", o.batch);
    o.batch = std::min(o.batch, max_batch);
  }
  const Corpus corpus = make_corpus(o);

  std::vector<double> sluice_rates, plain_rates;
  std::vector<ojson> runs;
  for (int rep = 0; rep < o.repeats; ++rep) {
    const std::string tag = std::to_string(rep);
    double s = 0, p = 0;
    if (rep % 2 == 0) {
      p = run_plain(o, corpus, **http, "bench-plain-" + tag);
      s = run_sluice(o, corpus, server, "bench-sluice-" + tag);
    } else {
      s = run_sluice(o, corpus, server, "bench-sluice-" + tag);
      p = run_plain(o, corpus, **http, "bench-plain-" + tag);
    }
    sluice_rates.push_back(s);
    plain_rates.push_back(p);
    ojson line = {{"event", "run"},
                  {"repeat", rep},
                  {"sluice_upserts_per_s", round_to(s, 1)},
                  {"plain_upserts_per_s", round_to(p, 1)},
                  {"ratio", round_to(s / p, 3)}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
    runs.push_back(line);
  }
  const double s = sluice::bench::median(sluice_rates), p = sluice::bench::median(plain_rates);
  ojson summary = {{"event", "summary"},
                   {"benchmark", "chroma_upsert"},
                   {"machine", sluice::bench::machine_facts(server.dir())},
                   {"build_type", SLUICE_BENCH_BUILD_TYPE},
                   {"chroma", "chromadb 3.0.14 (npm), js bindings 1.0.5, `chroma run` on loopback"},
                   {"settings",
                    {{"docs", o.docs},
                     {"chunks_per_doc", o.chunks},
                     {"records_per_run", o.docs * o.chunks},
                     {"dim", o.dim},
                     {"batch", o.batch},
                     {"text_bytes", o.text_bytes},
                     {"repeats", o.repeats},
                     {"quick", quick}}},
                   {"median",
                    {{"sluice_upserts_per_s", round_to(s, 1)},
                     {"plain_upserts_per_s", round_to(p, 1)},
                     {"ratio_sluice_vs_plain", round_to(p > 0 ? s / p : 0, 3)}}},
                   {"target", {{"ratio_sluice_vs_plain_min", 0.8}, {"met", p > 0 && s / p >= 0.8}}}};
  std::printf("%s\n", summary.dump().c_str());
  std::fprintf(stderr,
               "chroma_bench: sluice %.0f upserts/s, plain loop %.0f upserts/s, ratio %.3f (batch %d, %d x "
               "%d records, dim %d)\n",
               s, p, p > 0 ? s / p : 0, o.batch, o.docs, o.chunks, o.dim);
  return 0;
}
