// Custom stages (pipeline_file.h): the exec stage runs a user's command on each task's file, the
// plugin stage (plugin_stage.h) calls a shared library; both are a "file stage" as the seeds'
// workers are: download the input (file:// or s3://, SourceFetcher), process it into a fresh
// output directory, upload every regular file found there (recursively; key = the destination
// prefix + the path below the output directory) to the destination bucket or folder, publish a
// result, remove the temp files, ack. With an `output` topic the stage publishes one Task per
// uploaded file there instead of a result (same doc_id and trace_id; the document's original
// source and size and the chain's timings travel in the task's metadata.chain), so stages chain by
// topics; the last stage publishes the success result about the original document (its source
// and input_size), with every output in `outputs` and the first one as `destination`. A failure
// notification names the failed stage's own input (the file it could not process). A stage that ends a
// document with no output file still reports it: success when it is the last stage, skipped otherwise.
//
// Destination: the stage's `dest`, with placeholders, unless the task names one: a task's
// dest_bucket replaces the bucket (the stage's prefix is kept when the stage's dest is a bucket),
// and its dest_key is the key of a single output file, or the prefix of several.
//
// Failure classes (they decide retry or dead letter, stage_runner.h):
//  - exit status 0: success;
//  - exit status 75 (EX_TEMPFAIL, sysexits.h: "try again later"): kRetriable — the one way a
//    command can say that its failure was passing (a network blip), so that retrying is worth it;
//  - any other non-zero exit: kBadInput — the same command on the same bytes fails the same way,
//    so retrying would only delay the dead letter; `sluice dlq replay` re-runs it after a fix;
//  - the time limit: kResourceLimit, as the parse stage's time limit — a command that hangs on an
//    input will most likely hang again, and every retry would hold a worker for the whole timeout;
//  - killed by a signal it did not get from us (a crash, the OOM killer): kFatal naming the signal;
//  - outputs over max_output_bytes: kResourceLimit, nothing uploaded;
//  - a missing input object: kBadInput ("no longer exists"), as for the parse stage;
//  - a command that cannot be started (not found, not executable): kBadInput.
// Every failure message ends with the last 4 KiB of the command's stderr, and, when the temp
// files are kept (cleanup_on_error false, the default), the directory that holds them.
//
// The command runs without a shell (argv as given, the program looked up in PATH) unless
// `shell: true`, then /bin/sh -c with every placeholder value shell-quoted. It runs in its own
// process group, in the task's temp directory, with stdin from /dev/null; at the time limit the
// group gets SIGTERM, then SIGKILL after a grace of 2 s; whatever is left of the group when the
// command exits is killed, so a task leaves no process behind.
//
// Ownership: a StageDef keeps what it needs (the spec, the folder stores it opened) alive in its
// functions; the StageContext's SourceFetcher must outlive it.
// Thread-safety: the stage functions run on the StageRunner's workers at once; run_command may be
// called from several threads.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "pipeline/pipeline_file.h"
#include "pipeline/stages.h"
#include "queue/queue.h"

namespace sluice::pipeline {

struct CommandOptions {
  std::vector<std::string> argv;                         // argv[0] is looked up in PATH
  std::vector<std::pair<std::string, std::string>> env;  // added to (or replacing in) this process's
  std::string cwd;                                       // empty: this process's
  std::chrono::milliseconds timeout{600000};
  std::chrono::milliseconds grace{2000};  // between SIGTERM and SIGKILL
  size_t tail_bytes = 4096;               // of stdout and stderr kept
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;  // the signal was ours
  std::string stdout_tail, stderr_tail;
  double ms = 0;
};

// The exit status that asks for a retry (sysexits.h's EX_TEMPFAIL).
inline constexpr int kExitTempFail = 75;

// Runs the command to its end (or its time limit). An error only when it could not be started
// (kBadInput naming the program when it is missing or not executable).
[[nodiscard]] Result<CommandResult> run_command(const CommandOptions& opts);
// OK for exit 0; otherwise the class above, with `what` ("command 'x'"), the exit status or the
// signal, and the stderr tail in the message.
[[nodiscard]] Status command_status(const CommandResult& r, std::string_view what);

// The argv of spec's command for one task: placeholders replaced (shell-quoted for shell: true,
// which gives {"/bin/sh", "-c", script}).
[[nodiscard]] Result<std::vector<std::string>> expand_command(const StageSpec& spec,
                                                              const PlaceholderValues& v);

// The work of one task in a file stage: input_path → files in output_dir.
struct FileTask {
  const Task* task = nullptr;
  PlaceholderValues values;  // input, output_dir, doc_id, name, key
  std::string work_dir;      // holds output_dir (and the download); the command's cwd
};
using FileProcessor = std::function<Status(const FileTask&)>;

// A StageDef (as parse_stage() gives) for spec around fn; ctx.sources fetches the inputs and
// opens the destination buckets.
StageDef file_stage(const StageContext& ctx, const StageSpec& spec, FileProcessor fn);
// The exec stage: file_stage with spec's command.
StageDef exec_stage(const StageContext& ctx, const StageSpec& spec);

// Creates the custom stages' topics (input, output, and the inputs' retry and dead-letter twins)
// where missing, and declares their groups on their inputs (see ensure_pipeline_topics).
[[nodiscard]] Status ensure_custom_topics(queue::Admin& admin, const PipelineSettings& settings,
                                          const std::vector<StageSpec>& stages);

}  // namespace sluice::pipeline
