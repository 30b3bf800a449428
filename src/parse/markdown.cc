// The Markdown parser: a line-based reading of CommonMark + GFM tables that is good enough for
// ingestion — ATX and setext headings, paragraphs, list items, block quotes, fenced and indented
// code, tables — with inline markup (emphasis, code spans, links, images, HTML tags) reduced to
// its text. Not a renderer: nesting of lists is flattened and link reference definitions dropped.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

using Lines = std::vector<std::string_view>;

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t") == std::string_view::npos;
}

// Leading indentation in columns (a tab advances to the next multiple of 4).
size_t indent_of(std::string_view s) {
  size_t col = 0;
  for (char c : s) {
    if (c == ' ') {
      ++col;
    } else if (c == '\t') {
      col = (col / 4 + 1) * 4;
    } else {
      break;
    }
  }
  return col;
}

// s without up to n columns of leading indentation.
std::string_view strip_indent(std::string_view s, size_t n) {
  size_t col = 0, i = 0;
  while (i < s.size() && col < n && (s[i] == ' ' || s[i] == '\t')) {
    col = s[i] == '\t' ? (col / 4 + 1) * 4 : col + 1;
    ++i;
  }
  return s.substr(i);
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// --- inline markup --------------------------------------------------------------------------

// The code point starting at s[i] (0 at either end), and the one ending just before s[i].
uint32_t cp_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len && i + k < s.size(); ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

uint32_t cp_before(std::string_view s, size_t i) {
  if (i == 0) return 0;
  size_t j = i - 1;
  while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
  return cp_at(s, j);
}

bool is_ws_cp(uint32_t cp) {
  return cp == 0 || cp == ' ' || cp == '\t' || cp == '\n' || cp == 0x3000 || cp == 0xA0;
}

bool is_punct_cp(uint32_t cp) {
  if (cp < 0x80) return std::ispunct(static_cast<int>(cp)) != 0;
  return (cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3001 && cp <= 0x303F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
         (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);
}

// Characters after which a soft line break is not a space (Chinese and Japanese text has none).
bool is_wide_cp(uint32_t cp) {
  return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFF00 && cp <= 0xFFEF) ||
         (cp >= 0x20000 && cp <= 0x3FFFF);
}

// Joins soft-wrapped lines: a space between them, none between two CJK characters.
void join_line(std::string& out, std::string_view line) {
  if (line.empty()) return;
  if (!out.empty() && out.back() != '\n') {
    if (!(is_wide_cp(cp_before(out, out.size())) && is_wide_cp(cp_at(line, 0)))) out += ' ';
  }
  out.append(line);
}

std::string decode_entity(std::string_view s, size_t* consumed) {
  static constexpr std::pair<std::string_view, std::string_view> kNamed[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&nbsp;", " "}};
  for (auto [name, value] : kNamed) {
    if (s.substr(0, name.size()) == name) {
      *consumed = name.size();
      return std::string(value);
    }
  }
  if (s.size() > 3 && s[1] == '#') {
    bool hex = s[2] == 'x' || s[2] == 'X';
    size_t i = hex ? 3 : 2, start = i;
    uint32_t cp = 0;
    while (i < s.size() && i - start < 7 &&
           (hex ? std::isxdigit(static_cast<unsigned char>(s[i]))
                : std::isdigit(static_cast<unsigned char>(s[i])))) {
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(s[i]))
                                                            ? s[i] - '0'
                                                            : (std::tolower(s[i]) - 'a' + 10));
      ++i;
    }
    if (i > start && i < s.size() && s[i] == ';' && cp > 0 && cp <= 0x10FFFF &&
        !(cp >= 0xD800 && cp <= 0xDFFF)) {
      *consumed = i + 1;
      std::string out;
      utf8::append(out, cp);
      return out;
    }
  }
  *consumed = 0;
  return {};
}

