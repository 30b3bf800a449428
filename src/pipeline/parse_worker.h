// Parsing in worker processes: the parse stage hands each file to an IsolatedParser, which runs
// parse_file() in a child from a ProcessPool (`sluice __parse-worker`), so a parser that crashes,
// hangs or eats memory on one document fails that document only.
//
// Fault hook for tests: when the child's environment has SLUICE_TEST_FAULT_FILES=1, a file whose
// content starts with "SLUICE-TEST-FAULT hang", "... crash" or "... oom" makes the child hang,
// crash or allocate without end — the "test-only format" the crash and hang tests need. Without the variable
// such a file is plain text. Thread-safety: IsolatedParser::parse is thread-safe (the pool bounds
// concurrency).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "parse/parser.h"
#include "pipeline/process_pool.h"

namespace sluice::pipeline {

// The child's side: serves parse requests on stdin/stdout until stdin closes.
int run_parse_worker();

// One request, as the child handles it (exposed for tests).
[[nodiscard]] Result<std::string> handle_parse_request(std::string_view request);

class IsolatedParser {
 public:
  // pool.program/args name the worker program (normally this binary with "__parse-worker").
  [[nodiscard]] static Result<std::unique_ptr<IsolatedParser>> start(ProcessPoolOptions pool);
  [[nodiscard]] Result<parse::ParsedDocument> parse(const std::string& path,
                                                    const parse::ParseOptions& opts = {});

 private:
  explicit IsolatedParser(std::unique_ptr<ProcessPool> pool) : pool_(std::move(pool)) {}
  std::unique_ptr<ProcessPool> pool_;
};

}  // namespace sluice::pipeline
