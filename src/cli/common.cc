// Shared pieces of the `sluice` command line (see common.h).
#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/base64.h"
#include "base/utf8.h"
#include "pipeline/stages.h"

namespace sluice::cli {
namespace {

constexpr const char* kDefaultDataDir = "./sluice-data";

std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  g_stop.store(true);
}

// An environment variable, or empty when unset or set to the empty string.
std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

void add_queue_options(CLI::App& app, QueueFlags& flags) {
  app.add_option("--queue", flags.queue,
                 "Queue URI, e.g. log:DIR (env SLUICE_QUEUE; default log:<data>/queue)");
  app.add_option("--data", flags.data,
                 "Directory of the embedded parts (env SLUICE_DATA; default ./sluice-data)");
}

QueueFlags merge_queue_flags(const QueueFlags& own, const QueueFlags& parent) {
  QueueFlags q = own;
  if (q.queue.empty()) q.queue = parent.queue;
  if (q.data.empty()) q.data = parent.data;
  return q;
}

QueueFlags& root_queue_flags() {
  static QueueFlags flags;
  return flags;
}

std::string resolve_data_dir(const QueueFlags& flags) {
  if (!flags.data.empty()) return flags.data;
  if (!root_queue_flags().data.empty()) return root_queue_flags().data;
  std::string env = env_or_empty("SLUICE_DATA");
  return env.empty() ? kDefaultDataDir : env;
}

std::string resolve_queue_uri(const QueueFlags& flags) {
  if (!flags.queue.empty()) return flags.queue;
  if (!root_queue_flags().queue.empty()) return root_queue_flags().queue;
  std::string env = env_or_empty("SLUICE_QUEUE");
  if (!env.empty()) return env;
  // Precedence is per setting: --data moves the default queue, but not a queue set by $SLUICE_QUEUE.
  return "log:" + resolve_data_dir(flags) + "/queue";
}

Result<std::unique_ptr<queue::Queue>> open_queue(const QueueFlags& flags, bool create) {
  std::string uri = resolve_queue_uri(flags);
  auto q = queue::open_queue(uri, {.create_if_missing = create});
  if (!q.is_ok()) return q.status().with_context("opening queue '" + uri + "'");
  return q;
}

Result<PipelineHandle> open_pipeline(const QueueFlags& flags, const pipeline::PipelineSettings& settings,
                                     std::vector<std::string> stages, int nice) {
  PipelineHandle h;
  SLUICE_ASSIGN_OR_RETURN(h.queue, open_queue(flags, /*create=*/true));
  SLUICE_RETURN_IF_ERROR(pipeline::ensure_pipeline_topics(h.queue->admin(), settings));
  pipeline::PipelineOptions popts;
  popts.settings = settings;
  popts.stages = std::move(stages);
  popts.nice = nice;
  SLUICE_ASSIGN_OR_RETURN(h.pipeline, pipeline::Pipeline::open(*h.queue, std::move(popts)));
  return h;
}

void add_setting_options(CLI::App& app, std::span<const config::Property> table, config::Values& values,
                         std::initializer_list<std::string_view> only) {
  for (const config::Property& p : table) {
    if (only.size() && std::find(only.begin(), only.end(), p.name) == only.end()) continue;
    std::string help(p.help);
    help += " (";
    if (!p.env.empty())
      help +=
          "env " + std::string(p.env) + (p.env_alias.empty() ? "" : " or " + std::string(p.env_alias)) + "; ";
    help += "default " + std::string(p.default_value) + ")";
    const std::string name(p.name);
    if (p.kind == config::Kind::kBool) {
      app.add_flag_function(
          config::flag_name(p), [&values, name](int64_t) { values[name] = "true"; }, help);
    } else {
      // A string setting is a URI when its default looks like one (`file:<data>/blobs`, `hash:512`).
      const bool uri = p.default_value.find(':') != std::string_view::npos || p.name.ends_with("endpoint");
      const std::string type = p.kind == config::Kind::kInt      ? "N"
                               : p.kind == config::Kind::kSize   ? "SIZE"
                               : p.kind == config::Kind::kMillis ? "MS"
                               : p.kind == config::Kind::kEnum   ? std::string(p.choices)
                               : uri                             ? "URI"
                                                                 : "TEXT";
      app.add_option_function<std::string>(
             config::flag_name(p), [&values, name](const std::string& v) { values[name] = v; }, help)
          ->type_name(type);
    }
  }
}

int exit_code_for(const Status& status) {
  if (status.is_ok()) return kExitOk;
  return status.error_class() == ErrorClass::kBadInput ? kExitUsage : kExitFailure;
}

int report(const Status& status) {
  std::string line = "sluice: " + status.to_string() + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  return exit_code_for(status);
}

int usage_error(std::string_view message) {
  return report(Status::invalid_argument(std::string(message)));
}

void install_stop_signals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked call returns and the loop sees the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() {
  return g_stop.load();
}

int stop_signal() {
  return g_stop_signal.load();
}

bool write_stdout(std::string_view bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) return false;
  return std::fflush(stdout) == 0;
}

bool is_valid_utf8(std::string_view s) {
  return utf8::is_valid(s);
}

nlohmann::ordered_json bytes_to_json(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  nlohmann::ordered_json obj = nlohmann::ordered_json::object();
  obj["base64"] = base64_encode(bytes);
  return obj;
}

std::string dump_line(const nlohmann::ordered_json& value) {
  // ensure_ascii=false keeps Chinese text readable; replace is only a safety net (object keys).
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::optional<int64_t> parse_int64(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace sluice::cli
