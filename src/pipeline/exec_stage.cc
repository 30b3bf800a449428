#include "pipeline/exec_stage.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/log.h"
#include "pipeline/sources.h"

extern char** environ;

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Keeps the last `limit` bytes of a stream without holding more than twice that.
void append_tail(std::string& tail, const char* data, size_t n, size_t limit) {
  tail.append(data, n);
  if (tail.size() > 2 * limit) tail.erase(0, tail.size() - limit);
}

std::string finish_tail(std::string tail, size_t limit) {
  if (tail.size() > limit) {
    tail.erase(0, tail.size() - limit);
    // Do not start in the middle of a UTF-8 sequence (the tail goes into JSON messages).
    size_t skip = 0;
    while (skip < tail.size() && skip < 4 && (static_cast<unsigned char>(tail[skip]) & 0xC0) == 0x80) ++skip;
    tail.erase(0, skip);
  }
  return tail;
}

// The program, or the first line of a script, at most 60 bytes: enough to recognise it in a message.
std::string short_command(const std::string& c) {
  std::string out = c.substr(0, c.find('\n'));
  bool cut = out.size() < c.size() && c.find_first_not_of(" \n", out.size()) != std::string::npos;
  if (out.size() > 60) {
    size_t end = 60;
    while (end > 0 && (static_cast<unsigned char>(out[end]) & 0xC0) == 0x80) --end;
    out.resize(end);
    cut = true;
  }
  return cut ? out + " …" : out;
}

std::string signal_name(int sig) {
  const char* d = ::sigabbrev_np(sig);
  return d ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

// "stem" of a key or path: "data/a.tar.gz" → "a.tar".
std::string name_of(std::string_view key) {
  std::string file(
      key.substr(key.find_last_of('/') == std::string_view::npos ? 0 : key.find_last_of('/') + 1));
  const size_t dot = file.find_last_of('.');
  if (dot != std::string::npos && dot > 0) file.erase(dot);
  return file;
}

std::string join_key(const std::string& prefix, const std::string& rel) {
  if (prefix.empty()) return rel;
  if (prefix.back() == '/') return prefix + rel;
  return prefix + "/" + rel;
}

json timings_json(const std::vector<std::pair<std::string, double>>& t) {
  json a = json::array();
  for (const auto& [stage, ms] : t) a.push_back({stage, ms});
  return a;
}

// The timings of the stages before this one (a chained task carries them in its metadata).
constexpr const char* kChainKey = "chain";
std::vector<std::pair<std::string, double>> chain_timings(const Task& t) {
  std::vector<std::pair<std::string, double>> out;
  if (!t.metadata.is_object() || !t.metadata.contains(kChainKey)) return out;
  const json& c = t.metadata[kChainKey];
  if (!c.is_object() || !c.contains("stage_ms") || !c["stage_ms"].is_array()) return out;
  for (const auto& e : c["stage_ms"]) {
    if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_number())
      out.emplace_back(e[0].get<std::string>(), e[1].get<double>());
  }
  return out;
}

// The document a chained task came from (the first stage's input) and its size.
std::pair<SourceRef, uint64_t> chain_origin(const Task& t, uint64_t input_size) {
  if (t.metadata.is_object() && t.metadata.contains(kChainKey) && t.metadata[kChainKey].is_object()) {
    const json& c = t.metadata[kChainKey];
    if (c.contains("origin") && c["origin"].is_object()) {
      const json& o = c["origin"];
      SourceRef s{o.value("uri", ""), o.value("bucket", ""), o.value("key", ""), o.value("version", "")};
      if (!s.uri.empty()) return {s, c.value("origin_size", uint64_t{0})};
    }
  }
  return {t.source, input_size};
}

json source_ref_json(const SourceRef& s) {
  json j = {{"uri", s.uri}};
  if (!s.bucket.empty()) j["bucket"] = s.bucket;
  if (!s.key.empty()) j["key"] = s.key;
  if (!s.version.empty()) j["version"] = s.version;
  return j;
}

struct Uploaded {
  OutputFile file;
  SourceRef ref;
};

