// `sluice generate SOURCE`: the seeds' task generator. Lists a bucket prefix (s3://bucket/prefix)
// or a folder and puts one task per object on doc_upload, in the seeds' task shape plus doc_id and
// trace_id, for `sluice worker` processes to do. It skips objects whose latest success on
// doc_results names the same version (the ETag; a file's mtime and size), so running it again
// queues only what is new or changed (--force queues everything).
//
// Output: with --dry-run, each task as one JSON line on stdout and nothing queued; otherwise one
// JSON summary on stdout. Exit 0, 2 on bad input (a missing --single object, a bad URI or bucket,
// wrong credentials), 1 on other errors.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "pipeline/envelope.h"
#include "pipeline/read_to_end.h"
#include "pipeline/scanner.h"
#include "pipeline/settings.h"
#include "pipeline/sources.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"

namespace sluice::cli {
namespace {

using nlohmann::ordered_json;

// The generator's own settings: options, their environment variables and the seeds' names.
constexpr config::Property kGenerateProperties[] = {
    {"prefix",
     config::Kind::kString,
     "",
     "Only keys under this prefix (appended to SOURCE's prefix)",
     {},
     0,
     0,
     "SLUICE_PREFIX",
     "FILE_PREFIX"},
    {"max_files",
     config::Kind::kInt,
     "0",
     "Stop after this many tasks (0: no limit)",
     {},
     0,
     std::numeric_limits<int64_t>::max(),
     "SLUICE_MAX_FILES",
     "MAX_FILES"},
    {"single",
     config::Kind::kString,
     "",
     "Generate one task for this key (relative to SOURCE; a file below the folder)",
     {},
     0,
     0,
     "SLUICE_SINGLE",
     "SINGLE_FILE"},
    {"dest_bucket",
     config::Kind::kString,
     "",
     "The bucket results go to (carried in each task)",
     {},
     0,
     0,
     "SLUICE_DEST_BUCKET",
     "DEST_BUCKET"},
    {"dest_key",
     config::Kind::kString,
     "",
     "With --single: the result's key; otherwise a prefix, to which each object's key below SOURCE is "
     "appended",
     {},
     0,
     0,
     "SLUICE_DEST_KEY",
     "DEST_KEY"},
    {"batch_size",
     config::Kind::kInt,
     "50",
     "Tasks sent before waiting for the queue to acknowledge them",
     {},
     1,
     100'000,
     "SLUICE_BATCH_SIZE",
     "BATCH_SIZE"},
};

struct GenerateFlags {
  QueueFlags queue;
  config::Values settings;  // the pipeline's (s3_endpoint, s3_region, partitions ...)
  config::Values generate;  // kGenerateProperties
  std::string source;
  std::vector<std::string> include, exclude;
  bool dry_run = false;
  bool force = false;
};

struct Settings {
  std::string prefix, single, dest_bucket, dest_key;
  uint64_t max_files = 0;
  size_t batch_size = 50;
};

Result<Settings> resolve(const config::Values& given) {
  auto env = [](const char* n) { return std::getenv(n); };
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::layer(kGenerateProperties, given, env));
  const auto t = std::span<const config::Property>(kGenerateProperties);
  Settings s;
  SLUICE_ASSIGN_OR_RETURN(s.prefix, config::get_string(v, t, "prefix"));
  SLUICE_ASSIGN_OR_RETURN(s.single, config::get_string(v, t, "single"));
  SLUICE_ASSIGN_OR_RETURN(s.dest_bucket, config::get_string(v, t, "dest_bucket"));
  SLUICE_ASSIGN_OR_RETURN(s.dest_key, config::get_string(v, t, "dest_key"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max, config::get_int(v, t, "max_files"));
  SLUICE_ASSIGN_OR_RETURN(int64_t batch, config::get_int(v, t, "batch_size"));
  s.max_files = static_cast<uint64_t>(max);
  s.batch_size = static_cast<size_t>(batch);
  return s;
}

// The version each document's latest success on doc_results was made from, by doc_id.
Result<std::map<std::string, std::string>> processed_versions(queue::Queue& q) {
  std::map<std::string, std::string> out;
  auto info = q.admin().describe_topic(pipeline::kTopicResults);
  if (!info.is_ok()) {
    if (info.status().code() == Code::kNotFound) return out;
    return info.status();
  }
  SLUICE_RETURN_IF_ERROR(pipeline::for_each_to_end(q, {*info}, [&](const queue::Message& m) {
    auto r = pipeline::parse_result(m.value);
    if (!r.is_ok() || r->source.version.empty()) return;
    // Later results win: a failure after a success means it is not done at that version.
    if (r->status == pipeline::ResultStatus::kFailed) {
      out.erase(r->doc_id);
    } else {
      out[r->doc_id] = r->source.version;
    }
  }));
  return out;
}

std::string file_version(const pipeline::ScannedFile& f) {
  return std::to_string(f.mtime_ns) + "-" + std::to_string(f.size);
}

class Generator {
 public:
  explicit Generator(GenerateFlags& f) : f_(f) {}
  int go();

