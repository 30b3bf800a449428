// Token estimate and the chunker: sections by heading path, blocks packed up to a token budget,
// oversized blocks cut at sentences, then words (any code point for CJK), then code points, with an
// overlap of whole sentences or words between consecutive chunks of a section.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/text.h"
#include "text/utf8.h"

namespace sluice::text {
namespace {

using parse::Block;
using parse::BlockKind;

// A run of letters with no space in it (base64, a hash, a long URL) is one "word" to approx_tokens,
// but a real tokenizer spends several tokens on it. For sizing, the chunker charges at least one
// token per this many non-space code points, so such runs are still cut into pieces.
constexpr size_t kMaxCodePointsPerToken = 8;

enum class CharClass { kSpace, kCjk, kWord, kSymbol, kExtend, kIgnore };

CharClass classify(char32_t cp) {
  if (utf8::is_space(cp)) return CharClass::kSpace;
  if (utf8::is_zero_width(cp)) return CharClass::kIgnore;
  if (utf8::is_extend(cp)) return CharClass::kExtend;
  if (utf8::is_cjk(cp)) return CharClass::kCjk;
  if (utf8::is_word_char(cp)) return CharClass::kWord;
  return CharClass::kSymbol;
}

// Counts approx_tokens incrementally, plus the length-based floor the chunker uses.
class TokenCounter {
 public:
  void feed(char32_t cp) {
    switch (classify(cp)) {
      case CharClass::kSpace: run_ = Run::kNone; return;
      case CharClass::kIgnore: return;
      case CharClass::kExtend: ++code_points_; return;  // belongs to the previous character
      case CharClass::kCjk:
        ++tokens_, ++code_points_;
        run_ = Run::kNone;
        return;
      case CharClass::kWord: start(Run::kWord); return;
      case CharClass::kSymbol: start(Run::kSymbol); return;
    }
  }
  size_t tokens() const { return tokens_; }
  size_t cost() const {
    return std::max(tokens_, (code_points_ + kMaxCodePointsPerToken - 1) / kMaxCodePointsPerToken);
  }

 private:
  enum class Run { kNone, kWord, kSymbol };
  void start(Run r) {
    ++code_points_;
    if (run_ != r) ++tokens_;
    run_ = r;
  }
  size_t tokens_ = 0;
  size_t code_points_ = 0;
  Run run_ = Run::kNone;
};

size_t cost_of(std::string_view s) {
  TokenCounter c;
  for (size_t i = 0; i < s.size();) c.feed(utf8::decode(s, i));
  return c.cost();
}

bool is_sentence_end_cjk(char32_t cp) {
  return cp == 0x3002 /* 。 */ || cp == 0xFF01 /* ！ */ || cp == 0xFF1F /* ？ */ || cp == 0xFF1B /* ； */ ||
         cp == 0x2026 /* … */ || cp == 0xFF61 /* ｡ */ || cp == 0x203C || cp == 0x2047 || cp == 0x2048 ||
         cp == 0x2049;
}
bool is_sentence_end_ascii(char32_t cp) {
  return cp == '.' || cp == '!' || cp == '?';
}
bool is_closer(char32_t cp) {
  switch (cp) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case 0x2019:
    case 0x201D:
    case 0x00BB:
    case 0x203A:  // ’ ” » ›
    case 0x3009:
    case 0x300B:
    case 0x300D:
    case 0x300F:  // 〉 》 」 』
    case 0x3011:
    case 0x3015:
    case 0x3017:
    case 0x3019:
    case 0x301B:
    case 0x301E:
    case 0x301F:
    case 0xFF09:
    case 0xFF3D:
    case 0xFF5D:
    case 0xFF02:
    case 0xFF07:
    case 0xFF63:  // ） ］ ｝ ＂ ＇ ｣
    case 0xFE42:
    case 0xFE44: return true;
    default: return false;
  }
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (i < s.size()) {
    size_t j = i;
    if (!utf8::is_space(utf8::decode(s, j))) break;
    i = j;
  }
  return i;
}

// Sentence boundaries in [b, e): each piece runs from one boundary to the next and carries its
// trailing white space. Code is cut only after newlines, so indentation stays with its line.
std::vector<size_t> sentence_cuts(std::string_view s, bool is_code) {
  std::vector<size_t> cuts;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    const char32_t cp = utf8::decode(s, j);
    if (cp == '\n') {
      const size_t cut = is_code ? j : skip_spaces(s, j);
      if (cut < s.size()) cuts.push_back(cut);
      i = cut;
      continue;
    }
    if (!is_code && (is_sentence_end_cjk(cp) || is_sentence_end_ascii(cp))) {
      bool cjk = is_sentence_end_cjk(cp);
      // "?!", "……", "。」" and '."' end together.
      size_t k = j;
      while (k < s.size()) {
        size_t n = k;
        const char32_t next = utf8::decode(s, n);
        if (is_sentence_end_cjk(next) || is_sentence_end_ascii(next)) {
          cjk = cjk || is_sentence_end_cjk(next);
        } else if (!is_closer(next) && !utf8::is_extend(next)) {
          break;
        }
        k = n;
      }
      size_t after = skip_spaces(s, k);
      // ASCII punctuation ends a sentence only before white space or the end ("3.14", "e.g.x").
      if (cjk || after > k || after == s.size()) {
        if (after < s.size()) cuts.push_back(after);
        i = after;
        continue;
      }
      i = k;
      continue;
    }
    i = j;
  }
  return cuts;
}