// What a file stage keeps for its lifetime: the spec, the function, the folder stores it opened.
struct FileStageState {
  StageContext ctx;
  StageSpec spec;
  FileProcessor fn;
  bool cleanup_files = true;
  bool cleanup_on_error = false;
  std::mutex mu;
  std::map<std::string, std::unique_ptr<store::BlobStore>> folders;  // guarded by mu

  Result<store::BlobStore*> folder(const std::string& dir) {
    std::lock_guard<std::mutex> l(mu);
    if (auto it = folders.find(dir); it != folders.end()) return it->second.get();
    SLUICE_ASSIGN_OR_RETURN(auto opened, store::open_blob_store("file:" + dir));
    store::BlobStore* out = opened.get();
    folders.emplace(dir, std::move(opened));
    return out;
  }

  // Absolute: the command runs inside the task's directory, and the placeholders hold these paths.
  std::string tmp_base() const {
    std::error_code ec;
    const fs::path base = ctx.settings.data_dir.empty() ? fs::temp_directory_path(ec) / "sluice-tmp"
                                                        : fs::path(ctx.settings.data_dir) / "tmp";
    return fs::absolute(base, ec).lexically_normal().string();
  }

  // The input's local path: the file itself, or a download into work_dir/in/.
  Result<std::string> fetch_input(const Task& task, const std::string& work_dir) {
    if (!is_bucket_uri(task.source.uri)) {
      SLUICE_ASSIGN_OR_RETURN(std::string path, local_path_of(task.source));
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
          return Status::not_found(path + " no longer exists (deleted or moved after it was queued)");
        }
        return Status(ErrorClass::kRetriable, Code::kIoError,
                      "cannot stat " + path + ": " + std::strerror(errno));
      }
      if (!S_ISREG(st.st_mode)) return Status::invalid_argument(path + " is not a regular file");
      return path;
    }
    if (ctx.sources == nullptr) return Status::internal("the " + spec.name + " stage has no source fetcher");
    SLUICE_ASSIGN_OR_RETURN(BucketUri where, parse_bucket_uri(task.source.uri));
    SLUICE_ASSIGN_OR_RETURN(store::BlobStore * b, ctx.sources->bucket(where.bucket));
    std::string name = where.prefix.substr(where.prefix.find_last_of('/') + 1);
    if (name.empty() || name.size() > 200) name = "input";
    const std::string path = work_dir + "/in/" + name;
    std::error_code ec;
    fs::create_directories(work_dir + "/in", ec);
    auto got = b->fetch(task.source.uri, path);
    if (!got.is_ok()) {
      if (got.status().code() == Code::kNotFound) {
        return Status::not_found(
            task.source.uri + " no longer exists (deleted after it was queued): " + got.status().message());
      }
      return got.status();
    }
    return path;
  }

  // Every regular file under dir (symbolic links are not followed: a link out of the directory
  // must not upload what it points at), sorted by relative path.
  static Result<std::vector<std::pair<std::string, uint64_t>>> list_outputs(const std::string& dir) {
    std::vector<std::pair<std::string, uint64_t>> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, ec), end;
    if (ec) return Status::io_error("cannot list " + dir + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) return Status::io_error("cannot list " + dir + ": " + ec.message());
      const auto st = it->symlink_status(ec);
      if (ec || !fs::is_regular_file(st)) continue;
      out.emplace_back(fs::relative(it->path(), dir).string(), static_cast<uint64_t>(it->file_size(ec)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::vector<Uploaded>> upload(const Task& task, const PlaceholderValues& v,
                                       const std::vector<std::pair<std::string, uint64_t>>& files) {
    SLUICE_ASSIGN_OR_RETURN(std::string dest, expand_placeholders(spec.dest, v, false));
    std::string bucket, prefix, folder;
    if (!task.dest_bucket.empty()) {
      bucket = task.dest_bucket;
      if (is_bucket_uri(dest)) {
        SLUICE_ASSIGN_OR_RETURN(BucketUri d, parse_bucket_uri(dest));
        prefix = d.prefix;
      }
    } else if (is_bucket_uri(dest)) {
      SLUICE_ASSIGN_OR_RETURN(BucketUri d, parse_bucket_uri(dest));
      bucket = d.bucket;
      prefix = d.prefix;
    } else {
      folder = dest;
    }
    store::BlobStore* store = nullptr;
    if (!bucket.empty()) {
      if (ctx.sources == nullptr) return Status::internal("the " + spec.name + " stage has no bucket access");
      SLUICE_ASSIGN_OR_RETURN(store, ctx.sources->bucket(bucket));
    } else {
      SLUICE_ASSIGN_OR_RETURN(store, this->folder(folder));
    }
    std::vector<Uploaded> out;
    for (const auto& [rel, size] : files) {
      std::string key = !task.dest_key.empty()
                            ? (files.size() == 1 ? task.dest_key : join_key(task.dest_key, rel))
                            : join_key(prefix, rel);
      auto ref = store->put_file(key, v.output_dir + "/" + rel);
      if (!ref.is_ok()) return ref.status().with_context("uploading " + rel);
      Uploaded u;
      if (!bucket.empty()) {
        u.ref = {"s3://" + bucket + "/" + key, bucket, key, ""};
      } else {
        const std::string path = (fs::path(folder) / key).lexically_normal().string();
        u.ref = file_source(path);
      }
      u.file = {u.ref.uri, ref->size, ref->hash};
      out.push_back(std::move(u));
    }
    return out;
  }

  Result<Outcome> run(const queue::Message& m, const Task& task, const std::string& work_dir) {
    const auto t0 = Clock::now();
    const int attempts = attempt_of(m);
    SLUICE_ASSIGN_OR_RETURN(std::string input, fetch_input(task, work_dir));
    std::error_code ec;
    const uint64_t input_size = fs::file_size(input, ec);
    PlaceholderValues v;
    v.input = input;
    v.output_dir = work_dir + "/out";
    v.doc_id = task.doc_id;
    v.key = task.source.key.empty() ? input : task.source.key;
    v.name = name_of(v.key);
    SLUICE_RETURN_IF_ERROR(fn(FileTask{&task, v, work_dir}));

    SLUICE_ASSIGN_OR_RETURN(auto files, list_outputs(v.output_dir));
    uint64_t total = 0;
    for (const auto& f : files) total += f.second;
    if (total > spec.max_output_bytes) {
      return Status::resource_limit("the outputs are " + format_size(total) + " in " +
                                    std::to_string(files.size()) +
                                    " files, over the stage's max_output_bytes of " +
                                    format_size(spec.max_output_bytes) + "; nothing was uploaded");
    }
    SLUICE_ASSIGN_OR_RETURN(auto uploaded, upload(task, v, files));
    auto timings = chain_timings(task);
    timings.emplace_back(spec.name, ms_since(t0));
    const auto [origin, origin_size] = chain_origin(task, input_size);

    Outcome out;
    if (!spec.output.empty() && !uploaded.empty()) {
      // Each output is the next stage's task; the document keeps its doc_id and trace_id.
      for (const auto& u : uploaded) {
        Task next;
        next.doc_id = task.doc_id;
        next.source = u.ref;
        next.size = u.file.size;
        next.trace_id = task.trace_id;
        next.generated_at = now_iso8601();
        next.metadata = task.metadata.is_object() ? task.metadata : json::object();
        next.metadata[kChainKey] = {{"origin", source_ref_json(origin)},
                                    {"origin_size", origin_size},
                                    {"stage_ms", timings_json(timings)}};
        Output o;
        o.topic = spec.output;
        o.key = task.doc_id;
        o.value = to_json(next);
        o.headers = standard_headers(task.trace_id);
        out.outputs.push_back(std::move(o));
      }
      return out;
    }
    ResultNotification r;
    r.timestamp = now_iso8601();
    r.worker = ctx.worker;
    r.status = ResultStatus::kSuccess;
    r.doc_id = task.doc_id;
    r.version = task.version;
    // The document's own source and size, also at the end of a chain: the result is about it.
    r.source = origin;
    r.trace_id = task.trace_id;
    r.input_size = origin_size;
    r.output_size = total;
    r.attempts = attempts;
    r.stage_ms = std::move(timings);
    for (const auto& u : uploaded) r.outputs.push_back(u.file);
    if (!uploaded.empty()) r.destination = uploaded.front().ref;
    if (uploaded.empty() && !spec.output.empty()) {
      r.status = ResultStatus::kSkipped;
      r.reason = "the " + spec.name + " stage wrote no output file, so nothing went on to " + spec.output;
    }
    out.outputs.push_back(publish_result(r));
    return out;
  }

  Outcome process(const queue::Message& m) {
    auto task = parse_task(m.value);
    if (!task.is_ok()) return Outcome{task.status(), {}, {}};
    const std::string work_dir =
        tmp_base() + "/" + spec.name + "-" + task->doc_id.substr(0, 12) + "-" + random_id().substr(0, 8);
    std::error_code ec;
    fs::create_directories(work_dir + "/out", ec);
    if (ec) {
      return Outcome{
          Status::resource_limit("cannot make the temp directory " + work_dir + ": " + ec.message()), {}, {}};
    }
    Result<Outcome> r = run(m, *task, work_dir);
    const bool ok = r.is_ok();
    if (ok ? cleanup_files : cleanup_on_error) {
      fs::remove_all(work_dir, ec);
    }
    if (ok) return std::move(r).value();
    Status st = r.status();
    if (!cleanup_on_error) {
      st = Status(st.error_class(), st.code(), st.message() + " (temp files kept in " + work_dir + ")");
    }
    return Outcome{st, {}, {}};
  }
};

}  // namespace

