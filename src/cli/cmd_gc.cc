// `sluice gc [--older-than 24h] [--dry-run]`: removes orphaned blobs (claim-check payloads and
// uploads nothing will read any more) from the blob store, file: or s3:// alike. What counts as
// an orphan, and why it is safe, is in pipeline/gc.h.
// Output: one JSON summary on stdout (the removed URIs with --dry-run, so a user can look first).
// Exit 0; 1 when a removal failed or the topics could not be read; 2 on bad input.
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "cli/common.h"
#include "pipeline/gc.h"
#include "pipeline/pipeline_file.h"
#include "pipeline/settings.h"
#include "pipeline/sources.h"

namespace sluice::cli {
namespace {

struct GcFlags {
  QueueFlags queue;
  config::Values settings;
  std::string older_than = "24h";
  bool dry_run = false;
};

int run_gc(const GcFlags& f) {
  auto ttl = pipeline::parse_duration(f.older_than);  // the pipeline file's durations
  if (!ttl)
    return usage_error("--older-than '" + f.older_than + "': use a duration such as 90s, 30m, 24h or 168h");
  const std::string data = resolve_data_dir(f.queue);
  auto settings = pipeline::resolve_settings(f.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());
  auto q = open_queue(f.queue, /*create=*/false);
  if (!q.is_ok()) return report(q.status());
  const pipeline::S3Config s3{settings->s3_endpoint, settings->s3_region};
  auto store = store::open_blob_store(pipeline::with_s3_config(settings->store, s3));
  if (!store.is_ok()) return report(store.status().with_context("blob store " + settings->store));
  pipeline::GcOptions opts;
  opts.older_than = *ttl;
  opts.dry_run = f.dry_run;
  auto r = pipeline::collect_garbage(**q, **store, *settings, opts);
  if (!r.is_ok()) return report(r.status().with_context("gc"));
  nlohmann::ordered_json j = {{"event", "gc"},
                              {"store", (*store)->uri()},
                              {"older_than_ms", ttl->count()},
                              {"dry_run", f.dry_run},
                              {"listed", r->listed},
                              {"kept_young", r->young},
                              {"kept_referenced", r->referenced},
                              {f.dry_run ? "would_remove" : "removed", r->removed},
                              {"removed_bytes", r->removed_bytes},
                              {"errors", r->errors}};
  if (f.dry_run) j["uris"] = r->removed_uris;
  if (!write_stdout(dump_line(j))) return report(Status::io_error("writing to stdout failed"));
  return r->errors.empty() ? kExitOk : kExitFailure;
}

}  // namespace

Command add_gc_command(CLI::App& root) {
  auto flags = std::make_shared<GcFlags>();
  CLI::App* app = root.add_subcommand(
      "gc", "Remove orphaned claim-check blobs and uploads older than a TTL from the blob store");
  app->add_option("--older-than", flags->older_than,
                  "Only blobs older than this (90s, 30m, 24h, 168h; default 24h)");
  app->add_flag("--dry-run", flags->dry_run, "List what would be removed; remove nothing");
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings,
                      {"store", "s3_endpoint", "s3_region", "group"});
  return {app, [flags] { return run_gc(*flags); }};
}

}  // namespace sluice::cli
