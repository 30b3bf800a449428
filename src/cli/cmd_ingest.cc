// `sluice ingest PATH...`: the main job. Scans the paths, puts one task per file on doc_upload,
// runs the parse, embed and index stages in this process, and follows doc_results until every file
// of this run has its result. Exit 0 when none failed, 3 when some failed, 1 on a fatal error,
// 130 when interrupted (the next run resumes: finished files are skipped, queued work is kept).
//
// Output: progress on stderr (a bar on a terminal, JSON lines otherwise), each failure on stderr as
// it happens, the summary on stdout (text on a terminal, one JSON object otherwise or with --json).
// The stages' own JSON-lines log goes to <data>/logs/sluice.log so it does not fight the bar.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "cli/common.h"
#include "pipeline/envelope.h"
#include "pipeline/pipeline.h"
#include "pipeline/scanner.h"
#include "pipeline/settings.h"
#include "pipeline/sources.h"
#include "pipeline/stages.h"

namespace sluice::cli {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr int kExitInterrupted = 130;

struct IngestFlags {
  QueueFlags queue;
  config::Values settings;
  std::vector<std::string> paths;
  std::vector<std::string> include, exclude;
  uint64_t max_files = 0;
  bool prune = false;
  bool no_workers = false;
  std::string progress = "auto";
  bool json = false;
};

struct Pending {
  std::string path;
  uint64_t size = 0;
};

// What the run has seen so far.
struct Tally {
  size_t total = 0, done = 0, ok = 0, skipped = 0, failed = 0, review = 0;
  uint64_t pages = 0, chunks = 0, bytes = 0;
  std::map<std::string, size_t> failed_by_class;
  std::map<std::string, double> stage_ms;  // summed over documents
  size_t scan_problems = 0, pruned = 0;
};

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%" PRId64 ":%02d:%02d", t / 3600, int(t / 60 % 60), int(t % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%d:%02d", int(t / 60), int(t % 60));
  }
  return buf;
}

class Progress {
 public:
  enum class Mode { kBar, kJson, kNone };
  Progress(Mode mode, Clock::time_point started) : mode_(mode), started_(started) {}

  void update(const Tally& t, bool force = false) {
    auto now = Clock::now();
    auto every = mode_ == Mode::kBar ? std::chrono::milliseconds(200) : std::chrono::milliseconds(2000);
    if (mode_ == Mode::kNone || (!force && now - last_ < every)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - started_).count();
    const double pages_s = secs > 0 ? t.pages / secs : 0;
    const double docs_s = secs > 0 ? t.done / secs : 0;
    const double eta = docs_s > 0 ? (t.total - t.done) / docs_s : NAN;
    if (mode_ == Mode::kJson) {
      ordered_json j = {{"event", "progress"},
                        {"done", t.done},
                        {"total", t.total},
                        {"ok", t.ok},
                        {"skipped", t.skipped},
                        {"review", t.review},
                        {"failed", t.failed},
                        {"pages", t.pages},
                        {"chunks", t.chunks},
                        {"seconds", std::round(secs * 10) / 10},
                        {"pages_per_s", std::round(pages_s * 10) / 10}};
      if (std::isfinite(eta)) j["eta_s"] = std::round(eta);
      std::string line = dump_line(j);
      std::fwrite(line.data(), 1, line.size(), stderr);
      return;
    }
    constexpr int kWidth = 28;
    const int filled = t.total ? static_cast<int>(kWidth * t.done / t.total) : 0;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    char line[256];
    std::snprintf(line, sizeof line, "\r[%s] %zu/%zu docs  %.1f pages/s  ETA %s  failed %zu\x1b[K",
                  bar.c_str(), t.done, t.total, pages_s, fmt_duration(eta).c_str(), t.failed);
    std::fputs(line, stderr);
    drawn_ = true;
  }
  // Clears the bar before other text goes to the terminal.
  void clear() {
    if (mode_ == Mode::kBar && drawn_) std::fputs("\r\x1b[K", stderr);
    drawn_ = false;
  }
  Mode mode() const { return mode_; }

 private:
  Mode mode_;
  Clock::time_point started_;
  Clock::time_point last_{};
  bool drawn_ = false;
};

