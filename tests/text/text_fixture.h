// Test helpers for the text module: a ParsedDocument read from a small fixture format, documents
// and chunks rendered as text for golden files, and an independent UTF-8 validator.
//
// Fixture format: a line "=== page=N kind=K [level=L]" starts a block (K is a block_kind_name);
// the lines after it, up to the next "===" line, are its text (the final newline is not part of
// it). "\t" in the fixture stands for a tab, "\u{XXXX}" for any code point and "\r" for a carriage
// return, so invisible characters stay visible in the fixture. Lines starting with "#" before the
// first block are comments.
#pragma once

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "parse/document.h"
#include "support/golden.h"
#include "text/text.h"

namespace sluice::test {

inline std::string unescape_fixture(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      if (s[i + 1] == 't') {
        out += '\t', ++i;
        continue;
      }
      if (s[i + 1] == 'r') {
        out += '\r', ++i;
        continue;
      }
      if (s[i + 1] == 'u' && i + 2 < s.size() && s[i + 2] == '{') {
        const size_t close = s.find('}', i);
        sluice::utf8::append(
            out, static_cast<uint32_t>(std::stoul(std::string(s.substr(i + 3, close - i - 3)), nullptr, 16)));
        i = close;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

inline parse::BlockKind kind_from_name(std::string_view n) {
  using parse::BlockKind;
  for (BlockKind k : {BlockKind::kHeading, BlockKind::kParagraph, BlockKind::kListItem, BlockKind::kTableRow,
                      BlockKind::kCode, BlockKind::kRecord}) {
    if (n == parse::block_kind_name(k)) return k;
  }
  ADD_FAILURE() << "unknown block kind " << n;
  return BlockKind::kParagraph;
}

inline parse::ParsedDocument read_fixture_document(const std::string& rel) {
  parse::ParsedDocument doc;
  doc.format = "pdf";
  std::istringstream in(read_text_file(source_path(rel)));
  std::string line;
  bool have_block = false;
  std::string text;
  bool first_line = true;
  auto finish = [&] {
    if (have_block) doc.blocks.back().text = unescape_fixture(text);
    text.clear();
  };
  while (std::getline(in, line)) {
    if (line.rfind("===", 0) == 0) {
      finish();
      parse::Block b;
      std::istringstream fields(line.substr(3));
      std::string field;
      while (fields >> field) {
        const auto eq = field.find('=');
        const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
        if (key == "page") b.page = std::stoi(value);
        if (key == "kind") b.kind = kind_from_name(value);
        if (key == "level") b.level = std::stoi(value);
      }
      doc.pages = std::max(doc.pages, b.page);
      doc.blocks.push_back(b);
      have_block = true;
      first_line = true;
      continue;
    }
    if (!have_block) continue;  // comments
    if (!first_line) text += '\n';
    text += line;
    first_line = false;
  }
  finish();
  return doc;
}

inline std::string render_document(const parse::ParsedDocument& doc) {
  std::string out;
  for (const parse::Block& b : doc.blocks) {
    out += "=== page=" + std::to_string(b.page) + " kind=" + parse::block_kind_name(b.kind);
    if (b.kind == parse::BlockKind::kHeading) out += " level=" + std::to_string(b.level);
    out += "\n" + b.text + "\n";
  }
  return out;
}

inline std::string render_chunks(const std::vector<text::Chunk>& chunks) {
  std::string out;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const text::Chunk& c = chunks[i];
    std::string path;
    for (const std::string& h : c.heading_path) path += (path.empty() ? "" : " > ") + h;
    out += "--- chunk " + std::to_string(i) + " page=" + std::to_string(c.page) +
           " tokens=" + std::to_string(c.tokens) + " path=[" + path + "]\n" + c.text + "\n";
  }
  return out;
}

// Strict UTF-8 check written independently of src/text/utf8.cc (shortest form, no surrogates,
// nothing past U+10FFFF, no truncated sequences).
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace sluice::test