// Index just past the bracket that closes the one at s[open] (nested pairs and escapes skipped),
// or npos.
size_t match_bracket(std::string_view s, size_t open, char o, char c) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == o) {
      ++depth;
    } else if (s[i] == c && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::string strip_inline(std::string_view s, int depth = 0);

// A piece of inline text: literal, or a run of emphasis delimiters still to be matched.
struct Piece {
  std::string text;
  char delim = 0;
  size_t count = 0;
  bool can_open = false, can_close = false;
};

std::string strip_inline(std::string_view s, int depth) {
  std::vector<Piece> pieces;
  auto literal = [&](std::string_view t) {
    if (pieces.empty() || pieces.back().delim != 0) pieces.emplace_back();
    pieces.back().text.append(t);
  };
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && std::ispunct(static_cast<unsigned char>(s[i + 1]))) {
      literal(s.substr(i + 1, 1));
      i += 2;
    } else if (c == '`') {
      size_t n = 0;
      while (i + n < s.size() && s[i + n] == '`') ++n;
      // The closing run has exactly n backticks.
      size_t j = i + n, close = std::string_view::npos;
      while ((j = s.find('`', j)) != std::string_view::npos) {
        size_t m = 0;
        while (j + m < s.size() && s[j + m] == '`') ++m;
        if (m == n) {
          close = j;
          break;
        }
        j += m;
      }
      if (close == std::string_view::npos) {
        literal(s.substr(i, n));
        i += n;
      } else {
        std::string_view code = s.substr(i + n, close - i - n);
        if (code.size() >= 2 && code.front() == ' ' && code.back() == ' ' && !is_blank(code)) {
          code = code.substr(1, code.size() - 2);
        }
        literal(code);
        i = close + n;
      }
    } else if ((c == '[' || (c == '!' && i + 1 < s.size() && s[i + 1] == '[')) && depth < 8) {
      size_t open = c == '!' ? i + 1 : i;
      size_t close = match_bracket(s, open, '[', ']');
      std::string_view inner =
          close == std::string_view::npos ? std::string_view{} : s.substr(open + 1, close - open - 2);
      if (close != std::string_view::npos && close < s.size() && s[close] == '(') {
        size_t end = match_bracket(s, close, '(', ')');
        if (end != std::string_view::npos) {
          literal(strip_inline(inner, depth + 1));  // [text](url) and ![alt](src): the text
          i = end;
          continue;
        }
      }
      if (close != std::string_view::npos && close < s.size() && s[close] == '[') {
        size_t end = match_bracket(s, close, '[', ']');
        if (end != std::string_view::npos) {
          literal(strip_inline(inner, depth + 1));  // [text][ref]
          i = end;
          continue;
        }
      }
      literal(s.substr(i, 1));
      ++i;
    } else if (c == '<') {
      size_t end = s.find('>', i);
      std::string_view tag =
          end == std::string_view::npos ? std::string_view{} : s.substr(i + 1, end - i - 1);
      bool autolink =
          !tag.empty() && tag.find(' ') == std::string_view::npos &&
          (tag.find("://") != std::string_view::npos || tag.find('@') != std::string_view::npos) &&
          std::isalpha(static_cast<unsigned char>(tag[0]));
      bool html = !tag.empty() &&
                  (std::isalpha(static_cast<unsigned char>(tag[0])) ||
                   (tag[0] == '/' && tag.size() > 1 && std::isalpha(static_cast<unsigned char>(tag[1]))) ||
                   tag.substr(0, 3) == "!--");
      if (autolink) {
        std::string_view url = tag.substr(0, 7) == "mailto:" ? tag.substr(7) : tag;
        literal(url);
        i = end + 1;
      } else if (html) {
        if (tag.substr(0, 3) == "!--") {
          size_t cend = s.find("-->", i + 4);
          i = cend == std::string_view::npos ? s.size() : cend + 3;
        } else {
          i = end + 1;  // an inline HTML tag: its text stays, the tag goes
        }
      } else {
        literal("<");
        ++i;
      }
    } else if (c == '&') {
      size_t used = 0;
      std::string ent = decode_entity(s.substr(i), &used);
      if (used > 0) {
        literal(ent);
        i += used;
      } else {
        literal("&");
        ++i;
      }
    } else if (c == '*' || c == '_' || c == '~') {
      size_t n = 0;
      while (i + n < s.size() && s[i + n] == c) ++n;
      uint32_t before = cp_before(s, i), after = cp_at(s, i + n);
      bool left = !is_ws_cp(after) && (!is_punct_cp(after) || is_ws_cp(before) || is_punct_cp(before));
      bool right = !is_ws_cp(before) && (!is_punct_cp(before) || is_ws_cp(after) || is_punct_cp(after));
      Piece p;
      p.delim = c;
      p.count = n;
      if (c == '_') {
        // Intraword underscores (snake_case) are not emphasis.
        p.can_open = left && (!right || is_punct_cp(before));
        p.can_close = right && (!left || is_punct_cp(after));
      } else {
        p.can_open = left;
        p.can_close = right;
      }
      if (c == '~' && n > 2) p.can_open = p.can_close = false;
      pieces.push_back(std::move(p));
      i += n;
    } else {
      size_t j = i + 1;
      while (j < s.size() && std::string_view("\\`[!<&*_~").find(s[j]) == std::string_view::npos) ++j;
      literal(s.substr(i, j - i));
      i = j;
    }
  }

  // Pair closers with the nearest opener of the same character; matched delimiters vanish.
  std::vector<size_t> openers;
  for (size_t k = 0; k < pieces.size(); ++k) {
    Piece& p = pieces[k];
    if (p.delim == 0) continue;
    while (p.can_close && p.count > 0) {
      auto it = std::find_if(openers.rbegin(), openers.rend(),
                             [&](size_t o) { return pieces[o].delim == p.delim; });
      if (it == openers.rend()) break;
      size_t o = *it;
      size_t used = std::min(pieces[o].count, p.count);
      pieces[o].count -= used;
      p.count -= used;
      openers.erase(std::prev(it.base()) + 1, openers.end());  // openers in between stay literal
      if (pieces[o].count == 0) openers.pop_back();
    }
    if (p.can_open && p.count > 0) openers.push_back(k);
  }
  std::string out;
  for (const Piece& p : pieces) {
    if (p.delim == 0) {
      out += p.text;
    } else {
      out.append(p.count, p.delim);
    }
  }
  return out;
}