// The indexed version of the document when what identifies its bytes without reading them (a
// file's size and mtime, an object's size and ETag) is what the index stored at the last ingest;
// nullopt otherwise.
std::optional<std::string> unchanged_version(index::Index& index, const std::string& doc_id,
                                             const nlohmann::json& listed) {
  auto doc = index.get_document(doc_id);
  if (!doc.is_ok() || !*doc) return std::nullopt;
  auto meta = nlohmann::json::parse((*doc)->metadata_json, nullptr, false);
  if (!meta.is_object()) return std::nullopt;
  const char* id = listed.contains("etag") ? "etag" : "mtime_ns";
  if (!meta.contains(id) || meta[id] != listed[id] ||
      meta.value("size", uint64_t{0}) != listed.value("size", uint64_t{1})) {
    return std::nullopt;
  }
  return (*doc)->version;
}

bool under_any(const std::string& path, const std::vector<std::string>& roots) {
  for (const auto& r : roots) {
    if (path == r) return true;
    if (path.size() > r.size() && path.compare(0, r.size(), r) == 0 &&
        (r.back() == '/' || path[r.size()] == '/')) {
      return true;
    }
  }
  return false;
}

std::string abs_normal(const std::string& p) {
  std::error_code ec;
  auto a = std::filesystem::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

class IngestRun {
 public:
  explicit IngestRun(IngestFlags& f) : f_(f), started_(Clock::now()) {}
  int go();

 private:
  void report_failure(const std::string& source, const std::string& cls, const std::string& message);
  void report_review(const std::string& source, const std::string& reason);
  void on_result(const pipeline::ResultNotification& r);
  int finish(int code, bool interrupted);

  IngestFlags& f_;
  Clock::time_point started_;
  Tally t_;
  std::unordered_map<std::string, Pending> pending_;  // by trace_id
  std::unique_ptr<Progress> progress_;
  std::string log_path_;
  std::vector<std::pair<std::string, std::string>> failures_;  // source, "class: message" (first 100)
};

void IngestRun::report_failure(const std::string& source, const std::string& cls,
                               const std::string& message) {
  ++t_.failed_by_class[cls];
  if (failures_.size() < 100) failures_.emplace_back(source, cls + ": " + message);
  progress_->clear();
  if (progress_->mode() == Progress::Mode::kBar || progress_->mode() == Progress::Mode::kNone) {
    std::string line = "failed: " + source + ": " + cls + ": " + message + "\n";
    std::fputs(line.c_str(), stderr);
  } else {
    std::string line =
        dump_line({{"event", "failed"}, {"source", source}, {"error_class", cls}, {"message", message}});
    std::fputs(line.c_str(), stderr);
  }
}

// A document the quality gate held: not a failure (the exit status does not change), but a person
// should look at it (`sluice review list`), so it is said as it happens.
void IngestRun::report_review(const std::string& source, const std::string& reason) {
  progress_->clear();
  std::string line = progress_->mode() == Progress::Mode::kJson
                         ? dump_line({{"event", "review"}, {"source", source}, {"reason", reason}})
                         : "review: " + source + ": " + reason + " (see `sluice review list`)\n";
  std::fputs(line.c_str(), stderr);
}

void IngestRun::on_result(const pipeline::ResultNotification& r) {
  auto it = pending_.find(r.trace_id);
  if (it == pending_.end()) return;  // another run's document
  const std::string source = it->second.path;
  pending_.erase(it);
  ++t_.done;
  t_.pages += static_cast<uint64_t>(r.pages);
  t_.chunks += static_cast<uint64_t>(r.chunks);
  for (const auto& [stage, ms] : r.stage_ms) t_.stage_ms[stage] += ms;
  switch (r.status) {
    case pipeline::ResultStatus::kSuccess:
      ++t_.ok;
      t_.bytes += r.input_size;
      break;
    case pipeline::ResultStatus::kSkipped: ++t_.skipped; break;
    case pipeline::ResultStatus::kReview:
      ++t_.review;
      report_review(source, r.reason);
      break;
    case pipeline::ResultStatus::kFailed:
      ++t_.failed;
      report_failure(source, r.error ? std::string(error_class_name(r.error->error_class())) : "fatal",
                     r.error ? r.error->message() : "no error recorded");
      break;
  }
}

int IngestRun::go() {
  install_stop_signals();
  const std::string data = resolve_data_dir(f_.queue);
  std::error_code ec;
  std::filesystem::create_directories(data + "/logs", ec);
  if (ec)
    return report(Status::invalid_argument("cannot create the data directory " + data + ": " + ec.message()));
  auto settings = pipeline::resolve_settings(f_.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());

  Progress::Mode mode = Progress::Mode::kJson;
  if (f_.progress == "bar" || (f_.progress == "auto" && ::isatty(2))) mode = Progress::Mode::kBar;
  if (f_.progress == "none") mode = Progress::Mode::kNone;
  progress_ = std::make_unique<Progress>(mode, started_);

  // The stages' log lines go to a file: the terminal belongs to the progress and the failures.
  log_path_ = data + "/logs/sluice.log";
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd >= 0) sluice::log::set_fd(log_fd);

  // With --no-workers no stage runs here: `sluice worker` processes elsewhere do the work.
  auto opened = open_pipeline(
      f_.queue, *settings, f_.no_workers ? std::vector<std::string>{} : pipeline::PipelineOptions().stages);
  if (!opened.is_ok()) return report(opened.status());
  auto& q = opened->queue;
  pipeline::Pipeline& p = *opened->pipeline;

  // Follow doc_results from now on (before any task is sent, so no result is missed).
  queue::ConsumerOptions copts;
  copts.group = "sluice-ingest-" + pipeline::random_id().substr(0, 12);
  copts.topics = {pipeline::kTopicResults};
  copts.start_from = queue::StartFrom::kLatest;
  copts.ephemeral = true;
  auto results = q->make_consumer(copts);
  if (!results.is_ok()) return report(results.status());
  // One poll takes the group's place at the end of doc_results before any task is sent; nothing of
  // this run can be there yet, so what it returns (another run's results) is not ours.
  std::vector<queue::Message> batch;
  if (Status st = (*results)->poll(batch, 1, queue::Millis(0)); !st.is_ok()) return report(st);

  // Scan: folders and files with the scanner, s3:// prefixes by listing them.
  std::vector<std::string> local_paths, bucket_uris;
  for (const auto& path : f_.paths)
    (pipeline::is_bucket_uri(path) ? bucket_uris : local_paths).push_back(path);
  std::vector<pipeline::BucketUri> buckets;
  for (const auto& uri : bucket_uris) {
    auto b = pipeline::parse_bucket_uri(uri);
    if (!b.is_ok()) {
      p.stop();
      (void)p.wait();
      return report(b.status());
    }
    buckets.push_back(std::move(b).value());
  }
  pipeline::ScanOptions sopts{f_.include, f_.exclude, f_.max_files};
  pipeline::ScanResult scanned;
  if (!local_paths.empty()) scanned = pipeline::scan(local_paths, sopts);
  std::vector<pipeline::ListedObject> objects;
  const pipeline::S3Config s3{settings->s3_endpoint, settings->s3_region};
  pipeline::SourceFetcher bucket_stores(s3, data + "/tmp");
  for (const auto& b : buckets) {
    pipeline::BucketListOptions lo;
    lo.include = f_.include;
    lo.exclude = f_.exclude;
    if (f_.max_files)
      lo.max_files = f_.max_files > scanned.files.size() + objects.size()
                         ? f_.max_files - scanned.files.size() - objects.size()
                         : 0;
    if (f_.max_files && lo.max_files == 0) {
      scanned.truncated = true;
      break;
    }
    bool truncated = false;
    auto store = bucket_stores.bucket(b.bucket);
    Status st = store.is_ok() ? pipeline::list_bucket(
                                    **store, b, lo,
                                    [&](const pipeline::ListedObject& o) {
                                      objects.push_back(o);
                                      return !stop_requested();
                                    },
                                    &truncated)
                              : store.status();
    if (!st.is_ok()) {
      p.stop();
      (void)p.wait();
      return report(st.with_context("listing s3://" + b.bucket + "/" + b.prefix));
    }
    scanned.truncated = scanned.truncated || truncated;
  }
  for (const auto& prob : scanned.problems) {
    ++t_.scan_problems;
    report_failure(prob.path, std::string(error_class_name(prob.error.error_class())), prob.error.message());
  }
  if (scanned.truncated) {
    std::fprintf(stderr, "note: stopped after --max-files %" PRIu64 " files; more were there\n",
                 f_.max_files);
  }
  t_.total = scanned.files.size() + objects.size();

  // Enqueue: one task per file, or a `skipped` result at once when size and mtime are unchanged.
  auto producer = q->make_producer({});
  if (!producer.is_ok()) return report(producer.status());
  p.start();
  std::set<std::string> seen_doc_ids;
  const std::string now = pipeline::now_iso8601();
  std::vector<pipeline::Task> tasks;
  for (const auto& file : scanned.files) {
    pipeline::Task task;
    task.source = pipeline::file_source(file.path);
    task.size = file.size;
    task.metadata = {{"size", file.size}, {"mtime_ns", file.mtime_ns}, {"relative", file.relative}};
    tasks.push_back(std::move(task));
  }
  for (const auto& o : objects) {
    pipeline::Task task;
    task.source = o.source;
    task.size = o.size;
    task.last_modified = o.last_modified;
    task.metadata = {{"size", o.size}, {"etag", o.source.version}, {"relative", o.relative}};
    tasks.push_back(std::move(task));
  }
  for (auto& task : tasks) {
    if (stop_requested()) break;
    const std::string shown = task.source.bucket.empty() ? task.source.key : task.source.uri;
    task.doc_id = pipeline::doc_id_for(task.source.uri);
    task.trace_id = pipeline::random_id();
    task.generated_at = now;
    seen_doc_ids.insert(task.doc_id);
    pending_[task.trace_id] = {shown, task.size};
    pipeline::Output out;
    if (auto version = unchanged_version(p.index(), task.doc_id, task.metadata)) {
      pipeline::ResultNotification r;
      r.timestamp = now;
      r.worker = pipeline::worker_name();
      r.status = pipeline::ResultStatus::kSkipped;
      r.doc_id = task.doc_id;
      r.version = *version;
      r.source = task.source;
      r.input_size = task.size;
      r.reason = task.source.bucket.empty()
                     ? "unchanged: same size and modification time as when it was indexed"
                     : "unchanged: same ETag and size as when it was indexed";
      r.trace_id = task.trace_id;
      out = pipeline::result_output(r);
    } else {
      out.topic = pipeline::kTopicUpload;
      out.key = task.doc_id;
      out.value = pipeline::to_json(task);
      out.headers = pipeline::standard_headers(task.trace_id);
    }
    auto sent = pipeline::send_output(**producer, out);
    if (!sent.is_ok()) {
      p.stop();
      (void)p.wait();
      return report(sent.status().with_context("queueing " + shown));
    }
  }
  if (Status st = (*producer)->flush(queue::Millis(60000)); !st.is_ok()) {
    p.stop();
    (void)p.wait();
    return report(st.with_context("queueing the tasks"));
  }

  // Follow the results until every document of this run has one. A stop that came while the
  // files were listed or queued is an interruption too, even when nothing was queued yet.
  bool interrupted = stop_requested();
  while (!pending_.empty()) {
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    if (Status st = p.failure(); !st.is_ok()) {
      progress_->clear();
      p.stop();
      (void)p.wait();
      return report(st);
    }
    batch.clear();
    Status st = (*results)->poll(batch, 1024, queue::Millis(100));
    if (!st.is_ok()) {
      progress_->clear();
      p.stop();
      (void)p.wait();
      return report(st.with_context("following doc_results"));
    }
    for (const auto& m : batch) {
      auto r = pipeline::parse_result(m.value);
      if (r.is_ok()) on_result(*r);
      (void)(*results)->ack(m);
    }
    progress_->update(t_);
  }
  progress_->update(t_, true);
  progress_->clear();

  if (f_.prune && !interrupted) {
    std::vector<std::string> roots;
    for (const auto& path : local_paths) roots.push_back(abs_normal(path));
    auto docs = p.index().list_documents();
    if (!docs.is_ok()) return report(docs.status());
    for (const auto& d : *docs) {
      if (seen_doc_ids.count(d.doc_id)) continue;
      if (pipeline::is_bucket_uri(d.source)) {
        // Under one of this run's prefixes, and the object is gone (not just filtered out).
        const pipeline::BucketUri* in = nullptr;
        for (const auto& b : buckets) {
          if (d.source.starts_with("s3://" + b.bucket + "/" + b.prefix)) in = &b;
        }
        if (!in) continue;
        auto store = bucket_stores.bucket(in->bucket);
        if (!store.is_ok()) return report(store.status());
        auto info = (*store)->stat(d.source);
        if (info.is_ok()) continue;
        if (info.status().code() != Code::kNotFound) return report(info.status().with_context("--prune"));
      } else {
        if (!under_any(d.source, roots)) continue;
        struct stat st {};
        if (::stat(d.source.c_str(), &st) == 0) continue;  // still there (outside this run's filters)
      }
      if (Status s = p.index().delete_document(d.doc_id); !s.is_ok()) return report(s);
      ++t_.pruned;
      sluice::log::info("pruned a document whose file is gone", {{"doc_id", d.doc_id}, {"source", d.source}});
    }
  }
  p.stop();
  Status stopped = p.wait();
  (void)(*results)->close();
  if (!stopped.is_ok()) return report(stopped);
  int code = interrupted ? kExitInterrupted : (t_.failed + t_.scan_problems > 0 ? kExitSomeFailed : kExitOk);
  return finish(code, interrupted);
}

