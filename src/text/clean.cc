// The cleaner: per block, white space and invisible characters normalised, page numbers and
// table-of-contents lines dropped, lines joined (Latin with a space, CJK with nothing, line-break
// hyphenation undone); across pages, short blocks repeated at the top or bottom of most pages
// (running headers and footers) removed; optionally PII masked.
#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "text/text.h"
#include "text/utf8.h"

namespace sluice::text {
namespace {

using parse::Block;
using parse::BlockKind;

constexpr char32_t kSoftHyphen = 0x00AD;
// A running header or footer is short and sits among the first or last blocks of its page.
constexpr size_t kMaxHeaderCodePoints = 80;
constexpr size_t kEdgeBlocks = 2;
constexpr size_t kMaxPageDigits = 4;

struct Line {
  std::string text;          // single-spaced, trimmed
  bool soft_hyphen = false;  // ended with U+00AD: a hyphenation point, join without a space
  bool removed = false;      // a page number or TOC line: neither content nor a paragraph break
};

bool is_line_break(char32_t cp) {
  return cp == '\n' || cp == '\f' || cp == '\v' || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

// Splits prose into lines: \r\n and lone \r become line breaks, every kind of space (NBSP, U+3000,
// tabs, ...) becomes one ASCII space with runs collapsed and ends trimmed, zero-width and control
// characters are removed, malformed UTF-8 becomes U+FFFD.
std::vector<Line> split_lines(std::string_view s) {
  std::vector<Line> lines(1);
  bool pending_space = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t cp = utf8::decode(s, i);
    if (cp == '\r') {
      if (i < s.size() && s[i] == '\n') ++i;
      lines.emplace_back(), pending_space = false;
    } else if (is_line_break(cp)) {
      lines.emplace_back(), pending_space = false;
      if (cp == 0x2029) lines.emplace_back();  // paragraph separator: a blank line
    } else if (utf8::is_space(cp)) {
      pending_space = !lines.back().text.empty();
    } else if (cp == kSoftHyphen) {
      // Only a soft hyphen at the end of a line matters: the word continues on the next line.
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j >= s.size() || s[j] == '\n' || s[j] == '\r') lines.back().soft_hyphen = true;
    } else if (utf8::is_zero_width(cp) || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
      // invisible: dropped without leaving a space
    } else {
      Line& line = lines.back();
      if (pending_space) line.text.push_back(' ');
      pending_space = false;
      line.soft_hyphen = false;
      utf8::append(line.text, cp);
    }
  }
  return lines;
}

std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) out.push_back(utf8::decode(s, i));
  return out;
}

