// Plugin stages: a shared library with the C ABI of sluice_stage_abi.h, loaded at start (dlopen)
// for a `type: plugin` stage of a pipeline file, called in-process for each task; around it the
// file stage of exec_stage.h downloads the input, uploads the outputs and publishes the result.
// The return code of sluice_stage_process gives the failure class (bad input, retriable, resource
// limit; anything else fatal) and the plugin's message goes into the failure notification.
//
// Ownership: a PluginLibrary owns the library handle and the plugin's state; it calls
// sluice_stage_close and dlclose when destroyed. The StageDef of plugin_stage() holds it (shared)
// for as long as the stage's functions live.
// Thread-safety: process() is called from the stage's workers at once (the ABI says so).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "pipeline/exec_stage.h"
#include "pipeline/pipeline_file.h"
#include "pipeline/sluice_stage_abi.h"

namespace sluice::pipeline {

class PluginLibrary {
 public:
  // Loads the library and calls sluice_stage_init(config). A missing file, a missing symbol, an
  // ABI version mismatch or a failed init is kBadInput naming the library (and dlerror's reason).
  [[nodiscard]] static Result<std::shared_ptr<PluginLibrary>> open(const std::string& path,
                                                                   const std::string& config);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  // Calls sluice_stage_process for one task.
  [[nodiscard]] Status process(const FileTask& task) const;
  const std::string& path() const { return path_; }

 private:
  PluginLibrary() = default;
  std::string path_;
  void* handle_ = nullptr;
  void* state_ = nullptr;
  sluice_stage_process_fn process_ = nullptr;
  sluice_stage_close_fn close_ = nullptr;
};

// The stage of spec (type: plugin): loads its library now, so that a bad one fails at start.
[[nodiscard]] Result<StageDef> plugin_stage(const StageContext& ctx, const StageSpec& spec);

}  // namespace sluice::pipeline
