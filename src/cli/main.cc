// The `sluice` command: parses the command line with CLI11 and runs one subcommand.
// Exit codes: 0 success, 1 fatal or runtime error, 2 usage error or bad input.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "base/memory.h"
#include "base/version.h"
#include "cli/common.h"
#include "pipeline/parse_worker.h"

namespace {

int run_main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{"sluice: document ingestion on a durable message log", "sluice"};
  app.set_version_flag("--version", std::string("sluice ") + sluice::kVersion, "Print the version and exit");
  app.require_subcommand(1);
  add_queue_options(app, root_queue_flags());

  std::vector<Command> commands = {
      add_ingest_command(app), add_search_command(app), add_produce_command(app), add_tail_command(app),
      add_topics_command(app), add_groups_command(app), add_replay_command(app),  add_dlq_command(app),
      add_config_command(app), add_worker_command(app), add_serve_command(app),   add_generate_command(app),
      add_gc_command(app),     add_review_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version are "errors" with exit code 0; CLI11 prints them to stdout.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    usage_error(e.what());
    std::fputs("Run with --help for more information.\n", stderr);
    return kExitUsage;
  }
  for (const Command& cmd : commands) {
    if (cmd.app->parsed()) return cmd.run();
  }
  return usage_error("no command given");  // unreachable: require_subcommand(1)
}

}  // namespace

int main(int argc, char** argv) {
  sluice::tune_allocator();
  // The parse stage's worker processes: not a user command, so not in --help.
  if (argc == 2 && std::string_view(argv[1]) == "__parse-worker") return sluice::pipeline::run_parse_worker();
  // The commands report errors as Status values; this only catches what should never happen
  // (allocation failure, a library throwing unexpectedly) so it ends as a message, not an abort.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: fatal: unexpected error: %s\n", e.what());
  } catch (...) {
    std::fputs("sluice: fatal: unexpected error\n", stderr);
  }
  return sluice::cli::kExitFailure;
}
