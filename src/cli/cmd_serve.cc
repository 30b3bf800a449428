// `sluice serve [--listen HOST:PORT] [--data DIR] [--no-workers]`: the HTTP API and dashboard
// (docs/http_api.md), with the parse, embed and index stages in this process unless --no-workers
// (then `sluice worker` processes elsewhere do the work and the server follows the topics).
// Runs until SIGINT or SIGTERM; exit 0 after SIGTERM, 130 after SIGINT, 1 when a part fails
// fatally, 2 on bad settings (a public listener without tokens, say).
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "base/log.h"
#include "cli/common.h"
#include "pipeline/pipeline.h"
#include "pipeline/settings.h"
#include "server/server.h"

namespace sluice::cli {
namespace {

struct ServeFlags {
  QueueFlags queue;
  config::Values settings;
  config::Values server;
  bool no_workers = false;
};

int run_serve(const ServeFlags& f) {
  install_stop_signals();
  const std::string data = resolve_data_dir(f.queue);
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec)
    return report(Status::invalid_argument("cannot create the data directory " + data + ": " + ec.message()));
  auto getenv = [](const char* n) { return std::getenv(n); };
  auto settings = pipeline::resolve_settings(f.settings, data, getenv);
  if (!settings.is_ok()) return report(settings.status());
  auto server_settings = server::resolve_server_settings(f.server, getenv);
  if (!server_settings.is_ok()) return report(server_settings.status());

  auto opened = open_pipeline(f.queue, *settings,
                              f.no_workers ? std::vector<std::string>{} : pipeline::PipelineOptions().stages,
                              server_settings->worker_nice);
  if (!opened.is_ok()) return report(opened.status());
  pipeline::Pipeline& p = *opened->pipeline;
  server::ServerOptions sopts{*server_settings, data, !f.no_workers};
  auto srv = server::Server::open(*opened->queue, p, sopts);
  if (!srv.is_ok()) return report(srv.status());
  p.start();
  if (Status st = (*srv)->start(); !st.is_ok()) {
    p.stop();
    (void)p.wait();
    return report(st);
  }
  const std::string url = "http://" + server_settings->host + ":" + std::to_string((*srv)->port()) + "/";
  log::info("serving",
            {{"url", url},
             {"workers", !f.no_workers},
             {"queue", resolve_queue_uri(f.queue)},
             {"auth", server_settings->tokens.empty() ? "none (loopback only)" : "bearer tokens"}});
  Status failed;
  while (!stop_requested()) {
    failed = (*srv)->failure();
    if (!failed.is_ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  (*srv)->stop();
  p.stop();
  Status st = p.wait();
  srv->reset();
  log::info("stopped serving", {{"error", failed.is_ok() ? st.to_string() : failed.to_string()}});
  if (!failed.is_ok()) return report(failed);
  if (!st.is_ok()) return report(st);
  return stop_signal() == SIGINT ? 130 : kExitOk;
}

}  // namespace

Command add_serve_command(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand("serve", "Run the HTTP API and dashboard, with the pipeline's workers");
  app->add_flag("--no-workers", flags->no_workers,
                "Run no stages here: `sluice worker` processes elsewhere do the work (scale-out)");
  add_queue_options(*app, flags->queue);
  add_setting_options(*app, server::server_properties(), flags->server);
  add_setting_options(*app, pipeline::pipeline_properties(), flags->settings);
  return {app, [flags] { return run_serve(*flags); }};
}

}  // namespace sluice::cli
