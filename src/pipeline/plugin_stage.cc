#include "pipeline/plugin_stage.h"

#include <dlfcn.h>

#include <vector>

namespace sluice::pipeline {

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::open(const std::string& path,
                                                           const std::string& config) {
  std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
  lib->path_ = path;
  // RTLD_LOCAL: two plugins may use the same symbol names for their own things.
  lib->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib->handle_ == nullptr) {
    const char* e = ::dlerror();
    return Status::invalid_argument("cannot load the plugin library " + path + ": " +
                                    (e ? e : "unknown error"));
  }
  auto sym = [&](const char* name) { return ::dlsym(lib->handle_, name); };
  if (auto version = reinterpret_cast<sluice_stage_abi_version_fn>(sym("sluice_stage_abi_version"))) {
    if (const int v = version(); v != SLUICE_STAGE_ABI_VERSION) {
      return Status::invalid_argument("the plugin library " + path + " is built for ABI version " +
                                      std::to_string(v) + ", this sluice speaks version " +
                                      std::to_string(SLUICE_STAGE_ABI_VERSION));
    }
  }
  auto init = reinterpret_cast<sluice_stage_init_fn>(sym("sluice_stage_init"));
  lib->process_ = reinterpret_cast<sluice_stage_process_fn>(sym("sluice_stage_process"));
  lib->close_ = reinterpret_cast<sluice_stage_close_fn>(sym("sluice_stage_close"));
  for (auto [fn, name] : {std::pair<void*, const char*>{reinterpret_cast<void*>(init), "sluice_stage_init"},
                          {reinterpret_cast<void*>(lib->process_), "sluice_stage_process"},
                          {reinterpret_cast<void*>(lib->close_), "sluice_stage_close"}}) {
    if (fn == nullptr) {
      return Status::invalid_argument("the plugin library " + path + " does not export " + name +
                                      " (see sluice_stage_abi.h; C++ code needs extern \"C\")");
    }
  }
  if (const int rc = init(config.c_str(), &lib->state_); rc != 0) {
    lib->close_ = nullptr;  // init failed: there is no state to close
    return Status::invalid_argument("the plugin library " + path +
                                    " refused its config (sluice_stage_init returned " + std::to_string(rc) +
                                    ")");
  }
  return lib;
}

PluginLibrary::~PluginLibrary() {
  if (close_ != nullptr) close_(state_);
  if (handle_ != nullptr) ::dlclose(handle_);
}

Status PluginLibrary::process(const FileTask& t) const {
  sluice_stage_input in{t.values.input.c_str(), t.values.output_dir.c_str(), t.values.doc_id.c_str(),
                        t.values.key.c_str(), t.values.name.c_str()};
  std::vector<char> error(4096, '\0');
  sluice_stage_output out{error.data(), error.size()};
  const int rc = process_(state_, &in, &out);
  if (rc == SLUICE_STAGE_OK) return {};
  error.back() = '\0';  // whatever the plugin wrote, the message ends inside the buffer
  std::string msg = "the plugin " + path_ + " failed (code " + std::to_string(rc) + ")";
  if (error[0] != '\0') msg += ": " + std::string(error.data());
  switch (rc) {
    case SLUICE_STAGE_ERROR_BAD_INPUT: return Status::invalid_argument(msg);
    case SLUICE_STAGE_ERROR_RETRIABLE: return Status(ErrorClass::kRetriable, Code::kBusy, msg);
    case SLUICE_STAGE_ERROR_RESOURCE_LIMIT: return Status::resource_limit(msg);
    default: return Status::internal(msg);
  }
}

Result<StageDef> plugin_stage(const StageContext& ctx, const StageSpec& spec) {
  auto lib = PluginLibrary::open(spec.library, spec.config);
  if (!lib.is_ok()) return lib.status().with_context("stage '" + spec.name + "'");
  std::shared_ptr<PluginLibrary> held = std::move(lib).value();
  return file_stage(ctx, spec, [held](const FileTask& t) { return held->process(t); });
}

}  // namespace sluice::pipeline