// Word boundaries in s: after each run of white space, and around every CJK character (any code
// point boundary is a word boundary in Chinese and Japanese text).
std::vector<size_t> word_cuts(std::string_view s) {
  std::vector<size_t> cuts;
  size_t i = 0;
  bool have_content = false;  // the current piece holds a non-space character
  while (i < s.size()) {
    size_t j = i;
    const char32_t cp = utf8::decode(s, j);
    if (utf8::is_space(cp)) {
      const size_t after = skip_spaces(s, j);
      if (have_content && after < s.size()) cuts.push_back(after);
      have_content = false;
      i = after;
      continue;
    }
    if (utf8::is_cjk(cp)) {
      if (have_content) cuts.push_back(i);
      size_t k = j;
      while (k < s.size()) {  // combining marks and variation selectors stay with their base
        size_t n = k;
        if (!utf8::is_extend(utf8::decode(s, n))) break;
        k = n;
      }
      const size_t after = skip_spaces(s, k);
      if (after < s.size()) cuts.push_back(after);
      have_content = false;
      i = after;
      continue;
    }
    have_content = true;
    i = j;
  }
  return cuts;
}

struct Unit {
  std::string_view text;  // a view into the block's text, with its trailing white space
  size_t block = 0;       // index into the document's blocks
  size_t cost = 0;
};

template <typename Fn>
void for_each_piece(std::string_view s, const std::vector<size_t>& cuts, Fn&& fn) {
  size_t begin = 0;
  for (size_t cut : cuts) {
    if (cut > begin) fn(s.substr(begin, cut - begin));
    begin = cut;
  }
  if (begin < s.size()) fn(s.substr(begin));
}

// Cuts s into pieces of cost <= target at code point boundaries, never splitting a character from
// the combining marks or joiners that follow it unless that character alone would not fit.
void split_code_points(std::string_view s, size_t block, size_t target, std::vector<Unit>& out) {
  size_t begin = 0;
  while (begin < s.size()) {
    TokenCounter counter;
    size_t end = begin;
    size_t last_safe = begin;  // the last cut that does not separate a base from its extenders
    while (end < s.size()) {
      size_t next = end;
      const char32_t cp = utf8::decode(s, next);
      TokenCounter trial = counter;
      trial.feed(cp);
      if (trial.cost() > target && end > begin) break;
      if (!utf8::is_extend(cp) && cp != 0x200D) last_safe = end;
      counter = trial;
      end = next;
    }
    if (end < s.size() && last_safe > begin) {
      size_t peek = end;
      const char32_t next_cp = utf8::decode(s, peek);
      if (utf8::is_extend(next_cp)) end = last_safe;
    }
    const std::string_view piece = s.substr(begin, end - begin);
    out.push_back({piece, block, cost_of(piece)});
    begin = end;
  }
}

void split_words(std::string_view s, size_t block, size_t target, std::vector<Unit>& out) {
  for_each_piece(s, word_cuts(s), [&](std::string_view w) {
    const size_t c = cost_of(w);
    if (c == 0) return;
    if (c <= target) {
      out.push_back({w, block, c});
    } else {
      split_code_points(w, block, target, out);
    }
  });
}

// The units of one block: whole sentences when they fit the target, else words, else code points.
std::vector<Unit> block_units(std::string_view text, size_t block, bool is_code, size_t target) {
  std::vector<Unit> units;
  for_each_piece(text, sentence_cuts(text, is_code), [&](std::string_view sentence) {
    const size_t c = cost_of(sentence);
    if (c == 0) return;
    if (c <= target) {
      units.push_back({sentence, block, c});
    } else {
      split_words(sentence, block, target, units);
    }
  });
  return units;
}

std::string_view rtrim(std::string_view s) {
  while (!s.empty()) {
    const size_t b = utf8::floor_boundary(s, s.size() - 1);
    size_t i = b;
    if (!utf8::is_space(utf8::decode(s, i))) break;
    s.remove_suffix(s.size() - b);
  }
  return s;
}

std::string_view ltrim(std::string_view s) {
  return s.substr(skip_spaces(s, 0));
}

class Chunker {
 public:
  Chunker(const parse::ParsedDocument& doc, const ChunkOptions& opts)
      : doc_(doc),
        target_(std::max<size_t>(1, opts.target_tokens)),
        overlap_(std::min(opts.overlap_tokens, target_ / 2)) {}