bool is_ascii_digit(char32_t cp) {
  return cp >= '0' && cp <= '9';
}
bool is_ascii_alpha(char32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
}
char32_t ascii_lower(char32_t cp) {
  return (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
}

bool is_chinese_numeral(char32_t cp) {
  static constexpr std::u32string_view kNumerals = U"〇零一二三四五六七八九十百千两";
  return kNumerals.find(cp) != std::u32string_view::npos;
}

// Lower-case roman numerals up to l (50): front-matter page numbers such as "iv" or "xii".
bool is_small_roman(std::u32string_view w) {
  static const std::set<std::u32string> kRoman = [] {
    std::set<std::u32string> r;
    const char32_t* units[] = {U"", U"i", U"ii", U"iii", U"iv", U"v", U"vi", U"vii", U"viii", U"ix"};
    const char32_t* tens[] = {U"", U"x", U"xx", U"xxx", U"xl"};
    for (const char32_t* t : tens) {
      for (const char32_t* u : units) r.insert(std::u32string(t) + u);
    }
    r.erase(U"");
    r.insert(U"l");
    return r;
  }();
  return kRoman.count(std::u32string(w)) > 0;
}

bool is_decoration(char32_t cp) {
  static constexpr std::u32string_view kDecorations = U"-–—―·•|[]()~*<>«»【】（）［］－—";
  return cp == ' ' || kDecorations.find(cp) != std::u32string_view::npos;
}

// A line that is only a page number: "12", "- 12 -", "[iv]", "12 / 40", "Page 12", "Page 12 of 40",
// "p. 3", "第 12 页", "第十二页", "第 3 页 / 共 40 页", "共 40 页 第 3 页".
bool is_page_number_line(std::string_view line, bool paged) {
  if (line.size() > 64) return false;  // the longest shape ("第 9999 页 / 共 9999 页") is far shorter
  std::vector<char32_t> cps = code_points(line);
  size_t b = 0;
  size_t e = cps.size();
  while (b < e && is_decoration(cps[b])) ++b;
  while (e > b && is_decoration(cps[e - 1])) --e;
  if (b == e) return false;
  // Tokens: N number, H Chinese numeral, P "page", O "of", S "/", D 第, Y 页, G 共.
  std::string seq;
  for (size_t i = b; i < e;) {
    const char32_t cp = cps[i];
    if (cp == ' ' || cp == ',' || cp == 0xFF0C || cp == 0x3001 || cp == '.' || cp == ':' || cp == 0xFF1A) {
      ++i;
    } else if (is_ascii_digit(cp)) {
      size_t j = i;
      while (j < e && is_ascii_digit(cps[j])) ++j;
      if (j - i > kMaxPageDigits) return false;
      seq += 'N', i = j;
    } else if (is_chinese_numeral(cp)) {
      while (i < e && is_chinese_numeral(cps[i])) ++i;
      seq += 'H';
    } else if (is_ascii_alpha(cp)) {
      std::u32string word;
      size_t j = i;
      while (j < e && is_ascii_alpha(cps[j])) word.push_back(ascii_lower(cps[j++]));
      if (word == U"page" || word == U"p" || word == U"pg") {
        seq += 'P';
      } else if (word == U"of") {
        seq += 'O';
      } else if (paged && is_small_roman(word)) {
        seq += 'N';
      } else {
        return false;
      }
      i = j;
    } else if (cp == '/' || cp == 0xFF0F) {
      seq += 'S', ++i;
    } else if (cp == U'第') {
      seq += 'D', ++i;
    } else if (cp == U'页' || cp == U'頁') {
      seq += 'Y', ++i;
    } else if (cp == U'共') {
      seq += 'G', ++i;
    } else {
      return false;
    }
  }
  // Chinese numerals only count inside 第…页 ("一" alone may be a list marker or a word).
  if (seq.find('H') != std::string::npos) {
    if (seq.find('Y') == std::string::npos) return false;
    std::replace(seq.begin(), seq.end(), 'H', 'N');
  }
  static const std::set<std::string> kShapes = {
      "N",      "NSN",     "NON",    "PN",      "PNON",   "PNSN", "DNY",
      "DNYGNY", "DNYSGNY", "GNYDNY", "GNYSDNY", "DNYSNY", "NSNY", "DNYSN",
  };
  return kShapes.count(seq) > 0;
}

bool is_leader(char32_t cp) {
  return cp == '.' || cp == 0x00B7 || cp == 0x2026 || cp == 0x2024 || cp == 0x2025 || cp == 0xFF0E ||
         cp == 0x30FB || cp == 0x22EF || cp == '_';
}
size_t leader_units(char32_t cp) {
  return cp == 0x2026 || cp == 0x22EF ? 3 : cp == 0x2025 ? 2 : 1;
}

// A table-of-contents entry: "Introduction ........ 3", "1.2 Scope . . . . . 14", "第一章 概述……… 1":
// a run of at least four leader dots and then only a page number.
bool is_toc_line(std::string_view line, bool paged) {
  const char last = line.empty() ? '\0' : line.back();  // lines are trimmed: cheap rejection first
  if (!((last >= '0' && last <= '9') || (paged && last >= 'a' && last <= 'z'))) return false;
  std::vector<char32_t> cps = code_points(line);
  size_t e = cps.size();
  while (e > 0 && cps[e - 1] == ' ') --e;
  size_t n = e;
  while (n > 0 && is_ascii_digit(cps[n - 1])) --n;
  if (n == e) {  // no digits: a roman page number?
    while (n > 0 && cps[n - 1] >= 'a' && cps[n - 1] <= 'z') --n;
    if (n == e || !paged || !is_small_roman(std::u32string_view(cps.data() + n, e - n))) return false;
  } else if (e - n > kMaxPageDigits) {
    return false;
  }
  size_t units = 0;
  size_t k = n;
  while (k > 0 && (is_leader(cps[k - 1]) || cps[k - 1] == ' ')) {
    if (is_leader(cps[k - 1])) units += leader_units(cps[k - 1]);
    --k;
  }
  return units >= 4;
}

bool drops_page_lines(BlockKind k) {
  return k == BlockKind::kParagraph || k == BlockKind::kListItem || k == BlockKind::kHeading;
}

// Quotes, ellipsis, em dash and middle dot are shared by Chinese and Western text: they count as
// wide next to a CJK character ("“双十一”" + "期间" joins without a space).
bool is_shared_punct(char32_t cp) {
  return cp == 0x2018 || cp == 0x2019 || cp == 0x201C || cp == 0x201D || cp == 0x2026 || cp == 0x2014 ||
         cp == 0x00B7;
}

// Wide characters and full-width punctuation carry their own spacing: no space when joining.
bool joins_without_space(char32_t left, char32_t right) {
  if (utf8::is_cjk_punct(left) || utf8::is_cjk_punct(right)) return true;
  const bool wide_left = utf8::is_cjk(left) || is_shared_punct(left);
  const bool wide_right = utf8::is_cjk(right) || is_shared_punct(right);
  return wide_left && wide_right && (utf8::is_cjk(left) || utf8::is_cjk(right));
}

std::string ascii_lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(ascii_lower(static_cast<unsigned char>(c)));
  return out;
}

