#include "pipeline/pipeline_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/sources.h"
#include "pipeline/stages.h"
#include "queue/queue.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPlaceholders[] = {"input", "output_dir", "doc_id", "name", "key"};

// Messages name the file, the line (yaml-cpp counts from 0), the stage and the key.
class Errors {
 public:
  explicit Errors(std::string_view what) : what_(what) {}
  Status at(const YAML::Node& n, std::string_view stage, std::string_view key, const std::string& msg) const {
    int line = n.IsDefined() ? n.Mark().line + 1 : 0;
    return at_line(line, stage, key, msg);
  }
  Status at_line(int line, std::string_view stage, std::string_view key, const std::string& msg) const {
    std::string out(what_);
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!stage.empty()) out += "stage '" + std::string(stage) + "': ";
    if (!key.empty()) out += std::string(key) + ": ";
    return Status::invalid_argument(out + msg);
  }

 private:
  std::string what_;
};

bool valid_stage_name(std::string_view n) {
  if (n.empty() || n.size() > 100) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool valid_env_name(std::string_view n) {
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Topics that carry something other than tasks: a custom stage can neither read nor write them.
bool is_reserved_topic(std::string_view t) {
  return t == kTopicResults || t == kTopicParsed || t == kTopicEmbedded || t == kTopicIngested ||
         t == kTopicDlqLedger || t.ends_with(kRetrySuffix) || t.ends_with(kDlqSuffix);
}

const char* builtin_output(std::string_view name) {
  if (name == "parse") return kTopicParsed;
  if (name == "embed") return kTopicEmbedded;
  return nullptr;
}
const char* builtin_input(std::string_view name) {
  for (const auto& b : builtin_stages())
    if (name == b.name) return b.input;
  return nullptr;
}

std::string type_name(StageType t) {
  switch (t) {
    case StageType::kBuiltin: return "builtin";
    case StageType::kExec: return "exec";
    case StageType::kPlugin: return "plugin";
  }
  return "exec";
}

Result<StageSpec> parse_stage(const YAML::Node& n, size_t index, const std::string& base_dir,
                              const Errors& err) {
  StageSpec s;
  s.line = n.Mark().line + 1;
  if (!n.IsMap()) {
    return err.at(n, "", "stages[" + std::to_string(index) + "]", "a stage is a mapping (name:, type:, ...)");
  }
  // Name and type first: the other keys' messages name the stage, and which keys are allowed
  // depends on its type.
  const YAML::Node name = n["name"];
  if (!name) return err.at(n, "", "stages[" + std::to_string(index) + "]", "name is required");
  if (!name.IsScalar() || !valid_stage_name(name.Scalar())) {
    return err.at(name, "", "name",
                  "'" + (name.IsScalar() ? name.Scalar() : std::string("?")) +
                      "' is not a stage name (letters, digits, '_' and '-')");
  }
  s.name = name.Scalar();
  const YAML::Node type = n["type"];
  if (!type) return err.at(n, s.name, "type", "is required (exec, plugin or builtin)");
  const std::string t = type.IsScalar() ? type.Scalar() : "";
  if (t == "exec") {
    s.type = StageType::kExec;
  } else if (t == "plugin") {
    s.type = StageType::kPlugin;
  } else if (t == "builtin") {
    s.type = StageType::kBuiltin;
  } else {
    return err.at(type, s.name, "type", "'" + t + "' is not a stage type (exec, plugin or builtin)");
  }
  if (s.type == StageType::kBuiltin && builtin_input(s.name) == nullptr) {
    return err.at(name, s.name, "name", "a builtin stage is parse, embed or index");
  }
  if (s.type != StageType::kBuiltin && builtin_input(s.name) != nullptr) {
    return err.at(name, s.name, "name", "is a built-in stage's name; use type: builtin, or another name");
  }

  std::set<std::string> allowed = {"name", "type"};
  if (s.type != StageType::kBuiltin) {
    allowed.insert({"input", "output", "timeout", "dest", "max_output_bytes", "workers", "cleanup_files",
                    "cleanup_on_error"});
  }
  if (s.type == StageType::kExec) allowed.insert({"command", "shell", "env"});
  if (s.type == StageType::kPlugin) allowed.insert({"library", "config"});
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return err.at(it->first, s.name, key,
                    "unknown key for a " + type_name(s.type) + " stage (keys: " + list + ")");
    }
  }
  if (s.type == StageType::kBuiltin) return s;

  auto scalar = [&](const char* key, std::string* out) -> Status {
    const YAML::Node v = n[key];
    if (!v) return {};
    if (!v.IsScalar()) return err.at(v, s.name, key, "must be a single value");
    *out = v.Scalar();
    return {};
  };
  auto boolean = [&](const char* key, std::optional<bool>* out) -> Status {
    const YAML::Node v = n[key];
    if (!v) return {};
    const std::string x = v.IsScalar() ? v.Scalar() : "";
    if (x == "true" || x == "yes" || x == "on") {
      *out = true;
    } else if (x == "false" || x == "no" || x == "off") {
      *out = false;
    } else {
      return err.at(v, s.name, key, "'" + x + "' is not true or false");
    }
    return {};
  };

  for (const char* key : {"input", "output"}) {
    std::string topic;
    SLUICE_RETURN_IF_ERROR(scalar(key, &topic));
    if (!n[key]) continue;
    if (Status st = queue::validate_topic_name(topic); !st.is_ok()) {
      return err.at(n[key], s.name, key, st.message());
    }
    if (is_reserved_topic(topic)) {
      return err.at(n[key], s.name, key,
                    "'" + topic + "' carries the pipeline's own messages, not tasks; pick another topic");
    }
    (std::string_view(key) == "input" ? s.input : s.output) = topic;
  }

  std::string text;
  SLUICE_RETURN_IF_ERROR(scalar("timeout", &text));
  if (n["timeout"]) {
    auto d = parse_duration(text);
    if (!d || d->count() <= 0) {
      return err.at(n["timeout"], s.name, "timeout",
                    "'" + text + "' is not a positive duration (500ms, 30s, 10m, 2h)");
    }
    s.timeout = *d;
  }
  text.clear();
  SLUICE_RETURN_IF_ERROR(scalar("max_output_bytes", &text));
  if (n["max_output_bytes"]) {
    auto b = parse_size(text);
    if (!b)
      return err.at(n["max_output_bytes"], s.name, "max_output_bytes",
                    "'" + text + "' is not a size (1048576, 64KiB, 1GiB)");
    s.max_output_bytes = *b;
  }
  text.clear();
  SLUICE_RETURN_IF_ERROR(scalar("workers", &text));
  if (n["workers"]) {
    char* end = nullptr;
    long w = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || w < 1 || w > 256) {
      return err.at(n["workers"], s.name, "workers", "'" + text + "' is not a number of workers (1..256)");
    }
    s.workers = static_cast<size_t>(w);
  }
  SLUICE_RETURN_IF_ERROR(boolean("cleanup_files", &s.cleanup_files));
  SLUICE_RETURN_IF_ERROR(boolean("cleanup_on_error", &s.cleanup_on_error));

  SLUICE_RETURN_IF_ERROR(scalar("dest", &s.dest));
  if (s.dest.empty()) {
    return err.at(n["dest"] ? n["dest"] : n, s.name, "dest",
                  "is required: s3://BUCKET/PREFIX or a folder, where the output files go");
  }
  if (Status st = check_placeholders(s.dest); !st.is_ok())
    return err.at(n["dest"], s.name, "dest", st.message());
  if (is_bucket_uri(s.dest)) {
    // The bucket is checked now unless a placeholder names it (then it is checked per task).
    const std::string bucket = s.dest.substr(5, s.dest.find('/', 5) - 5);
    if (bucket.find('{') == std::string::npos) {
      if (auto b = parse_bucket_uri("s3://" + bucket); !b.is_ok()) {
        return err.at(n["dest"], s.name, "dest", b.status().message());
      }
    }
  } else {
    std::string folder = s.dest.starts_with("file:") ? s.dest.substr(5) : s.dest;
    if (folder.find("://") != std::string::npos) {
      return err.at(n["dest"], s.name, "dest", "'" + s.dest + "' is neither s3://BUCKET/PREFIX nor a folder");
    }
    if (folder.empty()) return err.at(n["dest"], s.name, "dest", "is an empty folder name");
    s.dest =
        fs::path(folder).is_absolute() ? folder : (fs::path(base_dir) / folder).lexically_normal().string();
  }

  if (s.type == StageType::kExec) {
    std::optional<bool> shell;
    SLUICE_RETURN_IF_ERROR(boolean("shell", &shell));
    s.shell = shell.value_or(false);
    const YAML::Node cmd = n["command"];
    if (!cmd) return err.at(n, s.name, "command", "is required for an exec stage");
    if (s.shell) {
      if (!cmd.IsScalar() || cmd.Scalar().empty()) {
        return err.at(cmd, s.name, "command", "with shell: true, the command is one string for /bin/sh -c");
      }
      s.command = {cmd.Scalar()};
    } else {
      if (cmd.IsScalar()) {
        return err.at(cmd, s.name, "command",
                      "is a string: give a list (argv, run without a shell) or set shell: true");
      }
      if (!cmd.IsSequence() || cmd.size() == 0) {
        return err.at(cmd, s.name, "command", "must be a non-empty list: [program, arg, ...]");
      }
      for (const auto& a : cmd) {
        if (!a.IsScalar()) return err.at(a, s.name, "command", "every element must be a string");
        s.command.push_back(a.Scalar());
      }
      if (s.command[0].empty()) return err.at(cmd, s.name, "command", "the program is empty");
      // A relative program with a '/' (./tools/x.sh) is the pipeline file's neighbour, as a
      // plugin library is; a bare name is looked up in PATH when it runs.
      if (s.command[0].find('/') != std::string::npos && s.command[0].find('{') == std::string::npos &&
          !fs::path(s.command[0]).is_absolute()) {
        s.command[0] = (fs::path(base_dir) / s.command[0]).lexically_normal().string();
      }
    }
    for (const auto& a : s.command) {
      if (Status st = check_placeholders(a); !st.is_ok()) return err.at(cmd, s.name, "command", st.message());
    }
    const YAML::Node env = n["env"];
    if (env) {
      if (!env.IsMap()) return err.at(env, s.name, "env", "must be a mapping NAME: value");
      for (auto it = env.begin(); it != env.end(); ++it) {
        const std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
        if (!valid_env_name(k)) return err.at(it->first, s.name, "env", "'" + k + "' is not a variable name");
        if (!it->second.IsScalar()) return err.at(it->second, s.name, "env", k + " must be a single value");
        if (Status st = check_placeholders(it->second.Scalar()); !st.is_ok()) {
          return err.at(it->second, s.name, "env", k + ": " + st.message());
        }
        s.env.emplace_back(k, it->second.Scalar());
      }
    }
  } else {  // plugin
    SLUICE_RETURN_IF_ERROR(scalar("library", &s.library));
    if (s.library.empty()) return err.at(n, s.name, "library", "is required for a plugin stage (a .so file)");
    if (!fs::path(s.library).is_absolute())
      s.library = (fs::path(base_dir) / s.library).lexically_normal().string();
    if (n["config"]) {
      if (!n["config"].IsScalar()) return err.at(n["config"], s.name, "config", "must be a string");
      s.config = n["config"].Scalar();
    }
  }
  return s;
}