// --- blocks ---------------------------------------------------------------------------------

// "# Title #" → level and text.
bool atx_heading(std::string_view line, int* level, std::string_view* text) {
  if (indent_of(line) > 3) return false;
  std::string_view l = trim(line);
  size_t h = 0;
  while (h < l.size() && l[h] == '#') ++h;
  if (h < 1 || h > 6 || (h < l.size() && l[h] != ' ' && l[h] != '\t')) return false;
  std::string_view t = trim(l.substr(h));
  // A closing run of '#' preceded by a space is not part of the text.
  size_t e = t.size();
  while (e > 0 && t[e - 1] == '#') --e;
  if (e == 0) {
    t = {};
  } else if (e < t.size() && (t[e - 1] == ' ' || t[e - 1] == '\t')) {
    t = trim(t.substr(0, e));
  }
  *level = static_cast<int>(h);
  *text = t;
  return true;
}

bool fence_open(std::string_view line, char* ch, size_t* len) {
  if (indent_of(line) > 3) return false;
  std::string_view l = trim(line);
  if (l.empty() || (l[0] != '`' && l[0] != '~')) return false;
  size_t n = 0;
  while (n < l.size() && l[n] == l[0]) ++n;
  if (n < 3) return false;
  if (l[0] == '`' && l.substr(n).find('`') != std::string_view::npos) return false;
  *ch = l[0];
  *len = n;
  return true;
}

bool fence_close(std::string_view line, char ch, size_t len) {
  if (indent_of(line) > 3) return false;
  std::string_view l = trim(line);
  size_t n = 0;
  while (n < l.size() && l[n] == ch) ++n;
  return n >= len && n == l.size();
}

bool thematic_break(std::string_view line) {
  if (indent_of(line) > 3) return false;
  std::string_view l = trim(line);
  if (l.empty() || (l[0] != '-' && l[0] != '*' && l[0] != '_')) return false;
  size_t n = 0;
  for (char c : l) {
    if (c == l[0]) {
      ++n;
    } else if (c != ' ' && c != '\t') {
      return false;
    }
  }
  return n >= 3;
}

// "===" or "---" under a paragraph: its level (1 or 2), else 0.
int setext_level(std::string_view line) {
  if (indent_of(line) > 3) return 0;
  std::string_view l = trim(line);
  if (l.empty() || (l[0] != '=' && l[0] != '-')) return 0;
  if (l.find_first_not_of(l[0]) != std::string_view::npos) return 0;
  return l[0] == '=' ? 1 : 2;
}

// A list item's marker ("- ", "* ", "+ ", "1. ", "1) "): the item's text after it.
bool list_marker(std::string_view line, bool interrupting, std::string_view* content) {
  std::string_view l = strip_indent(line, 64);
  if (l.empty()) return false;
  size_t m = 0;
  if (l[0] == '-' || l[0] == '*' || l[0] == '+') {
    m = 1;
  } else {
    while (m < l.size() && m < 9 && std::isdigit(static_cast<unsigned char>(l[m]))) ++m;
    if (m == 0 || m >= l.size() || (l[m] != '.' && l[m] != ')')) return false;
    // Only "1." may interrupt a paragraph: "2024. was a year" inside a paragraph is text.
    if (interrupting && l.substr(0, m) != "1") return false;
    ++m;
  }
  if (m < l.size() && l[m] != ' ' && l[m] != '\t') return false;
  if (m == l.size() && interrupting) return false;
  *content = trim(l.substr(m));
  return true;
}

