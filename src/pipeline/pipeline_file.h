// Pipeline files: a YAML file (`sluice worker --pipeline FILE`) declaring the stages a worker runs,
// beyond or instead of the built-in parse/embed/index. Each stage is one consumer group
// (`<group>-<name>`) on its input topic; stages chain by topics:
//
//   stages:
//     - name: transcode              # letters, digits, '_' and '-'
//       type: exec                   # exec | plugin | builtin (parse, embed, index by name)
//       input: doc_upload            # default: doc_upload first, then the previous stage's output
//       output: transcoded           # optional: each uploaded file becomes a task there
//       command: ["/usr/bin/ffmpeg", "-i", "{input}", "{output_dir}/{name}.mp3"]
//       shell: false                 # true: command is one string for /bin/sh -c
//       timeout: 10m                 # 500ms, 30s, 10m, 2h (a bare number is seconds)
//       dest: s3://processed-files/audio/   # or a folder; placeholders allowed
//       max_output_bytes: 1GiB
//       workers: 2
//       cleanup_files: true          # CLEANUP_FILES
//       cleanup_on_error: false      # CLEANUP_ON_ERROR
//       env: {KEY: value}
//     - name: myplugin
//       type: plugin
//       library: ./libmystage.so     # relative paths are relative to the pipeline file
//       config: "handed to sluice_stage_init"
//       dest: ./out
//
// Placeholders in command, env values and dest: {input} (local path of the downloaded input),
// {output_dir} (a fresh empty directory per task), {doc_id}, {name} (the input's file name without
// its extension), {key} (the object key, or the path). Anything else in braces is an error at load.
//
// The whole file is checked at load: unknown keys, wrong types, a missing command or library,
// bad durations and sizes, duplicate names, bad topic names, unknown placeholders; each error is
// kBadInput naming the file, the line, the stage and the key. yaml-cpp's exceptions never leave
// pipeline_file.cc.
// Thread-safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sluice::pipeline {

enum class StageType { kBuiltin, kExec, kPlugin };

struct StageSpec {
  std::string name;
  StageType type = StageType::kExec;
  std::string input;   // topic
  std::string output;  // topic; empty: this stage ends the document (publishes the result)
  int line = 0;        // 1-based line of the stage in the file, for messages

  // exec
  std::vector<std::string> command;  // argv; with shell, one element: the script
  bool shell = false;
  // plugin
  std::string library;  // absolute path
  std::string config;

  // exec and plugin
  std::chrono::milliseconds timeout{600000};
  std::string dest;  // "s3://bucket/prefix" or an absolute folder (may hold placeholders)
  uint64_t max_output_bytes = 1ull << 30;
  size_t workers = 0;                    // 0: the workers setting
  std::optional<bool> cleanup_files;     // unset: the cleanup_files setting
  std::optional<bool> cleanup_on_error;  // unset: the cleanup_on_error setting
  std::vector<std::pair<std::string, std::string>> env;
};

struct PipelineFile {
  std::string path;  // as loaded ("" for text)
  std::vector<StageSpec> stages;
};

// Reads and checks the file at path; relative paths in it (dest folders, libraries) are taken
// relative to the file's directory. A missing or unreadable file is kBadInput naming it.
[[nodiscard]] Result<PipelineFile> load_pipeline_file(const std::string& path);
// The same for YAML text; base_dir makes relative paths absolute; `what` names it in messages.
[[nodiscard]] Result<PipelineFile> parse_pipeline_file(std::string_view yaml, const std::string& base_dir,
                                                       std::string_view what = "pipeline file");

// The values of the placeholders for one task.
struct PlaceholderValues {
  std::string input, output_dir, doc_id, name, key;
};
// Checks that every {...} in text is a known placeholder; the error names the unknown one.
// "{{" and "}}" are literal braces.
[[nodiscard]] Status check_placeholders(std::string_view text);
// Replaces the placeholders in text (checked first); shell_quote quotes each value for /bin/sh.
[[nodiscard]] Result<std::string> expand_placeholders(std::string_view text, const PlaceholderValues& v,
                                                      bool shell_quote);
// 'it'\''s' — one word for /bin/sh whatever the bytes.
std::string shell_quote(std::string_view s);

// "500ms", "30s", "10m", "2h", "1.5s"; a bare number is seconds. nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
// "1048576", "64KiB", "8MiB", "1GiB", "512K", "2GB" (K, M, G, T are binary). nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view s);

}  // namespace sluice::pipeline