int IngestRun::finish(int code, bool interrupted) {
  const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
  const bool as_json = f_.json || !::isatty(1);
  if (as_json) {
    ordered_json j = {{"event", "summary"},
                      {"documents", t_.total},
                      {"done", t_.done},
                      {"ok", t_.ok},
                      {"skipped", t_.skipped},
                      {"review", t_.review},
                      {"failed", t_.failed + t_.scan_problems},
                      {"failed_by_class", t_.failed_by_class},
                      {"scan_problems", t_.scan_problems},
                      {"pruned", t_.pruned},
                      {"pages", t_.pages},
                      {"chunks", t_.chunks},
                      {"bytes", t_.bytes},
                      {"seconds", std::round(secs * 1000) / 1000},
                      {"docs_per_s", secs > 0 ? std::round(t_.done / secs * 10) / 10 : 0.0},
                      {"pages_per_s", secs > 0 ? std::round(t_.pages / secs * 10) / 10 : 0.0},
                      {"mb_per_s", secs > 0 ? std::round(t_.bytes / secs / 1e6 * 100) / 100 : 0.0},
                      {"stage_ms", t_.stage_ms},
                      {"interrupted", interrupted},
                      {"log", log_path_}};
    if (!write_stdout(dump_line(j))) return report(Status::io_error("writing to stdout failed"));
    return code;
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%s %zu of %zu documents in %.1f s: %zu ok, %zu skipped, %zu failed\n",
                interrupted ? "interrupted after" : "ingested", t_.done, t_.total, secs, t_.ok, t_.skipped,
                t_.failed + t_.scan_problems);
  out += line;
  if (t_.review > 0) {
    out += "  " + std::to_string(t_.review) +
           " held for review by the quality gate: `sluice review list`, then `sluice review release`\n";
  }
  if (!t_.failed_by_class.empty()) {
    out += "  failed by class:";
    for (const auto& [cls, n] : t_.failed_by_class) out += " " + cls + " " + std::to_string(n);
    out += "\n";
  }
  std::snprintf(line, sizeof line,
                "  %" PRIu64 " pages, %" PRIu64 " chunks, %.1f docs/s, %.1f pages/s, %.2f MB/s\n", t_.pages,
                t_.chunks, secs > 0 ? t_.done / secs : 0.0, secs > 0 ? t_.pages / secs : 0.0,
                secs > 0 ? t_.bytes / secs / 1e6 : 0.0);
  out += line;
  if (t_.pruned) out += "  pruned " + std::to_string(t_.pruned) + " documents whose files are gone\n";
  if (interrupted) out += "  run the same command again to resume: finished files are skipped\n";
  out += "  log: " + log_path_ + "\n";
  if (!write_stdout(out)) return report(Status::io_error("writing to stdout failed"));
  return code;
}

}  // namespace