// Latin letters at the end (trailing) or start (leading) of s.
std::string_view latin_tail(std::string_view s) {
  size_t b = s.size();
  while (b > 0) {
    const size_t p = utf8::floor_boundary(s, b - 1);
    size_t i = p;
    if (!utf8::is_latin_letter(utf8::decode(s, i))) break;
    b = p;
  }
  return s.substr(b);
}
std::string_view latin_head(std::string_view s) {
  size_t e = 0;
  while (e < s.size()) {
    size_t i = e;
    if (!utf8::is_latin_letter(utf8::decode(s, i))) break;
    e = i;
  }
  return s.substr(0, e);
}

// Hyphenated compounds written inside a line somewhere in the document ("well-known"): when one of
// them is broken at its hyphen across a line, the hyphen is real and stays.
void collect_compounds(std::string_view line, std::set<std::string>& out) {
  for (size_t h = line.find('-'); h != std::string_view::npos; h = line.find('-', h + 1)) {
    const std::string_view left = latin_tail(line.substr(0, h));
    const std::string_view right = latin_head(line.substr(h + 1));
    if (!left.empty() && !right.empty()) {
      out.insert(ascii_lower_copy(std::string(left) + "-" + std::string(right)));
    }
  }
}

// Appends `next` to `out` as the continuation of the same paragraph.
void join_line(std::string& out, const Line& prev, const std::string& next,
               const std::set<std::string>& compounds) {
  if (out.empty()) {
    out = next;
    return;
  }
  if (prev.soft_hyphen) {
    out += next;
    return;
  }
  const char32_t first = [&] {
    size_t i = 0;
    return utf8::decode(next, i);
  }();
  if (out.size() >= 2 && out.back() == '-') {
    const std::string_view left = latin_tail(std::string_view(out).substr(0, out.size() - 1));
    if (!left.empty()) {
      const std::string_view right = latin_head(next);
      const bool lower_next =
          (first >= 'a' && first <= 'z') || (first >= 0xDF && first <= 0xFF && first != 0xF7);
      const std::string compound = ascii_lower_copy(std::string(left) + "-" + std::string(right));
      if (lower_next && !compounds.count(compound)) {
        out.pop_back();  // "inter-" + "national": the hyphen only marked the line break
        out += next;
        return;
      }
      if (!right.empty() || is_ascii_digit(first)) {
        out += next;  // "well-" + "known", "COVID-" + "19": a real hyphen, no space
        return;
      }
    }
  }
  if (!joins_without_space(utf8::last_code_point(out), first)) out.push_back(' ');
  out += next;
}

// Cleans one prose block's text; returns the new text (empty: drop the block).
std::string clean_prose(const Block& block, const std::set<std::string>& compounds) {
  std::vector<Line> lines = split_lines(block.text);
  const bool paged = block.page > 0;
  if (drops_page_lines(block.kind)) {
    for (Line& l : lines) {
      if (!l.text.empty() && (is_page_number_line(l.text, paged) || is_toc_line(l.text, paged))) {
        l.removed = true;
      }
    }
  }
  // Headings and table rows are one line; elsewhere a blank line keeps a paragraph break ("\n").
  const bool single_line = block.kind == BlockKind::kHeading || block.kind == BlockKind::kTableRow;
  std::string out;
  std::string para;
  const Line* prev = nullptr;
  auto flush = [&] {
    if (para.empty()) return;
    if (!out.empty()) out += single_line ? " " : "\n";
    out += para;
    para.clear();
  };
  for (const Line& l : lines) {
    if (l.removed) continue;
    if (l.text.empty()) {
      flush();
      prev = nullptr;
      continue;
    }
    if (prev == nullptr) {
      para = l.text;
    } else {
      join_line(para, *prev, l.text, compounds);
    }
    prev = &l;
  }
  flush();
  return out;
}

