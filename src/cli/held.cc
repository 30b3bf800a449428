#include "cli/held.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>

#include "base/utf8.h"
#include "cli/common.h"

namespace sluice::cli {

using pipeline::DeadLetter;

int print_or_fail(const std::string& text) {
  if (write_stdout(text)) return kExitOk;
  return report(Status::io_error("writing to stdout failed"));
}

std::string table_cell(std::optional<std::string_view> s, size_t max_chars) {
  if (!s || s->empty()) return "-";
  std::u32string chars;
  for (size_t i = 0; i < s->size();) {
    char32_t c = utf8::decode(*s, i);
    chars.push_back(c < 0x20 || c == 0x7f ? U' ' : c);
  }
  bool cut = false;
  if (max_chars > 0 && chars.size() > max_chars) {
    chars.resize(max_chars - 1);
    cut = true;
  }
  std::string out;
  for (char32_t c : chars) utf8::append(out, c);
  if (cut) out += "…";
  return out;
}

Result<std::vector<const DeadLetter*>> choose_held(const std::vector<const DeadLetter*>& held,
                                                   const std::vector<std::string>& docs, bool all,
                                                   const HeldWords& words) {
  std::vector<const DeadLetter*> chosen;
  if (all) {
    for (const DeadLetter* d : held)
      if (!d->replayed_at) chosen.push_back(d);
    return chosen;
  }
  std::set<std::string> wanted(docs.begin(), docs.end());
  std::vector<std::string> missing;
  for (const std::string& id : docs) {
    if (!wanted.count(id)) continue;  // named twice
    wanted.erase(id);
    size_t found = 0, done = 0;
    for (const DeadLetter* d : held) {
      if (!d->key || *d->key != id) continue;
      ++found;
      if (d->replayed_at) {
        ++done;
      } else {
        chosen.push_back(d);
      }
    }
    if (found == 0) {
      missing.push_back(id);
    } else if (found == done) {
      std::fprintf(stderr, "sluice: doc '%s': its %zu %s already %s; not sent again\n", id.c_str(), done,
                   (done == 1 ? words.one + " was" : words.many + " were").c_str(), words.sent.c_str());
    }
  }
  if (!missing.empty()) {
    std::string names;
    for (const std::string& id : missing) names += (names.empty() ? "'" : ", '") + id + "'";
    return Status::not_found("no " + words.one + " for doc " + names + " in " + words.scope + " (see `" +
                             words.list_cmd + "`); nothing was " + words.sent);
  }
  std::sort(chosen.begin(), chosen.end(), [&](const DeadLetter* a, const DeadLetter* b) {
    return std::tie(a->timestamp_ms, a->at) < std::tie(b->timestamp_ms, b->at);
  });
  return chosen;
}

int finish_send(const pipeline::ReplayResult& r, size_t chosen, int code, const HeldWords& words) {
  if (!r.send_error.is_ok()) {
    int c = report(r.send_error);
    std::fprintf(stderr, "sluice: %zu of %zu chosen %s were not %s; run the %s again\n",
                 chosen - r.replayed.size(), chosen, words.many.c_str(), words.sent.c_str(),
                 words.send.c_str());
    if (code == kExitOk) code = c;
  }
  if (!r.ledger_error.is_ok()) {
    report(r.ledger_error);
    std::fprintf(stderr, "sluice: %zu %s %s are not recorded as %s; a second %s would send them again\n",
                 r.replayed.size() - r.recorded(), words.sent.c_str(), words.many.c_str(), words.sent.c_str(),
                 words.send.c_str());
    code = kExitFailure;
  }
  return code;
}

}  // namespace sluice::cli