bool table_delimiter_row(std::string_view line) {
  std::string_view l = trim(line);
  if (l.empty() || l.find('-') == std::string_view::npos) return false;
  bool pipe = l.find('|') != std::string_view::npos;
  for (char c : l) {
    if (c != '|' && c != '-' && c != ':' && c != ' ' && c != '\t') return false;
  }
  return pipe || l.find(':') != std::string_view::npos;
}

// The cells of a table row, outer pipes dropped; "\|" is a literal pipe.
std::vector<std::string> table_cells(std::string_view line) {
  std::string_view l = trim(line);
  if (!l.empty() && l.front() == '|') l.remove_prefix(1);
  if (!l.empty() && l.back() == '|' && (l.size() < 2 || l[l.size() - 2] != '\\')) l.remove_suffix(1);
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i] == '\\' && i + 1 < l.size() && l[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (l[i] == '|') {
      cells.push_back(std::move(cell));
      cell.clear();
    } else {
      cell += l[i];
    }
  }
  cells.push_back(std::move(cell));
  for (std::string& c : cells) c = strip_inline(trim(c));
  return cells;
}

bool reference_definition(std::string_view line) {
  if (indent_of(line) > 3) return false;
  std::string_view l = trim(line);
  if (l.empty() || l[0] != '[') return false;
  size_t close = l.find("]:");
  return close != std::string_view::npos && close > 1 && !trim(l.substr(close + 2)).empty();
}

class BlockParser {
 public:
  explicit BlockParser(ParsedDocument& doc) : doc_(doc) {}

  void parse(const Lines& lines, int quote_depth) {
    size_t i = 0;
    bool prev_blank = true;
    while (i < lines.size()) {
      std::string_view line = lines[i];
      char fch = 0;
      size_t flen = 0;
      int level = 0;
      std::string_view text;
      if (is_blank(line)) {
        flush_paragraph();
        flush_item();
        prev_blank = true;
        ++i;
        continue;
      }
      const bool indented_code = indent_of(line) >= 4 && para_.empty() && item_.empty() && !in_list_;
      if (fence_open(line, &fch, &flen) || indented_code) {
        flush_all();
        std::string code;
        if (indented_code) {
          // Runs to the first non-blank line indented less than 4 (trailing blanks dropped later).
          for (; i < lines.size() && (is_blank(lines[i]) || indent_of(lines[i]) >= 4); ++i) {
            code.append(strip_indent(lines[i], 4));
            code += '\n';
          }
        } else {
          size_t fence_indent = indent_of(line);
          for (++i; i < lines.size() && !fence_close(lines[i], fch, flen); ++i) {
            code.append(strip_indent(lines[i], fence_indent));
            code += '\n';
          }
          ++i;  // the closing fence (or past the end when the fence is never closed)
        }
        add_block(doc_, BlockKind::kCode, std::move(code));
        prev_blank = false;
        continue;
      }
      if (atx_heading(line, &level, &text)) {
        flush_all();
        heading(level, text);
        prev_blank = false;
        ++i;
        continue;
      }
      if (int sl = setext_level(line); sl != 0 && !para_.empty()) {
        std::string t = std::move(para_);
        para_.clear();
        heading(sl, t);
        ++i;
        continue;
      }
      if (thematic_break(line)) {
        flush_all();
        prev_blank = true;
        ++i;
        continue;
      }
      if (trim(line).substr(0, 1) == ">" && indent_of(line) <= 3) {
        flush_all();
        Lines quoted;
        for (; i < lines.size() && trim(lines[i]).substr(0, 1) == ">"; ++i) {
          std::string_view q = trim(lines[i]).substr(1);
          if (!q.empty() && q[0] == ' ') q.remove_prefix(1);
          quoted.push_back(q);
        }
        if (quote_depth < 16) parse(quoted, quote_depth + 1);
        prev_blank = true;
        continue;
      }
      if (trim(line).substr(0, 4) == "<!--" && para_.empty()) {
        flush_all();
        for (; i < lines.size(); ++i) {
          if (lines[i].find("-->") != std::string_view::npos) break;
        }
        ++i;
        prev_blank = true;
        continue;
      }
      if (line.find('|') != std::string_view::npos && i + 1 < lines.size() &&
          table_delimiter_row(lines[i + 1]) && table_cells(line).size() == table_cells(lines[i + 1]).size()) {
        flush_all();
        table_row(line);
        for (i += 2; i < lines.size() && !is_blank(lines[i]) && lines[i].find('|') != std::string_view::npos;
             ++i) {
          table_row(lines[i]);
        }
        prev_blank = true;
        continue;
      }
      if (list_marker(line, !para_.empty(), &text)) {
        flush_all();
        in_list_ = true;
        item_.assign(text);
        prev_blank = false;
        ++i;
        continue;
      }
      if (para_.empty() && item_.empty() && reference_definition(line)) {
        ++i;
        continue;
      }
      // Text: continues the list item it follows, or a paragraph.
      if (in_list_ && indent_of(line) == 0 && prev_blank) in_list_ = false;
      std::string& target = !item_.empty() && !prev_blank ? item_ : para_;
      append_text_line(target, line);
      prev_blank = false;
      ++i;
    }
    flush_all();
  }

