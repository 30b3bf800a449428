// `sluice worker [--stages parse,embed,index]`: runs pipeline stages and nothing else, until
// SIGINT or SIGTERM: the scale-out half of DESIGN.md's flow. Start as many as the queue's consumer
// groups can share out (on kafka:// each stage's group splits the partitions; on log:DIR a second
// process of a group waits as a hot standby); `sluice ingest --no-workers`, `sluice serve
// --no-workers` or `sluice produce` feed them. Each document ends with its result on doc_results;
// progress is in the JSON-lines log on stderr.
// Exit: 0 after SIGTERM (a stopped service), 130 after SIGINT, 1 when a stage fails fatally.
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
#include "pipeline/settings.h"
#include "pipeline/stages.h"

namespace sluice::cli {
namespace {

struct WorkerFlags {
  QueueFlags queue;
  config::Values settings;
  std::string stages = "parse,embed,index";
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

int run_worker(const WorkerFlags& f) {
  install_stop_signals();
  std::vector<std::string> stages = split_list(f.stages);
  if (stages.empty())
    return report(Status::invalid_argument("--stages is empty (stages: parse, embed, index)"));
  const std::string data = resolve_data_dir(f.queue);
  auto settings = pipeline::resolve_settings(f.settings, data, [](const char* n) { return std::getenv(n); });
  if (!settings.is_ok()) return report(settings.status());
  auto opened = open_pipeline(f.queue, *settings, stages);
  if (!opened.is_ok()) return report(opened.status());
  pipeline::Pipeline& p = *opened->pipeline;
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
  app->add_option("--stages", flags->stages,
                  "Comma-separated stages to run: parse, embed, index (default all)");
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings);
  return {app, [flags] { return run_worker(*flags); }};
}

}  // namespace sluice::cli
