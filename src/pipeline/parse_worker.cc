#include "pipeline/parse_worker.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace sluice::pipeline {
namespace {

constexpr std::string_view kFaultMagic = "SLUICE-TEST-FAULT ";

// The test-only format: acts out the fault the file names.
void maybe_fault(const std::string& path) {
  const char* enabled = std::getenv("SLUICE_TEST_FAULT_FILES");
  if (!enabled || std::strcmp(enabled, "1") != 0) return;
  std::ifstream f(path, std::ios::binary);
  char buf[32] = {0};
  f.read(buf, sizeof buf - 1);
  std::string_view head(buf, static_cast<size_t>(f.gcount()));
  if (!head.starts_with(kFaultMagic)) return;
  head.remove_prefix(kFaultMagic.size());
  if (head.starts_with("hang")) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (head.starts_with("crash")) std::raise(SIGSEGV);
  if (head.starts_with("oom")) {
    // Grows until the address-space budget stops it (std::bad_alloc, answered as resource_limit).
    std::vector<std::unique_ptr<char[]>> hog;
    for (;;) {
      hog.emplace_back(new char[64 << 20]);
      std::memset(hog.back().get(), 1, 64 << 20);
    }
  }
}

}  // namespace

Result<std::string> handle_parse_request(std::string_view request) {
  auto j = nlohmann::json::parse(request, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("path") || !j["path"].is_string()) {
    return Status::invalid_argument("parse request is not {\"path\": ...}");
  }
  const std::string path = j["path"].get<std::string>();
  parse::ParseOptions opts;
  if (j.contains("max_bytes") && j["max_bytes"].is_number_unsigned())
    opts.max_bytes = j["max_bytes"].get<uint64_t>();
  if (j.contains("ocr") && j["ocr"].is_string()) {
    SLUICE_ASSIGN_OR_RETURN(opts.ocr.mode, parse::ocr_mode_from_name(j["ocr"].get<std::string>()));
  }
  if (j.contains("ocr_lang") && j["ocr_lang"].is_string())
    opts.ocr.languages = j["ocr_lang"].get<std::string>();
  if (j.contains("ocr_dpi") && j["ocr_dpi"].is_number_integer()) opts.ocr.dpi = j["ocr_dpi"].get<int>();
  maybe_fault(path);
  SLUICE_ASSIGN_OR_RETURN(parse::ParsedDocument doc, parse::parse_file(path, opts));
  return parse::to_json(doc);
}

int run_parse_worker() {
  return serve_child(handle_parse_request);
}

Result<std::unique_ptr<IsolatedParser>> IsolatedParser::start(ProcessPoolOptions pool) {
  SLUICE_ASSIGN_OR_RETURN(auto p, ProcessPool::start(std::move(pool)));
  return std::unique_ptr<IsolatedParser>(new IsolatedParser(std::move(p)));
}

Result<parse::ParsedDocument> IsolatedParser::parse(const std::string& path,
                                                    const parse::ParseOptions& opts) {
  nlohmann::json req = {{"path", path},
                        {"max_bytes", opts.max_bytes},
                        {"ocr", parse::ocr_mode_name(opts.ocr.mode)},
                        {"ocr_lang", opts.ocr.languages},
                        {"ocr_dpi", opts.ocr.dpi}};
  auto res = pool_->call(req.dump(), "parsing '" + path + "'");
  if (!res.is_ok()) return res.status();  // the parsers' own errors name the file already
  return parse::parsed_document_from_json(*res);
}

}  // namespace sluice::pipeline
