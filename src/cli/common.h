// Shared pieces of the `sluice` command line: the --queue/--data options every command takes,
// error printing and exit codes, stop signals, and the byte-to-JSON helpers used by the output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/property.h"
#include "pipeline/pipeline.h"
#include "queue/queue.h"

namespace sluice::cli {

// Exit codes of every command (DESIGN.md, "The command-line contract").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;     // a fatal or runtime error
inline constexpr int kExitUsage = 2;       // a usage error or bad input
inline constexpr int kExitSomeFailed = 3;  // it ran to the end, but some items failed (ingest, search -)

// One registered subcommand: its CLI11 app and what runs it once the command line is parsed.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_produce_command(CLI::App& root);
Command add_tail_command(CLI::App& root);
Command add_topics_command(CLI::App& root);
Command add_groups_command(CLI::App& root);
Command add_config_command(CLI::App& root);
Command add_replay_command(CLI::App& root);
Command add_dlq_command(CLI::App& root);
Command add_review_command(CLI::App& root);
Command add_ingest_command(CLI::App& root);
Command add_search_command(CLI::App& root);
Command add_worker_command(CLI::App& root);
Command add_serve_command(CLI::App& root);
Command add_generate_command(CLI::App& root);
Command add_gc_command(CLI::App& root);
// The settings of `sluice generate` (for docs/CONFIGURATION.md).
std::span<const config::Property> generate_properties();

// Where the queue lives. Each field holds the flag's value, empty when the flag was not given.
struct QueueFlags {
  std::string queue;
  std::string data;
};

// Adds --queue and --data to a command.
void add_queue_options(CLI::App& app, QueueFlags& flags);
// A subcommand's own --queue/--data over those given to its parent (`sluice dlq --data D list`).
QueueFlags merge_queue_flags(const QueueFlags& own, const QueueFlags& parent);
// The flags given before the command's name (`sluice --data DIR topics`); a command's own flags
// win over these.
QueueFlags& root_queue_flags();
// The data directory: --data, else $SLUICE_DATA, else ./sluice-data.
std::string resolve_data_dir(const QueueFlags& flags);
// The queue URI: --queue, else $SLUICE_QUEUE, else "log:<data>/queue".
std::string resolve_queue_uri(const QueueFlags& flags);
// Opens the queue the flags point at; the error names the URI.
// create=false for commands that only look: a missing queue is reported, not made.
Result<std::unique_ptr<queue::Queue>> open_queue(const QueueFlags& flags, bool create = false);

// A running pipeline's parts; the pipeline is declared last so it is destroyed before its queue.
struct PipelineHandle {
  std::unique_ptr<queue::Queue> queue;
  std::unique_ptr<pipeline::Pipeline> pipeline;
};
// Opens (creating) the queue the flags point at, makes sure the pipeline's topics exist, and opens
// the pipeline with these settings and stages (none: the index and embedder only), their threads
// and parser processes at the nice value given (0: this process's).
Result<PipelineHandle> open_pipeline(const QueueFlags& flags, const pipeline::PipelineSettings& settings,
                                     std::vector<std::string> stages, int nice = 0);

// Adds one option per property of a settings table (--name for name, a plain flag for a bool),
// recording what the user gave in values; `only` limits it to those names (empty: every row).
// The help text shows the environment variable and the default, from the table.
void add_setting_options(CLI::App& app, std::span<const config::Property> table, config::Values& values,
                         std::initializer_list<std::string_view> only = {});

// The exit code for an error: 2 when the input is at fault, 1 otherwise.
int exit_code_for(const Status& status);
// Prints "sluice: <class>: <message>" to stderr and returns exit_code_for(status).
int report(const Status& status);
// Prints a usage error ("sluice: bad_input: <message>") and returns kExitUsage.
int usage_error(std::string_view message);

// Installs SIGINT/SIGTERM handlers that only raise a flag (long-running commands poll it), and
// ignores SIGPIPE so a closed stdout shows up as a write error the command can handle.
void install_stop_signals();
bool stop_requested();
// The signal that asked to stop (SIGINT or SIGTERM), 0 when none did.
int stop_signal();

// Writes bytes to stdout and flushes. Returns false when stdout is gone (a closed pipe) or broken.
bool write_stdout(std::string_view bytes);

// True when s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);
// A string when the bytes are valid UTF-8, else {"base64": "..."}: bytes are never lost or mangled.
nlohmann::ordered_json bytes_to_json(std::string_view bytes);
// Serializes one JSON value on one line; never throws on odd bytes (they are already handled
// by bytes_to_json, and anything left is replaced rather than aborting the output).
std::string dump_line(const nlohmann::ordered_json& value);

// Lays rows out in columns separated by two spaces; the first row is the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// Parses a decimal integer that must fill the whole string.
std::optional<int64_t> parse_int64(std::string_view s);

}  // namespace sluice::cli