Result<CommandResult> run_command(const CommandOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) return Status::invalid_argument("no command to run");
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    const std::string_view name = kv.substr(0, kv.find('='));
    const bool replaced =
        std::any_of(o.env.begin(), o.env.end(), [&](const auto& p) { return p.first == name; });
    if (!replaced) env_s.emplace_back(kv);
  }
  for (const auto& [k, v] : o.env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return Status::resource_limit(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return Status::resource_limit(std::string("pipe: ") + std::strerror(e));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so that a timeout kills everything it started; signals that this
  // process ignores or blocks (SIGPIPE is ignored by the worker) are reset for the command.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  const auto started = Clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    if (rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == ENOTDIR) {
      return Status::invalid_argument(
          "cannot run '" + o.argv[0] + "': " + std::strerror(rc) +
          (o.argv[0].find('/') == std::string::npos ? " (looked up in PATH)" : ""));
    }
    return Status::resource_limit("cannot start '" + o.argv[0] + "': " + std::strerror(rc));
  }

  CommandResult r;
  int fds[2] = {out[0], err[0]};
  std::string* tails[2] = {&r.stdout_tail, &r.stderr_tail};
  const auto deadline = started + o.timeout;
  Clock::time_point kill_at{}, drain_until{};
  bool term_sent = false, kill_sent = false, exited = false;
  int status = 0;
  char buf[16384];
  while (true) {
    pollfd p[2];
    int n = 0, which[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        p[n] = {fds[i], POLLIN, 0};
        which[n++] = i;
      }
    }
    if (n == 0 && exited) break;
    if (n > 0) {
      if (::poll(p, n, 50) < 0 && errno != EINTR) break;
      for (int k = 0; k < n; ++k) {
        if (p[k].revents == 0) continue;
        const int i = which[k];
        const ssize_t got = ::read(fds[i], buf, sizeof buf);
        if (got > 0) {
          append_tail(*tails[i], buf, static_cast<size_t>(got), o.tail_bytes);
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(fds[i]);
          fds[i] = -1;
        }
      }
    } else {
      ::usleep(20000);
    }
    const auto now = Clock::now();
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      // What the command left running in its group would hold the pipes open and outlive the task.
      ::killpg(pid, SIGKILL);
      drain_until = now + std::chrono::seconds(1);
    }
    if (exited && now > drain_until) break;  // a process that left the group keeps a pipe open
    if (!exited && !term_sent && now >= deadline) {
      ::killpg(pid, SIGTERM);
      term_sent = true;
      r.timed_out = true;
      kill_at = now + o.grace;
    }
    if (!exited && term_sent && !kill_sent && now >= kill_at) {
      ::killpg(pid, SIGKILL);
      kill_sent = true;
    }
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  if (!exited) {  // poll failed: do not leave the child behind
    ::killpg(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  r.ms = ms_since(started);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.stdout_tail = finish_tail(std::move(r.stdout_tail), o.tail_bytes);
  r.stderr_tail = finish_tail(std::move(r.stderr_tail), o.tail_bytes);
  return r;
}

Status command_status(const CommandResult& r, std::string_view what) {
  if (!r.timed_out && r.signal == 0 && r.exit_code == 0) return {};
  std::string tail = r.stderr_tail;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  const std::string stderr_part = tail.empty() ? "; stderr was empty" : "; stderr: " + tail;
  const std::string w(what);
  if (r.timed_out) {
    return Status::resource_limit(w + " did not finish within its timeout and was killed after " +
                                  std::to_string(static_cast<int64_t>(r.ms)) + " ms" + stderr_part);
  }
  if (r.signal != 0) {
    return Status(ErrorClass::kFatal, Code::kInternal,
                  w + " was killed by " + signal_name(r.signal) + stderr_part);
  }
  if (r.exit_code == kExitTempFail) {
    return Status(ErrorClass::kRetriable, Code::kBusy,
                  w + " exited with status 75 (EX_TEMPFAIL: try again later)" + stderr_part);
  }
  return Status::invalid_argument(w + " exited with status " + std::to_string(r.exit_code) + stderr_part);
}

Result<std::vector<std::string>> expand_command(const StageSpec& spec, const PlaceholderValues& v) {
  if (spec.command.empty()) return Status::invalid_argument("stage '" + spec.name + "' has no command");
  if (spec.shell) {
    SLUICE_ASSIGN_OR_RETURN(std::string script, expand_placeholders(spec.command[0], v, true));
    return std::vector<std::string>{"/bin/sh", "-c", std::move(script)};
  }
  std::vector<std::string> out;
  for (const auto& a : spec.command) {
    SLUICE_ASSIGN_OR_RETURN(std::string x, expand_placeholders(a, v, false));
    out.push_back(std::move(x));
  }
  return out;
}

StageDef file_stage(const StageContext& ctx, const StageSpec& spec, FileProcessor fn) {
  auto st = std::make_shared<FileStageState>();
  st->ctx = ctx;
  st->spec = spec;
  st->fn = std::move(fn);
  // A flag or the environment (CLEANUP_FILES, ...) wins over the stage's file, which wins over the
  // defaults (the seeds': clean after success, keep after a failure).
  st->cleanup_files = ctx.settings.cleanup_files.value_or(spec.cleanup_files.value_or(true));
  st->cleanup_on_error = ctx.settings.cleanup_on_error.value_or(spec.cleanup_on_error.value_or(false));
  StageDef def;
  def.config = stage_config(ctx, spec.name, spec.input, spec.workers ? spec.workers : ctx.settings.workers);
  def.process = [st](const queue::Message& m) { return st->process(m); };
  def.on_dead = task_failure_notifier(ctx);
  return def;
}

StageDef exec_stage(const StageContext& ctx, const StageSpec& spec) {
  return file_stage(ctx, spec, [spec](const FileTask& t) -> Status {
    SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> argv, expand_command(spec, t.values));
    CommandOptions o;
    o.argv = std::move(argv);
    for (const auto& [k, v] : spec.env) {
      SLUICE_ASSIGN_OR_RETURN(std::string value, expand_placeholders(v, t.values, false));
      o.env.emplace_back(k, std::move(value));
    }
    o.cwd = t.work_dir;
    o.timeout = spec.timeout;
    SLUICE_ASSIGN_OR_RETURN(CommandResult r, run_command(o));
    const std::string what = "the " + spec.name + " command (" + short_command(spec.command[0]) +
                             ", timeout " + format_duration(spec.timeout) + ")";
    return command_status(r, what);
  });
}

Status ensure_custom_topics(queue::Admin& admin, const PipelineSettings& settings,
                            const std::vector<StageSpec>& stages) {
  const queue::TopicConfig cfg{.partitions = settings.partitions};
  for (const auto& s : stages) {
    if (s.type == StageType::kBuiltin) continue;  // ensure_pipeline_topics has them
    for (const std::string& t : {s.input, s.input + kRetrySuffix, s.input + kDlqSuffix, s.output}) {
      if (!t.empty()) SLUICE_RETURN_IF_ERROR(queue::ensure_topic(admin, t, cfg));
    }
    const std::string topics[] = {s.input, s.input + kRetrySuffix};
    SLUICE_RETURN_IF_ERROR(admin.declare_group(stage_group(settings, s.name), topics));
  }
  return {};
}

}  // namespace sluice::pipeline
