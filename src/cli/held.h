// What `sluice dlq` and `sluice review` share: both list held messages (dead letters, documents
// held by the quality gate) in a table or as JSON lines, and send chosen ones on (--doc ID... or
// --all), skipping those a ledger says were sent already (pipeline/dead_letters.h).
// Thread-safety: functions of the calling thread; they print to stdout/stderr.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "pipeline/dead_letters.h"

namespace sluice::cli {

// Writes text to stdout: kExitOk, or an I/O error reported.
int print_or_fail(const std::string& text);

// One table cell: control characters become spaces, malformed UTF-8 becomes U+FFFD, and text
// longer than max_chars characters (0: no limit) is cut to fit, ending in "…"; "-" when empty.
std::string table_cell(std::optional<std::string_view> s, size_t max_chars = 0);

// How a command speaks of what it holds, for the messages of choose_held().
struct HeldWords {
  std::string one;       // "dead letter", "held document"
  std::string many;      // "dead letters", "held documents"
  std::string sent;      // "replayed", "released"
  std::string send;      // "replay", "release": the command to run again
  std::string scope;     // "any dead-letter topic", "doc_review"
  std::string list_cmd;  // "sluice dlq list"
};

// The held messages --doc/--all choose that were not sent on yet, oldest first. A named doc that
// holds nothing is kNotFound (nothing is sent); one whose messages were all sent already is said on
// stderr and skipped.
[[nodiscard]] Result<std::vector<const pipeline::DeadLetter*>> choose_held(
    const std::vector<const pipeline::DeadLetter*>& held, const std::vector<std::string>& docs, bool all,
    const HeldWords& words);

// After a send: says on stderr what a partial send (r.send_error) or an unrecorded one
// (r.ledger_error) leaves to do, and returns the exit code — `code` (the output's) unless one of
// those failed.
int finish_send(const pipeline::ReplayResult& r, size_t chosen, int code, const HeldWords& words);

}  // namespace sluice::cli
