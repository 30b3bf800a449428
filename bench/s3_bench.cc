// s3_bench: what sluice's S3 blob store does against an S3 endpoint, for bench/run_s3_bench.sh.
//   s3_bench put  --uri s3://BUCKET?endpoint=URL --prefix P --count N --size BYTES
//   s3_bench pull --uri s3://BUCKET?endpoint=URL --prefix P --out DIR [--threads T]
//   s3_bench putdir --uri s3://BUCKET?endpoint=URL --prefix P --dir DIR
// `put` fills the prefix with N objects of BYTES each; `putdir` uploads a folder's files (keys:
// prefix + path below DIR). `pull` lists the prefix page by page
// (ListObjectsV2, 1,000 keys a page) and downloads every object into DIR with T threads sharing
// one store (its pooled keep-alive connections), and prints one JSON line: objects, bytes, list
// seconds, download seconds and the rates. Credentials come from the environment, as for sluice.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "store/blob_store.h"

namespace {

using sluice::bench::Clock;
using sluice::bench::round_to;
using sluice::bench::seconds_since;

int fail(const sluice::Status& st) {
  std::fprintf(stderr, "s3_bench: %s\n", st.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"s3_bench: list and download through sluice's S3 blob store"};
  std::string uri, prefix, out;
  int64_t count = 1000, size = 4096;
  int threads = 1;
  CLI::App* put = app.add_subcommand("put", "Fill a prefix with objects");
  CLI::App* pull = app.add_subcommand("pull", "List a prefix and download every object");
  CLI::App* putdir = app.add_subcommand("putdir", "Upload a folder's files");
  std::string dir;
  putdir->add_option("--dir", dir, "The folder")->required();
  for (CLI::App* c : {put, pull, putdir}) {
    c->add_option("--uri", uri, "s3://BUCKET?endpoint=URL")->required();
    c->add_option("--prefix", prefix, "Key prefix")->required();
  }
  put->add_option("--count", count, "Objects");
  put->add_option("--size", size, "Bytes per object");
  pull->add_option("--out", out, "Download directory")->required();
  pull->add_option("--threads", threads, "Download threads");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);

  auto opened = sluice::store::open_blob_store(uri);
  if (!opened.is_ok()) return fail(opened.status());
  auto& store = *opened;

  if (putdir->parsed()) {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::string rel = std::filesystem::relative(it->path(), dir).string();
      auto ref = store->put_file(prefix + rel, it->path().string());
      if (!ref.is_ok()) return fail(ref.status());
      ++n;
    }
    if (ec) return fail(sluice::Status::io_error("walking " + dir + ": " + ec.message()));
    std::fprintf(stderr, "s3_bench: uploaded %zu files from %s\n", n, dir.c_str());
    return 0;
  }
  if (put->parsed()) {
    std::string body(static_cast<size_t>(size), 'x');
    for (int64_t i = 0; i < count; ++i) {
      body.replace(0, 16, std::to_string(1000000000000000 + i));  // distinct bytes per object
      char key[64];
      std::snprintf(key, sizeof key, "%06lld.txt", static_cast<long long>(i));
      auto ref = store->put(prefix + key, body);
      if (!ref.is_ok()) return fail(ref.status());
    }
    return 0;
  }

  auto t0 = Clock::now();
  std::vector<sluice::store::ObjectInfo> objects;
  std::string token;
  do {
    auto page = store->list(prefix, token, 1000);
    if (!page.is_ok()) return fail(page.status());
    for (auto& o : page->objects) objects.push_back(std::move(o));
    token = page->next;
  } while (!token.empty());
  const double list_s = seconds_since(t0);

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  auto t1 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < objects.size() && !failed; i = next++) {
        auto ref = store->fetch(objects[i].uri, out + "/" + std::to_string(i));
        if (!ref.is_ok()) {
          std::fprintf(stderr, "s3_bench: %s\n", ref.status().to_string().c_str());
          failed = true;
          return;
        }
        bytes += ref->size;
      }
    });
  }
  for (auto& t : pool) t.join();
  const double fetch_s = seconds_since(t1);
  if (failed) return 1;
  nlohmann::ordered_json j = {{"type", "sluice_pull"},
                              {"threads", threads},
                              {"objects", objects.size()},
                              {"bytes", bytes.load()},
                              {"list_s", round_to(list_s)},
                              {"download_s", round_to(fetch_s)},
                              {"list_objects_per_s", round_to(objects.size() / list_s, 1)},
                              {"download_objects_per_s", round_to(objects.size() / fetch_s, 1)},
                              {"total_objects_per_s", round_to(objects.size() / (list_s + fetch_s), 1)}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
