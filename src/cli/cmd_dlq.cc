// `sluice dlq`: being written (issue 3).
#include "cli/common.h"

namespace sluice::cli {

Command add_dlq_command(CLI::App& root) {
  CLI::App* app = root.add_subcommand("dlq", "(not yet available)");
  return {app, [] { return report(Status::unsupported("sluice dlq is not available yet")); }};
}

}  // namespace sluice::cli