Command add_ingest_command(CLI::App& root) {
  auto flags = std::make_shared<IngestFlags>();
  CLI::App* app = root.add_subcommand(
      "ingest", "Ingest files and folders: parse, clean, chunk, embed and index every file (the main job)");
  app->add_option("paths", flags->paths, "Files, folders and s3://BUCKET/PREFIX to ingest")->required();
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings);
  app->add_option("--include", flags->include, "Only files matching this glob (repeatable), e.g. '*.pdf'");
  app->add_option("--exclude", flags->exclude, "Skip files and folders matching this glob (repeatable)");
  app->add_option("--max-files", flags->max_files, "Stop scanning after this many files (0: no limit)");
  app->add_flag("--prune", flags->prune, "Remove indexed documents under PATH whose files are gone");
  app->add_flag("--no-workers", flags->no_workers,
                "Only queue the tasks and follow their results: `sluice worker` processes do the work "
                "(scale-out on kafka://)");
  app->add_option("--progress", flags->progress,
                  "Progress on stderr: auto (a bar on a terminal), bar, json, none")
      ->check(CLI::IsMember({"auto", "bar", "json", "none"}));
  app->add_flag("--json", flags->json,
                "Print the summary as one JSON object (the default when stdout is not a terminal)");
  return {app, [flags] {
            IngestRun run(*flags);
            return run.go();
          }};
}

}  // namespace sluice::cli