 private:
  // A line ending in two spaces or a backslash is a hard break; others are soft.
  static void append_text_line(std::string& target, std::string_view line) {
    bool hard = line.size() >= 2 && line.substr(line.size() - 2) == "  ";
    std::string_view t = trim(line);
    if (!t.empty() && t.back() == '\\') {
      hard = true;
      t.remove_suffix(1);
    }
    join_line(target, t);
    if (hard) target += '\n';
  }

  void heading(int level, std::string_view raw) {
    std::string t = strip_inline(trim(raw));
    if (doc_.title.empty() && !trim(t).empty()) doc_.title = std::string(trim(t));
    add_block(doc_, BlockKind::kHeading, std::move(t), level);
  }

  void table_row(std::string_view line) {
    std::string row;
    for (const std::string& c : table_cells(line)) {
      if (!row.empty()) row += " | ";
      row += c;
    }
    // A row of empty cells says nothing.
    if (row.find_first_not_of(" |") != std::string::npos)
      add_block(doc_, BlockKind::kTableRow, std::move(row));
  }

  void flush_paragraph() {
    if (!para_.empty()) add_block(doc_, BlockKind::kParagraph, strip_inline(para_));
    para_.clear();
  }
  void flush_item() {
    if (!item_.empty()) add_block(doc_, BlockKind::kListItem, strip_inline(item_));
    item_.clear();
  }
  void flush_all() {
    flush_paragraph();
    flush_item();
    in_list_ = false;
  }

  ParsedDocument& doc_;
  std::string para_;
  std::string item_;
  bool in_list_ = false;
};

// A YAML front matter block ("---" ... "---") at the top: skipped, its title kept.
size_t front_matter(const Lines& lines, std::string* title) {
  if (lines.empty() || trim(lines[0]) != "---") return 0;
  for (size_t i = 1; i < lines.size() && i < 200; ++i) {
    std::string_view l = trim(lines[i]);
    if (l == "---" || l == "...") return i + 1;
    if (l.substr(0, 6) == "title:") {
      std::string_view t = trim(l.substr(6));
      if (t.size() >= 2 && (t.front() == '"' || t.front() == '\'') && t.back() == t.front())
        t = t.substr(1, t.size() - 2);
      *title = std::string(t);
    }
  }
  title->clear();
  return 0;  // no closing line: not front matter
}

class MarkdownParser final : public Parser {
 public:
  std::string_view format() const override { return "markdown"; }

  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, read_file_limited(path, opts));
    ParsedDocument doc;
    doc.format = "markdown";
    auto text = decode_text(bytes, &doc.encoding);
    if (!text.is_ok()) return text.status().with_context("parse '" + path + "'");
    const std::string body = normalize_newlines(text.value());
    Lines lines;
    for (size_t pos = 0; pos <= body.size();) {
      size_t nl = body.find('\n', pos);
      if (nl == std::string::npos) nl = body.size();
      lines.emplace_back(body.data() + pos, nl - pos);
      pos = nl + 1;
    }
    std::string fm_title;
    size_t skip = front_matter(lines, &fm_title);
    lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(skip));
    BlockParser(doc).parse(lines, 0);
    if (!fm_title.empty()) doc.title = fm_title;
    if (doc.blocks.empty()) doc.warnings.push_back("no text: the file holds only whitespace or markup");
    return doc;
  }
};

}  // namespace

Parser* markdown_parser() {
  static MarkdownParser parser;
  return &parser;
}

}  // namespace sluice::parse