 private:
  // Queues (or prints) one task; false when sending failed (error_ is set).
  bool emit(pipeline::Task task, const std::string& relative);
  Status flush();

  GenerateFlags& f_;
  Settings s_;
  std::unique_ptr<queue::Producer> producer_;
  std::map<std::string, std::string> done_;
  size_t listed_ = 0, queued_ = 0, skipped_ = 0, in_batch_ = 0;
  Status error_;
};

bool Generator::emit(pipeline::Task task, const std::string& relative) {
  ++listed_;
  task.doc_id = pipeline::doc_id_for(task.source.uri);
  task.trace_id = pipeline::random_id();
  task.generated_at = pipeline::now_iso8601();
  task.dest_bucket = s_.dest_bucket;
  if (!s_.single.empty()) {
    task.dest_key = s_.dest_key;
  } else if (!s_.dest_key.empty()) {
    task.dest_key = s_.dest_key + (s_.dest_key.back() == '/' ? "" : "/") + relative;
  }
  if (!f_.force && !task.source.version.empty()) {
    auto it = done_.find(task.doc_id);
    if (it != done_.end() && it->second == task.source.version) {
      ++skipped_;
      return true;
    }
  }
  if (f_.dry_run) {
    ++queued_;
    if (!write_stdout(pipeline::to_json(task) + "\n")) {
      error_ = Status::io_error("writing to stdout failed");
      return false;
    }
    return true;
  }
  pipeline::Output out;
  out.topic = pipeline::kTopicUpload;
  out.key = task.doc_id;
  out.value = pipeline::to_json(task);
  out.headers = pipeline::standard_headers(task.trace_id);
  auto sent = pipeline::send_output(*producer_, out);
  if (!sent.is_ok()) {
    error_ = sent.status().with_context("queueing " + task.source.uri);
    return false;
  }
  ++queued_;
  if (++in_batch_ >= s_.batch_size) {
    error_ = flush();
    return error_.is_ok();
  }
  return true;
}

Status Generator::flush() {
  in_batch_ = 0;
  if (!producer_) return {};
  return producer_->flush(queue::Millis(60000)).with_context("queueing the tasks");
}

int Generator::go() {
  install_stop_signals();
  auto s = resolve(f_.generate);
  if (!s.is_ok()) return report(s.status());
  s_ = std::move(s).value();
  const std::string data = resolve_data_dir(f_.queue);
  auto settings = pipeline::resolve_settings(f_.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());
  const pipeline::S3Config s3{settings->s3_endpoint, settings->s3_region};

  // The source first: a bad URI or bucket is the user's to fix before anything is opened.
  const bool bucket = pipeline::is_bucket_uri(f_.source);
  pipeline::BucketUri where;
  if (bucket) {
    auto parsed = pipeline::parse_bucket_uri(f_.source);
    if (!parsed.is_ok()) return report(parsed.status());
    where = std::move(parsed).value();
    where.prefix += s_.prefix;
  }

  std::unique_ptr<queue::Queue> q;
  if (!f_.dry_run) {
    auto opened = open_queue(f_.queue, /*create=*/true);
    if (!opened.is_ok()) return report(opened.status());
    q = std::move(opened).value();
    if (Status st = pipeline::ensure_pipeline_topics(q->admin(), *settings); !st.is_ok()) return report(st);
    auto producer = q->make_producer({});
    if (!producer.is_ok()) return report(producer.status());
    producer_ = std::move(producer).value();
  }
  if (!f_.force) {
    // A dry run reads what is there without creating a queue.
    std::unique_ptr<queue::Queue> look;
    queue::Queue* from = q.get();
    if (!from) {
      auto opened = open_queue(f_.queue, /*create=*/false);
      if (opened.is_ok()) look = std::move(opened).value();
      from = look.get();
    }
    if (from) {
      auto done = processed_versions(*from);
      if (!done.is_ok()) return report(done.status().with_context("reading doc_results"));
      done_ = std::move(done).value();
    }
  }

  bool truncated = false;
  if (bucket) {
    pipeline::SourceFetcher buckets(s3, data + "/tmp");
    auto store = buckets.bucket(where.bucket);
    if (!store.is_ok()) return report(store.status());
    if (!s_.single.empty()) {
      std::string key = s_.single;
      if (!where.prefix.empty()) key = where.prefix + (where.prefix.back() == '/' ? "" : "/") + s_.single;
      auto uri = (*store)->uri_of(key);
      if (!uri.is_ok()) return report(uri.status().with_context("--single"));
      auto info = (*store)->stat(*uri);
      if (!info.is_ok()) {
        if (info.status().code() == Code::kNotFound) {
          return report(
              Status::not_found("--single: " + *uri + " does not exist (" + info.status().message() + ")"));
        }
        return report(info.status());
      }
      pipeline::Task task;
      task.source = {info->uri, where.bucket, key, info->version};
      task.size = info->size;
      task.last_modified = info->last_modified;
      std::string name = key.substr(key.find_last_of('/') + 1);
      if (!emit(std::move(task), name)) return report(error_);
    } else {
      pipeline::BucketListOptions lo;
      lo.include = f_.include;
      lo.exclude = f_.exclude;
      lo.max_files = s_.max_files;
      Status st = pipeline::list_bucket(
          **store, where, lo,
          [&](const pipeline::ListedObject& o) {
            if (stop_requested()) return false;
            pipeline::Task task;
            task.source = o.source;
            task.size = o.size;
            task.last_modified = o.last_modified;
            return emit(std::move(task), o.relative);
          },
          &truncated);
      if (!error_.is_ok()) return report(error_);
      if (!st.is_ok()) return report(st.with_context("listing " + f_.source));
    }
  } else {
    std::string path = f_.source;
    if (!s_.single.empty()) path += "/" + s_.single;
    if (!s_.prefix.empty()) {
      return report(
          Status::invalid_argument("--prefix is for buckets; for a folder name the subfolder in SOURCE"));
    }
    pipeline::ScanOptions so{f_.include, f_.exclude, s_.max_files};
    pipeline::ScanResult scanned = pipeline::scan({path}, so, [&](const pipeline::ScannedFile& file) {
      if (!error_.is_ok() || stop_requested()) return;
      pipeline::Task task;
      task.source = pipeline::file_source(file.path);
      task.source.version = file_version(file);
      task.size = file.size;
      task.metadata = {{"size", file.size}, {"mtime_ns", file.mtime_ns}, {"relative", file.relative}};
      (void)emit(std::move(task), file.relative);
    });
    if (!error_.is_ok()) return report(error_);
    for (const auto& prob : scanned.problems) {
      std::fprintf(stderr, "problem: %s: %s\n", prob.path.c_str(), prob.error.to_string().c_str());
    }
    if (!s_.single.empty() && scanned.files.empty()) {
      return report(Status::not_found("--single: " + path + " is not a file that can be read"));
    }
    truncated = scanned.truncated;
  }
  if (Status st = flush(); !st.is_ok()) return report(st);
  if (truncated) {
    std::fprintf(stderr, "note: stopped after --max-files %" PRIu64 "; more objects were there\n",
                 s_.max_files);
  }
  if (skipped_) {
    std::fprintf(stderr,
                 "note: skipped %zu already processed at the same version (--force queues them again)\n",
                 skipped_);
  }
  if (!f_.dry_run) {
    ordered_json j = {{"event", "summary"},
                      {"source", f_.source},
                      {"listed", listed_},
                      {"queued", queued_},
                      {"skipped", skipped_},
                      {"truncated", truncated},
                      {"topic", pipeline::kTopicUpload}};
    if (!write_stdout(dump_line(j))) return report(Status::io_error("writing to stdout failed"));
  }
  return stop_requested() ? 130 : kExitOk;
}

}  // namespace

std::span<const config::Property> generate_properties() {
  return kGenerateProperties;
}

Command add_generate_command(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* app = root.add_subcommand(
      "generate", "The task generator: list a bucket prefix or a folder, queue one task per object");
  app->add_option("source", flags->source, "s3://BUCKET[/PREFIX] or a folder")->required();
  add_setting_options(*app, kGenerateProperties, flags->generate);
  app->add_option("--include", flags->include, "Only keys matching this glob (repeatable), e.g. '*.pdf'");
  app->add_option("--exclude", flags->exclude, "Skip keys and folders matching this glob (repeatable)");
  app->add_flag("--dry-run", flags->dry_run, "Print the tasks as JSON lines instead of queueing them");
  app->add_flag("--force", flags->force, "Also queue objects already processed at the same version");
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings,
                      {"s3_endpoint", "s3_region", "partitions"});
  return {app, [flags] {
            Generator g(*flags);
            return g.go();
          }};
}

}  // namespace sluice::cli
