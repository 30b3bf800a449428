// Helpers the parser tests share: fixture paths and the escaping used when rendering goldens.
#pragma once

#include <string>

#include "parse/document.h"
#include "support/golden.h"

namespace sluice::parse {

inline std::string fixture(const std::string& name) {
  return sluice::test::source_path("tests/fixtures/parse/" + name);
}

// One line per block, so newlines and tabs inside a block are shown escaped.
inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

// The part of a golden rendering every parser test shares: warnings, a "--" line, then one line
// per block ("kind[level] pPAGE: text"). Each test adds its own header lines above it.
inline std::string render_body(const ParsedDocument& doc) {
  std::string out;
  for (const std::string& w : doc.warnings) out += "warning: " + escape(w) + "\n";
  out += "--\n";
  for (const Block& b : doc.blocks) {
    out += block_kind_name(b.kind);
    if (b.kind == BlockKind::kHeading) out += "[" + std::to_string(b.level) + "]";
    out += " p" + std::to_string(b.page) + ": " + escape(b.text) + "\n";
  }
  return out;
}

}  // namespace sluice::parse
