// Character accuracy of OCR output against a reference text (a PDF's own text layer), shared by the
// OCR tests and bench/ocr_bench.cc; and the real PDFs they render.
//
// accuracy = 1 - edit_distance(ocr, reference) / length(reference), in Unicode code points, over
// both texts normalised the same way: whitespace removed (line breaks, hyphenation and spacing are
// layout, not characters) and typographic variants folded (curly quotes, dashes, ligatures, fullwidth
// ASCII), so that only misread, lost or invented characters count. Can be negative when the OCR
// text is much longer than the reference.
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"

namespace sluice::test {

// Real PDFs Debian ships (scripts/setup.sh installs them): the libtasn1 manual (English, pdfTeX, 36
// pages) and the Debian New Maintainers' Guide in Simplified Chinese (XeTeX, 63 pages).
inline constexpr const char* kEnglishPdf = "/usr/share/doc/libtasn1-doc/libtasn1.pdf";
inline constexpr const char* kEnglishPdfPackage = "libtasn1-doc";
inline constexpr const char* kChinesePdf = "/usr/share/doc/maint-guide-zh-cn/maint-guide.zh-cn.pdf";
inline constexpr const char* kChinesePdfPackage = "maint-guide-zh-cn";

inline std::u32string normalize_for_accuracy(std::string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    char32_t c = utf8::decode(text, i);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0xA0 || c == 0x3000 ||
        c == 0x200B) {
      continue;
    }
    if (c >= 0xFF01 && c <= 0xFF5E) c = c - 0xFF01 + 0x21;  // fullwidth ASCII
    switch (c) {
      case 0x2018:
      case 0x2019:
      case 0x201B:
      case 0x2032: c = '\''; break;
      case 0x201C:
      case 0x201D:
      case 0x201F:
      case 0x2033: c = '"'; break;
      case 0x2010:
      case 0x2011:
      case 0x2012:
      case 0x2013:
      case 0x2014:
      case 0x2212: c = '-'; break;
      case 0x2022:
      case 0x25CF:
      case 0x00B7: c = 0x2022; break;  // bullets
      case 0xFB00: out += U"ff"; continue;
      case 0xFB01: out += U"fi"; continue;
      case 0xFB02: out += U"fl"; continue;
      case 0xFB03: out += U"ffi"; continue;
      case 0xFB04: out += U"ffl"; continue;
      default: break;
    }
    out.push_back(c);
  }
  return out;
}

// Levenshtein distance (insertions, deletions, substitutions), two rows of memory.
inline size_t edit_distance(const std::u32string& a, const std::u32string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({sub, prev[j] + 1, cur[j - 1] + 1});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

inline double character_accuracy(std::string_view ocr, std::string_view reference) {
  const std::u32string a = normalize_for_accuracy(ocr), b = normalize_for_accuracy(reference);
  if (b.empty()) return a.empty() ? 1.0 : 0.0;
  return 1.0 - static_cast<double>(edit_distance(a, b)) / static_cast<double>(b.size());
}

// Runs a shell command and returns its standard output; *ok says whether it exited 0.
inline std::string run_command(const std::string& cmd, bool* ok) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *ok = false;
    return out;
  }
  std::array<char, 65536> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *ok = ::pclose(p) == 0;
  return out;
}

// Single quotes for the shell.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The text layer of one page (pdftotext, reading order).
inline std::string pdf_page_text(const std::string& pdf, int page, bool* ok) {
  return run_command("pdftotext -q -enc UTF-8 -f " + std::to_string(page) + " -l " + std::to_string(page) +
                         " " + shell_quote(pdf) + " -",
                     ok);
}

// Renders one page in 8-bit gray at dpi with pdftoppm; format "png", "jpeg" or "tiff". Returns the
// image's path (out_base plus pdftoppm's suffix), "" on failure.
inline std::string render_page(const std::string& pdf, int page, const std::string& out_base,
                               const std::string& format = "png", int dpi = 300) {
  bool ok = false;
  run_command("pdftoppm -q -gray -r " + std::to_string(dpi) + " -f " + std::to_string(page) + " -l " +
                  std::to_string(page) + " -singlefile -" + format + " " + shell_quote(pdf) + " " +
                  shell_quote(out_base),
              &ok);
  const std::string path = out_base + "." + (format == "jpeg" ? "jpg" : format == "tiff" ? "tif" : format);
  return ok && std::filesystem::exists(path) ? path : std::string();
}

}  // namespace sluice::test
