// Helpers the parser tests share: fixture paths and the escaping used when rendering goldens.
#pragma once

#include <string>

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

}  // namespace sluice::parse
