// `sluice worker [--stages parse,embed,index] [--pipeline FILE]`: runs pipeline stages (the
// built-in ones, or those of a pipeline file: pipeline_file.h) and nothing else, until
// SIGINT or SIGTERM: the scale-out half of DESIGN.md's flow. Start as many as the queue's consumer
// groups can share out (on kafka:// each stage's group splits the partitions; on log:DIR a second
// process of a group waits as a hot standby); `sluice ingest --no-workers`, `sluice serve
// --no-workers` or `sluice produce` feed them. Each document ends with its result on doc_results;
// progress is in the JSON-lines log on stderr.
// Exit: 0 after SIGTERM (a stopped service), 130 after SIGINT, 1 when a stage fails fatally.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "cli/common.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline_file.h"
#include "pipeline/settings.h"
#include "pipeline/stages.h"

namespace sluice::cli {
namespace {

struct WorkerFlags {
  QueueFlags queue;
  config::Values settings;
  std::string stages = "parse,embed,index";
  std::string pipeline_file;
  CLI::Option* stages_option = nullptr;  // given or not: with --pipeline, absent means all of the file's
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// The stages of a pipeline file that `--stages` selects (all of them when it is absent): built-in
// ones by name, the others as custom stages.
Status select_file_stages(const pipeline::PipelineFile& file, const std::vector<std::string>* wanted,
                          std::vector<std::string>* builtins, std::vector<pipeline::StageSpec>* custom) {
  if (wanted) {
    for (const auto& w : *wanted) {
      bool found = false;
      for (const auto& s : file.stages) found |= s.name == w;
      if (!found) {
        std::string names;
        for (const auto& s : file.stages) names += (names.empty() ? "" : ", ") + s.name;
        return Status::invalid_argument("--stages: " + file.path + " has no stage '" + w +
                                        "' (stages: " + names + ")");
      }
    }
  }
  for (const auto& s : file.stages) {
    if (wanted && std::find(wanted->begin(), wanted->end(), s.name) == wanted->end()) continue;
    if (s.type == pipeline::StageType::kBuiltin) {
      builtins->push_back(s.name);
    } else {
      custom->push_back(s);
    }
  }
  return {};
}

int run_worker(const WorkerFlags& f) {
  install_stop_signals();
  std::vector<std::string> stages = split_list(f.stages);
  if (stages.empty())
    return report(Status::invalid_argument("--stages is empty (stages: parse, embed, index)"));
  const std::string data = resolve_data_dir(f.queue);
  auto settings = pipeline::resolve_settings(f.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());
  pipeline::PipelineOptions popts;
  popts.settings = *settings;
  popts.stages = stages;
  if (!f.pipeline_file.empty()) {
    auto file = pipeline::load_pipeline_file(f.pipeline_file);
    if (!file.is_ok()) return report(file.status());
    popts.stages.clear();
    const bool given = f.stages_option != nullptr && f.stages_option->count() > 0;
    if (Status st = select_file_stages(*file, given ? &stages : nullptr, &popts.stages, &popts.custom_stages);
        !st.is_ok()) {
      return report(st);
    }
    stages = popts.stages;
    for (const auto& c : popts.custom_stages) stages.push_back(c.name);
  }
  // As open_pipeline() does, with the custom stages' specs as well.
  PipelineHandle opened;
  {
    auto q = open_queue(f.queue, /*create=*/true);
    if (!q.is_ok()) return report(q.status());
    opened.queue = std::move(q).value();
    if (Status st = pipeline::ensure_pipeline_topics(opened.queue->admin(), *settings); !st.is_ok())
      return report(st);
    auto p = pipeline::Pipeline::open(*opened.queue, std::move(popts));
    if (!p.is_ok()) return report(p.status());
    opened.pipeline = std::move(p).value();
  }
  pipeline::Pipeline& p = *opened.pipeline;
  p.start();
  log::info("worker started", {{"worker", pipeline::worker_name()},
                               {"stages", stages},
                               {"queue", resolve_queue_uri(f.queue)},
                               {"index", settings->index}});
  while (!stop_requested() && p.failure().is_ok())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  p.stop();
  Status st = p.wait();
  log::info("worker stopped",
            {{"worker", pipeline::worker_name()}, {"error", st.is_ok() ? "" : st.to_string()}});
  if (!st.is_ok()) return report(st);
  return stop_signal() == SIGINT ? 130 : kExitOk;
}

}  // namespace

Command add_worker_command(CLI::App& root) {
  auto flags = std::make_shared<WorkerFlags>();
  CLI::App* app = root.add_subcommand(
      "worker", "Run pipeline stages only, until stopped (scale-out: feed with ingest --no-workers)");
  flags->stages_option = app->add_option("--stages", flags->stages,
                                         "Comma-separated stages to run: parse, embed, index (default all); "
                                         "with --pipeline, names of the file's "
                                         "stages (default all of them)");
  app->add_option(
         "--pipeline", flags->pipeline_file,
         "A pipeline file (YAML) declaring the stages to run: exec (a command), plugin (a shared library) "
         "or builtin; see docs/pipeline.md, \"Custom stages\"")
      ->type_name("FILE");
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings);
  return {app, [flags] { return run_worker(*flags); }};
}

}  // namespace sluice::cli
