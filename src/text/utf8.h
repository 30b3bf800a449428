// Small UTF-8 helpers for the text module: strict decoding, encoding, validation, character classes
// (CJK, spaces, word characters) and cutting a string only at code point boundaries.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/utf8.h"

namespace sluice::text::utf8 {

using sluice::utf8::kReplacement;

// Decodes the code point starting at s[i] and advances i past it. Malformed input (stray
// continuation bytes, overlong forms, surrogates, values past U+10FFFF, truncated sequences) yields
// U+FFFD and advances by one byte, so a caller always makes progress. Requires i < s.size().
using sluice::utf8::decode;

// Appends the UTF-8 encoding of cp (U+FFFD for surrogates and values past U+10FFFF).
using sluice::utf8::append;

// True when s is well-formed UTF-8 by the same strict rules decode() uses.
bool is_valid(std::string_view s);

// Returns s with every malformed byte replaced by U+FFFD (s itself when it is already valid).
std::string sanitize(std::string_view s);

// True when pos is 0, s.size(), or the start of a code point (not a continuation byte).
inline bool is_boundary(std::string_view s, size_t pos) {
  return pos == 0 || pos >= s.size() || (static_cast<unsigned char>(s[pos]) & 0xC0) != 0x80;
}

// The largest code point boundary <= pos (pos is clamped to s.size()).
size_t floor_boundary(std::string_view s, size_t pos);

// The longest prefix of s that is at most max_bytes long and ends on a code point boundary.
inline std::string_view truncate(std::string_view s, size_t max_bytes) {
  return s.substr(0, floor_boundary(s, max_bytes));
}

// The last code point of s (0 when s is empty).
char32_t last_code_point(std::string_view s);

// Han ideographs (all extensions), CJK radicals and strokes, Bopomofo, Hiragana, Katakana, Hangul,
// CJK symbols and punctuation, CJK compatibility and vertical forms, full-width and half-width
// forms. U+3000 (ideographic space) is a space, not CJK.
bool is_cjk(char32_t cp);

// CJK punctuation: U+3001..U+303F, vertical/compatibility forms, full-width ASCII punctuation.
bool is_cjk_punct(char32_t cp);

// Unicode white space, including NBSP, the U+2000 family, U+202F, U+205F and U+3000.
bool is_space(char32_t cp);

// Characters that are invisible and carry no meaning in extracted text: zero-width space, word
// joiner, BOM/ZWNBSP, soft hyphen, Mongolian vowel separator. (ZWJ and ZWNJ are kept: emoji
// sequences and several scripts need them.)
bool is_zero_width(char32_t cp);

// Combining marks, variation selectors and ZWJ/ZWNJ: they extend the preceding character.
bool is_extend(char32_t cp);

// Letters and digits of alphabetic scripts (ASCII, Latin, Greek, Cyrillic, Arabic, ...); CJK is
// not included (it is counted per character), nor are punctuation, symbols and emoji.
bool is_word_char(char32_t cp);

// ASCII or Latin-1/Latin Extended letter.
bool is_latin_letter(char32_t cp);

}  // namespace sluice::text::utf8