Result<PipelineFile> parse_root(const YAML::Node& root, const std::string& base_dir, const Errors& err) {
  if (!root.IsMap()) return err.at_line(1, "", "", "a pipeline file is a mapping with a 'stages' list");
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (key != "stages") return err.at(it->first, "", key, "unknown key (a pipeline file has 'stages')");
  }
  const YAML::Node stages = root["stages"];
  if (!stages || !stages.IsSequence() || stages.size() == 0) {
    return err.at(stages ? stages : root, "", "stages", "must be a non-empty list of stages");
  }
  PipelineFile out;
  std::set<std::string> names;
  for (size_t i = 0; i < stages.size(); ++i) {
    SLUICE_ASSIGN_OR_RETURN(StageSpec s, parse_stage(stages[i], i, base_dir, err));
    if (!names.insert(s.name).second) {
      return err.at_line(s.line, s.name, "name", "another stage has this name (each is a consumer group)");
    }
    if (s.type == StageType::kBuiltin) {
      s.input = builtin_input(s.name);
      if (const char* o = builtin_output(s.name)) s.output = o;
    } else if (s.input.empty()) {
      if (out.stages.empty()) {
        s.input = kTopicUpload;
      } else {
        const StageSpec& prev = out.stages.back();
        if (prev.type == StageType::kBuiltin || prev.output.empty()) {
          return err.at_line(
              s.line, s.name, "input",
              "is required: the previous stage '" + prev.name + "' has no output topic that carries tasks");
        }
        s.input = prev.output;
      }
    }
    if (!s.output.empty() && s.output == s.input) {
      return err.at_line(s.line, s.name, "output", "is the stage's own input '" + s.input + "' (a loop)");
    }
    out.stages.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Result<PipelineFile> parse_pipeline_file(std::string_view yaml, const std::string& base_dir,
                                         std::string_view what) {
  const Errors err(what);
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    return parse_root(root, base_dir, err);
  } catch (const YAML::Exception& e) {
    return err.at_line(e.mark.is_null() ? 0 : e.mark.line + 1, "", "", "not valid YAML: " + e.msg);
  }
}

