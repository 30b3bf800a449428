// UTF-8 decoding, validation and character classes used by the cleaner and the chunker.
#include "text/utf8.h"

namespace sluice::text::utf8 {

bool is_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    // A literal U+FFFD in the input is valid; only a one-byte step signals a malformed byte.
    if (decode(s, i) == kReplacement && i - start == 1) return false;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  if (is_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) append(out, decode(s, i));
  return out;
}

size_t floor_boundary(std::string_view s, size_t pos) {
  if (pos >= s.size()) return s.size();
  while (pos > 0 && !is_boundary(s, pos)) --pos;
  return pos;
}

char32_t last_code_point(std::string_view s) {
  if (s.empty()) return 0;
  size_t start = s.size() - 1;
  // A well-formed sequence is at most 4 bytes; stop there so malformed tails stay cheap.
  while (start > 0 && s.size() - start < 4 && !is_boundary(s, start)) --start;
  size_t i = start;
  return decode(s, i);
}

bool is_cjk_punct(char32_t cp) {
  return (cp >= 0x3001 && cp <= 0x303F) || (cp >= 0xFE10 && cp <= 0xFE1F) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
         (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
         (cp >= 0xFF5B && cp <= 0xFF65);
}

bool is_cjk(char32_t cp) {
  if (cp < 0x1100) return false;
  return (cp <= 0x11FF) ||                    // Hangul Jamo
         (cp >= 0x2E80 && cp <= 0x2FDF) ||    // CJK radicals, Kangxi radicals
         (cp >= 0x2FF0 && cp <= 0x2FFF) ||    // ideographic description
         (cp >= 0x3001 && cp <= 0x303F) ||    // CJK symbols and punctuation (not U+3000)
         (cp >= 0x3040 && cp <= 0x30FF) ||    // Hiragana, Katakana
         (cp >= 0x3100 && cp <= 0x31FF) ||    // Bopomofo, Hangul compatibility Jamo, strokes
         (cp >= 0x3200 && cp <= 0x4DBF) ||    // enclosed CJK, compatibility, Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||    // unified ideographs
         (cp >= 0xA960 && cp <= 0xA97F) ||    // Hangul Jamo Extended-A
         (cp >= 0xAC00 && cp <= 0xD7FF) ||    // Hangul syllables, Jamo Extended-B
         (cp >= 0xF900 && cp <= 0xFAFF) ||    // compatibility ideographs
         (cp >= 0xFE10 && cp <= 0xFE1F) ||    // vertical forms
         (cp >= 0xFE30 && cp <= 0xFE4F) ||    // compatibility forms
         (cp >= 0xFF01 && cp <= 0xFFEF) ||    // full-width and half-width forms
         (cp >= 0x1B000 && cp <= 0x1B16F) ||  // Kana supplement/extended
         (cp >= 0x20000 && cp <= 0x3134F);    // Extensions B..H, compatibility supplement
}

bool is_space(char32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool is_zero_width(char32_t cp) {
  return cp == 0x200B || cp == 0x2060 || cp == 0xFEFF || cp == 0x00AD || cp == 0x180E;
}

bool is_extend(char32_t cp) {
  return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
         (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE20 && cp <= 0xFE2F) ||
         cp == 0x200C || cp == 0x200D || (cp >= 0x1F3FB && cp <= 0x1F3FF) ||
         (cp >= 0xE0020 && cp <= 0xE007F) || (cp >= 0xE0100 && cp <= 0xE01EF) ||
         (cp >= 0x3099 && cp <= 0x309A);
}

bool is_latin_letter(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7;
}

bool is_word_char(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (cp < 0xC0) return cp == 0xAA || cp == 0xB5 || cp == 0xBA;  // the rest of Latin-1 is symbols
  if (cp == 0xD7 || cp == 0xF7) return false;
  if (is_cjk(cp) || is_space(cp) || is_extend(cp) || is_zero_width(cp)) return false;
  // General punctuation, symbols, arrows, box drawing, dingbats, supplemental punctuation, emoji and
  // pictographs, private use, specials: not letters.
  if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0xE000 && cp <= 0xF8FF) ||
      (cp >= 0xFFF0 && cp <= 0xFFFF) || (cp >= 0x1F000 && cp <= 0x1FAFF)) {
    return false;
  }
  return true;
}

}  // namespace sluice::text::utf8
