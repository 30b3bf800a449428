// The UTF-8 codec every module shares: decode one code point (malformed bytes become U+FFFD and
// decoding always moves forward) and append one. Character classes and chunking helpers live in
// src/text/utf8.h, on top of this. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at s[i] and advances i past it (by one byte when malformed: overlong
// forms, surrogates, values past U+10FFFF and truncated sequences all give kReplacement).
char32_t decode(std::string_view s, size_t& i);

// Appends cp as UTF-8 (surrogates and values past U+10FFFF as U+FFFD).
void append(std::string& out, char32_t cp);

// True when s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid(std::string_view s);

}  // namespace sluice::utf8