std::string clean_code(std::string_view text) {
  // Preformatted: only line endings and encoding errors are fixed; white space is meaningful.
  std::string s = utf8::sanitize(text);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  // A block of nothing but white space is empty.
  const bool blank =
      std::all_of(out.begin(), out.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n'; });
  return blank ? std::string() : out;
}

// Key for comparing headers across pages: ASCII case folded, digit runs collapsed to '#', so
// "Page 3 of 40" and "Page 4 of 40" compare equal.
std::string header_key(std::string_view s) {
  std::string key;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      if (key.empty() || key.back() != '#') key.push_back('#');
    } else {
      key.push_back(static_cast<char>(ascii_lower(static_cast<unsigned char>(c))));
    }
  }
  return key;
}

size_t count_code_points(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Marks running headers and footers: short prose blocks (paragraphs, headings, list items) among the first or
// last kEdgeBlocks of their page whose key appears at a page edge on at least half of the pages (and on two
// or more).
std::vector<bool> find_running_blocks(const std::vector<Block>& blocks) {
  std::vector<bool> drop(blocks.size(), false);
  std::map<int, std::vector<size_t>> pages;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].page > 0) pages[blocks[i].page].push_back(i);
  }
  if (pages.size() < 2) return drop;
  std::map<std::string, std::set<int>> key_pages;
  std::vector<std::string> keys(blocks.size());
  std::vector<bool> at_edge(blocks.size(), false);
  for (const auto& [page, idx] : pages) {
    for (size_t k = 0; k < idx.size(); ++k) {
      const Block& b = blocks[idx[k]];
      if (k >= kEdgeBlocks && k + kEdgeBlocks < idx.size()) continue;
      // Table rows, records and code are data even when they repeat ("Total | 100" on every page).
      if (b.kind == BlockKind::kCode || b.kind == BlockKind::kTableRow || b.kind == BlockKind::kRecord)
        continue;
      if (count_code_points(b.text) > kMaxHeaderCodePoints) continue;
      at_edge[idx[k]] = true;
      keys[idx[k]] = header_key(b.text);
      key_pages[keys[idx[k]]].insert(page);
    }
  }
  const size_t need = std::max<size_t>(2, (pages.size() + 1) / 2);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (at_edge[i] && key_pages[keys[i]].size() >= need) drop[i] = true;
  }
  return drop;
}

}  // namespace

CleanStats clean_document(parse::ParsedDocument& doc, const CleanOptions& opts) {
  CleanStats stats;
  std::set<std::string> compounds;
  for (const Block& b : doc.blocks) {
    if (b.kind == BlockKind::kCode) continue;
    size_t start = 0;
    const std::string_view t = b.text;
    while (start <= t.size()) {
      size_t end = t.find('\n', start);
      if (end == std::string_view::npos) end = t.size();
      collect_compounds(t.substr(start, end - start), compounds);
      start = end + 1;
    }
  }

  std::vector<Block> kept;
  kept.reserve(doc.blocks.size());
  for (Block& b : doc.blocks) {
    b.text = b.kind == BlockKind::kCode ? clean_code(b.text) : clean_prose(b, compounds);
    if (b.kind == BlockKind::kHeading) {
      // Documentation generators (Sphinx, many wikis) end each heading with a "¶" permalink.
      static constexpr std::string_view kPilcrow = "\u00b6";
      while (b.text.ends_with(kPilcrow) || b.text.ends_with(' ')) {
        b.text.resize(b.text.size() - (b.text.back() == ' ' ? 1 : kPilcrow.size()));
      }
    }
    if (b.text.empty()) {
      ++stats.blocks_dropped;
      continue;
    }
    kept.push_back(std::move(b));
  }

  const std::vector<bool> running = find_running_blocks(kept);
  doc.blocks.clear();
  for (size_t i = 0; i < kept.size(); ++i) {
    if (running[i]) {
      ++stats.blocks_dropped;
      continue;
    }
    doc.blocks.push_back(std::move(kept[i]));
  }

  // Masking comes last so headers are compared on their original text.
  if (opts.mask_pii) {
    for (Block& b : doc.blocks) stats.pii_masked += mask_pii(b.text);
  }
  return stats;
}

}  // namespace sluice::text