  std::vector<Chunk> run() {
    std::vector<std::pair<int, std::string>> path;
    for (size_t b = 0; b < doc_.blocks.size(); ++b) {
      const Block& block = doc_.blocks[b];
      if (block.kind == BlockKind::kHeading) {
        // A new section: whatever is pending belongs to the old one, and no overlap crosses it.
        end_section();
        const int level = std::max(1, block.level);
        while (!path.empty() && path.back().first >= level) path.pop_back();
        path.emplace_back(level, std::string(rtrim(ltrim(block.text))));
        heading_path_.clear();
        for (const auto& [l, t] : path) heading_path_.push_back(t);
        continue;
      }
      add_block(b);
    }
    end_section();
    if (chunks_.empty()) headings_only();
    return std::move(chunks_);
  }

 private:
  void add_block(size_t b) {
    const Block& block = doc_.blocks[b];
    std::vector<Unit> units = block_units(block.text, b, block.kind == BlockKind::kCode, target_);
    if (units.empty()) return;
    size_t total = 0;
    for (const Unit& u : units) total += u.cost;
    if (total <= target_) {
      // A whole block: in the current chunk if it fits, else it starts the next one.
      if (cost_ + total > target_) {
        emit();
        make_room(total);
      }
      for (Unit& u : units) push(u);
      return;
    }
    for (Unit& u : units) {
      if (cost_ + u.cost > target_) {
        emit();
        make_room(u.cost);
      }
      push(u);
    }
  }

  void push(const Unit& u) {
    units_.push_back(u);
    cost_ += u.cost;
    ++fresh_;
  }

  // Drops overlap units from the front until `need` more fits.
  void make_room(size_t need) {
    size_t drop = 0;
    while (drop < units_.size() && cost_ + need > target_) cost_ -= units_[drop++].cost;
    units_.erase(units_.begin(), units_.begin() + static_cast<std::ptrdiff_t>(drop));
  }

  // Writes the pending units as a chunk (unless they are only overlap) and keeps the overlap tail.
  void emit() {
    if (fresh_ == 0) return;
    Chunk c;
    c.heading_path = heading_path_;
    c.page = doc_.blocks[units_.front().block].page;
    std::string text;
    for (size_t k = 0; k < units_.size(); ++k) {
      if (k > 0 && units_[k].block != units_[k - 1].block) {
        text.resize(rtrim(text).size());
        text += "\n\n";
      }
      text += units_[k].text;
    }
    std::string_view view = rtrim(text);
    if (doc_.blocks[units_.front().block].kind != BlockKind::kCode) view = ltrim(view);
    c.text = std::string(view);
    c.tokens = approx_tokens(c.text);
    if (!c.text.empty()) chunks_.push_back(std::move(c));
    units_ = overlap_tail();
    cost_ = 0;
    for (const Unit& u : units_) cost_ += u.cost;
    fresh_ = 0;
  }

  // Whole units from the end of the pending chunk, about overlap_ tokens; when the last unit alone
  // is larger, whole words from its end.
  std::vector<Unit> overlap_tail() const {
    std::vector<Unit> tail;
    if (overlap_ == 0 || units_.empty()) return tail;
    size_t budget = overlap_;
    size_t k = units_.size();
    while (k > 0 && units_[k - 1].cost <= budget) budget -= units_[--k].cost;
    if (k < units_.size()) return {units_.begin() + static_cast<std::ptrdiff_t>(k), units_.end()};
    std::vector<Unit> words;
    split_words(units_.back().text, units_.back().block, target_, words);
    k = words.size();
    while (k > 0 && words[k - 1].cost <= budget) budget -= words[--k].cost;
    return {words.begin() + static_cast<std::ptrdiff_t>(k), words.end()};
  }

  // A document of headings and nothing else (a title page, a stub) would otherwise give no chunk,
  // and its words would be in no search: its headings are packed as its text.
  void headings_only() {
    heading_path_.clear();
    for (size_t b = 0; b < doc_.blocks.size(); ++b) {
      if (doc_.blocks[b].kind == BlockKind::kHeading) add_block(b);
    }
    end_section();
  }

  void end_section() {
    emit();
    units_.clear();
    cost_ = 0;
    fresh_ = 0;
  }

  const parse::ParsedDocument& doc_;
  const size_t target_;
  const size_t overlap_;
  std::vector<std::string> heading_path_;
  std::vector<Unit> units_;  // the pending chunk: overlap units first, then fresh ones
  size_t cost_ = 0;
  size_t fresh_ = 0;  // units added since the last emit
  std::vector<Chunk> chunks_;
};

}  // namespace

size_t approx_tokens(std::string_view s) {
  TokenCounter c;
  for (size_t i = 0; i < s.size();) c.feed(utf8::decode(s, i));
  return c.tokens();
}

std::vector<Chunk> chunk_document(const parse::ParsedDocument& doc, const ChunkOptions& opts) {
  return Chunker(doc, opts).run();
}

}  // namespace sluice::text
