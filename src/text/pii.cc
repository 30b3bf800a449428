// PII masking: e-mail addresses, phone numbers (Chinese mobile, international, landline) and Chinese
// resident identity numbers, found by hand-written scanners (std::regex is too slow for every block
// of every document) and replaced by [EMAIL], [PHONE] and [ID].
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "text/text.h"

namespace sluice::text {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
bool is_email_local(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool is_email_domain(char c) {
  return is_alnum(c) || c == '.' || c == '-';
}

struct Span {
  size_t begin = 0;
  size_t end = 0;  // one past the last byte; begin == end: no match
};

// An e-mail address around the '@' at `at`: local part of [A-Za-z0-9._%+-], a domain of at least
// two labels whose last label has two or more letters. ASCII only; CJK text around it is a boundary.
Span match_email(std::string_view s, size_t at) {
  size_t b = at;
  while (b > 0 && is_email_local(s[b - 1])) --b;
  while (b < at && (s[b] == '.' || s[b] == '-' || s[b] == '+')) ++b;  // local part starts with alnum
  if (b == at) return {};
  size_t e = at + 1;
  while (e < s.size() && is_email_domain(s[e])) ++e;
  while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;  // "a@b.com." ends a sentence
  const std::string_view domain = s.substr(at + 1, e - at - 1);
  const size_t last_dot = domain.rfind('.');
  if (domain.empty() || last_dot == std::string_view::npos || last_dot == 0) return {};
  if (domain.find("..") != std::string_view::npos || domain.front() == '-' || domain.front() == '.')
    return {};
  const std::string_view tld = domain.substr(last_dot + 1);
  if (tld.size() < 2) return {};
  for (char c : tld) {
    if (!is_alpha(c)) return {};
  }
  return {b, e};
}

// True when a number may start at i: the byte before is not part of a word or a longer number.
bool starts_token(std::string_view s, size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  if (is_alnum(p) || p == '_' || p == '+' || p == '@') return false;
  // "3.13800138000" or "1,13800138000": the digits continue a number.
  if ((p == '.' || p == ',') && i >= 2 && is_digit(s[i - 2])) return false;
  return true;
}

// True when a number may end at i: nothing after it continues a word or the number ("-" or "."
// followed by another digit means the digits go on, e.g. "555-123-4567-89" or "138001380001.5";
// a space does not: "13800138000 13900139000" is a list).
bool ends_token(std::string_view s, size_t i) {
  if (i >= s.size()) return true;
  const char c = s[i];
  if (is_alnum(c) || c == '_' || c == '@') return false;
  if ((c == '-' || c == '.') && i + 1 < s.size() && is_digit(s[i + 1])) return false;
  return true;
}

size_t digits_at(std::string_view s, size_t i) {
  size_t n = 0;
  while (i + n < s.size() && is_digit(s[i + n])) ++n;
  return n;
}

// Chinese resident identity number: 17 digits and a check character (digit or X), valid under
// ISO 7064 MOD 11-2. Without a valid checksum it is just a long number and is left alone.
Span match_cn_id(std::string_view s, size_t i) {
  if (!starts_token(s, i) || digits_at(s, i) < 17) return {};
  if (i + 18 > s.size()) return {};
  const char check = s[i + 17];
  if (!is_digit(check) && check != 'X' && check != 'x') return {};
  if (!ends_token(s, i + 18)) return {};
  static constexpr std::array<int, 17> kWeights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr std::string_view kCheck = "10X98765432";
  int sum = 0;
  for (size_t k = 0; k < 17; ++k) sum += (s[i + k] - '0') * kWeights[k];
  const char want = kCheck[sum % 11];
  const char got = check == 'x' ? 'X' : check;
  if (want != got) return {};
  return {i, i + 18};
}

// Reads digit groups separated by one separator from `seps` (each separator must be followed by a
// digit). Returns the end and fills the group sizes (at most groups.size()).
struct Groups {
  size_t end = 0;
  size_t count = 0;
  size_t total = 0;
  std::array<size_t, 8> sizes{};
};
Groups read_groups(std::string_view s, size_t i, std::string_view seps) {
  Groups g;
  g.end = i;
  while (g.count < g.sizes.size()) {
    const size_t n = digits_at(s, g.end);
    if (n == 0) break;
    g.sizes[g.count++] = n;
    g.total += n;
    g.end += n;
    if (g.end + 1 < s.size() && seps.find(s[g.end]) != std::string_view::npos && is_digit(s[g.end + 1])) {
      ++g.end;
    } else {
      break;
    }
  }
  return g;
}

// A bare Chinese mobile number at p: 1[3-9]xxxxxxxxx, written 13800138000, 138 0013 8000 or
// 138-0013-8000. Returns the end, or 0.
size_t mobile_end(std::string_view s, size_t p) {
  if (p + 1 >= s.size() || s[p] != '1' || s[p + 1] < '3' || s[p + 1] > '9') return 0;
  const size_t n = digits_at(s, p);
  if (n == 11) return ends_token(s, p + 11) ? p + 11 : 0;
  if (n != 3) return 0;
  // 3-4-4 with one consistent separator.
  const char sep = p + 3 < s.size() ? s[p + 3] : '\0';
  if (sep != ' ' && sep != '-') return 0;
  if (digits_at(s, p + 4) != 4 || p + 8 >= s.size() || s[p + 8] != sep || digits_at(s, p + 9) != 4) return 0;
  return ends_token(s, p + 13) ? p + 13 : 0;
}

// Chinese mobile number, optionally after 86 or 0086 (the "+86" form is an international number,
// below).
Span match_cn_mobile(std::string_view s, size_t i) {
  if (!starts_token(s, i)) return {};
  for (std::string_view prefix : {std::string_view("0086"), std::string_view("86")}) {
    if (s.substr(i, prefix.size()) != prefix || i + prefix.size() >= s.size()) continue;
    const size_t q = i + prefix.size();
    const bool sep = s[q] == ' ' || s[q] == '-';
    // Without a separator the prefix and the 11 digits must be one run of exactly 13/15 digits.
    if (!sep && digits_at(s, q) != 11) continue;
    if (const size_t e = mobile_end(s, sep ? q + 1 : q)) return {i, e};
  }
  if (const size_t e = mobile_end(s, i)) return {i, e};
  return {};
}

// International number: "+" (or "(+CC)") then digit groups separated by single spaces, dashes or
// dots, 8 to 15 digits in all (E.164 allows 15).
Span match_international(std::string_view s, size_t i) {
  if (!starts_token(s, i)) return {};
  size_t p = i;
  size_t digits = 0;
  if (s[p] == '(' || s.substr(p, 3) == "\xEF\xBC\x88") {  // "(+86)" or full-width "（+86）"
    p += s[p] == '(' ? 1 : 3;
    if (p >= s.size() || s[p] != '+') return {};
    const size_t n = digits_at(s, p + 1);
    if (n == 0 || n > 3) return {};
    p += 1 + n;
    digits += n;
    if (p < s.size() && s[p] == ')') {
      ++p;
    } else if (s.substr(p, 3) == "\xEF\xBC\x89") {
      p += 3;
    } else {
      return {};
    }
    if (p < s.size() && (s[p] == ' ' || s[p] == '-')) ++p;
  } else if (s[p] == '+') {
    ++p;
  } else {
    return {};
  }
  const Groups g = read_groups(s, p, " -.");
  digits += g.total;
  if (g.count == 0 || digits < 8 || digits > 15 || !ends_token(s, g.end)) return {};
  return {i, g.end};
}

// Landline with an area code: 010-65529988, (010) 6552 9988, 0755-8888 9999, 021 6123 4567
// (area code 0 + 2..3 digits, then 7..8 digits, possibly in two groups); and the 3-3-4 shape of
// North American and Chinese 400/800 numbers: 400-810-8888, (555) 123-4567, 555.123.4567.
Span match_landline(std::string_view s, size_t i) {
  if (!starts_token(s, i)) return {};
  size_t p = i;
  const bool paren = s[p] == '(';
  if (paren) ++p;
  const size_t area = digits_at(s, p);
  if (area < 3 || area > 4) return {};
  p += area;
  if (paren) {
    if (p >= s.size() || s[p] != ')') return {};
    ++p;
    if (p < s.size() && s[p] == ' ') ++p;
  } else {
    if (p + 1 >= s.size() || (s[p] != '-' && s[p] != ' ' && s[p] != '.')) return {};
    ++p;
  }
  const char sep_after_area = s[p - 1];
  const Groups g = read_groups(s, p, sep_after_area == '.' ? "." : " -");
  if (g.count == 0) return {};
  const bool cn_area = s[i + (paren ? 1 : 0)] == '0';
  if (cn_area && sep_after_area != '.') {
    // Subscriber number: 7..8 digits, whole or as 3-4 / 4-4.
    if ((g.count == 1 && g.total >= 7 && g.total <= 8) ||
        (g.count == 2 && (g.sizes[0] == 3 || g.sizes[0] == 4) && g.sizes[1] == 4)) {
      return ends_token(s, g.end) ? Span{i, g.end} : Span{};
    }
  }
  if (area == 3 && g.count == 2 && g.sizes[0] == 3 && g.sizes[1] == 4) {
    // 3-3-4: the separator after the exchange must match the first one (except after "(555) ").
    const size_t second_sep = p + 3;
    if (!paren && s[second_sep] != sep_after_area) return {};
    if (sep_after_area == ' ' && !paren) return {};  // "100 200 3000" is more likely plain numbers
    return ends_token(s, g.end) ? Span{i, g.end} : Span{};
  }
  return {};
}

}  // namespace

size_t mask_pii(std::string& s) {
  if (s.empty()) return 0;
  size_t masked = 0;
  std::string out;
  bool changed = false;

  // E-mail addresses first: their local parts may hold digits that would look like phones.
  if (s.find('@') != std::string::npos) {
    out.reserve(s.size());
    size_t copied = 0;
    size_t at = s.find('@');
    while (at != std::string::npos) {
      const Span m = match_email(s, at);
      if (m.end > m.begin && m.begin >= copied) {
        out.append(s, copied, m.begin - copied);
        out += "[EMAIL]";
        copied = m.end;
        ++masked;
        changed = true;
        at = s.find('@', m.end);
      } else {
        at = s.find('@', at + 1);
      }
    }
    if (changed) {
      out.append(s, copied, std::string::npos);
      s.swap(out);
      out.clear();
    }
  }

  // Numbers: an ID (checksum-verified) wins over a phone at the same position.
  out.reserve(s.size());
  changed = false;
  const std::string_view v = s;
  size_t i = 0;
  size_t copied = 0;
  while (i < v.size()) {
    const char c = v[i];
    if (!is_digit(c) && c != '+' && c != '(' && c != '\xEF') {
      ++i;
      continue;
    }
    Span m;
    const char* label = nullptr;
    if (is_digit(c)) {
      if (m = match_cn_id(v, i); m.end > m.begin) {
        label = "[ID]";
      } else if (m = match_cn_mobile(v, i); m.end > m.begin) {
        label = "[PHONE]";
      } else if (m = match_landline(v, i); m.end > m.begin) {
        label = "[PHONE]";
      }
    } else if (m = match_international(v, i); m.end > m.begin) {
      label = "[PHONE]";
    } else if (c == '(') {
      if (m = match_landline(v, i); m.end > m.begin) label = "[PHONE]";
    }
    if (label) {
      out.append(v.substr(copied, m.begin - copied));
      out += label;
      copied = i = m.end;
      ++masked;
      changed = true;
      continue;
    }
    // Skip the rest of a digit run so a number's tail is never taken for the start of another.
    if (is_digit(c)) {
      while (i < v.size() && is_digit(v[i])) ++i;
    } else {
      ++i;
    }
  }
  if (changed) {
    out.append(v.substr(copied));
    s.swap(out);
  }
  return masked;
}

}  // namespace sluice::text