Result<PipelineFile> load_pipeline_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument("cannot read the pipeline file " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  SLUICE_ASSIGN_OR_RETURN(PipelineFile f, parse_pipeline_file(buf.str(), abs.parent_path().string(), path));
  f.path = path;
  return f;
}

Status check_placeholders(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "{{") == 0 || text.compare(i, 2, "}}") == 0) {
      ++i;
      continue;
    }
    if (text[i] == '}')
      return Status::invalid_argument("a lone '}' in '" + std::string(text) + "' (write }} for a brace)");
    if (text[i] != '{') continue;
    const size_t close = text.find('}', i);
    if (close == std::string_view::npos) {
      return Status::invalid_argument("an unclosed '{' in '" + std::string(text) +
                                      "' (write {{ for a brace)");
    }
    const std::string_view name = text.substr(i + 1, close - i - 1);
    if (std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) == std::end(kPlaceholders)) {
      return Status::invalid_argument("unknown placeholder {" + std::string(name) +
                                      "} (placeholders: {input}, {output_dir}, {doc_id}, {name}, {key})");
    }
    i = close;
  }
  return {};
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

Result<std::string> expand_placeholders(std::string_view text, const PlaceholderValues& v, bool quote) {
  SLUICE_RETURN_IF_ERROR(check_placeholders(text));
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "{{") == 0 || text.compare(i, 2, "}}") == 0) {
      out += text[i];
      ++i;
      continue;
    }
    if (text[i] != '{') {
      out += text[i];
      continue;
    }
    const size_t close = text.find('}', i);
    const std::string_view name = text.substr(i + 1, close - i - 1);
    const std::string& value = name == "input"        ? v.input
                               : name == "output_dir" ? v.output_dir
                               : name == "doc_id"     ? v.doc_id
                               : name == "name"       ? v.name
                                                      : v.key;
    out += quote ? shell_quote(value) : value;
    i = close;
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && ((s[n] >= '0' && s[n] <= '9') || s[n] == '.')) ++n;
  if (n == 0) return std::nullopt;
  const std::string num(s.substr(0, n));
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  const std::string_view unit = s.substr(n);
  double ms;
  if (unit == "ms") {
    ms = v;
  } else if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "m") {
    ms = v * 60'000;
  } else if (unit == "h") {
    ms = v * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::optional<uint64_t> parse_size(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0 || n > 19) return std::nullopt;
  const uint64_t v = std::stoull(std::string(s.substr(0, n)));
  std::string_view unit = s.substr(n);
  if (unit.starts_with(" ")) unit.remove_prefix(1);
  int shift;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KB" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MB" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GB" || unit == "GiB") {
    shift = 30;
  } else if (unit == "T" || unit == "TB" || unit == "TiB") {
    shift = 40;
  } else {
    return std::nullopt;
  }
  if (shift > 0 && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

}  // namespace sluice::pipeline
