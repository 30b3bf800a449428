// Format detection (magic bytes, then text sniffing, then the file name) and text decoding to
// UTF-8 (UTF-8, UTF-16 with BOM, GB18030 through glibc iconv).
#include <errno.h>
#include <iconv.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/utf8.h"
#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

constexpr std::string_view kBinaryMessage = "does not look like text (binary data)";

bool starts_with_bytes(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The lower-case extension of a file name without the dot ("" when none).
std::string extension_of(std::string_view filename) {
  size_t slash = filename.find_last_of("/\\");
  std::string_view base = slash == std::string_view::npos ? filename : filename.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  return lower_ascii(base.substr(dot + 1));
}

// Length of the longest prefix of s that is well-formed UTF-8 (no overlongs, no surrogates, nothing
// above U+10FFFF). *truncated is set when what stops it is an incomplete sequence at the very end.
size_t valid_utf8_prefix(std::string_view s, bool* truncated) {
  *truncated = false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= n) {
        *truncated = true;
        return i;
      }
      unsigned char b = p[i + k];
      unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) return i;
    }
    i += len;
  }
  return n;
}

// UTF-16 (BOM already removed) to UTF-8; unpaired surrogates are invalid. A prefix may end in the
// middle of a unit or of a surrogate pair.
Result<std::string> decode_utf16(std::string_view b, bool big_endian, bool prefix) {
  if (b.size() % 2 != 0) {
    if (!prefix) return Status::invalid_argument("invalid UTF-16: odd number of bytes");
    b.remove_suffix(1);
  }
  auto unit = [&](size_t i) -> uint32_t {
    auto b0 = static_cast<unsigned char>(b[i]), b1 = static_cast<unsigned char>(b[i + 1]);
    return big_endian ? (b0 << 8 | b1) : (b1 << 8 | b0);
  };
  std::string out;
  out.reserve(b.size() * 3 / 2);
  for (size_t i = 0; i < b.size(); i += 2) {
    uint32_t u = unit(i);
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (i + 2 >= b.size()) {
        if (prefix) break;
        return Status::invalid_argument("invalid UTF-16: unpaired surrogate at the end");
      }
      uint32_t u2 = unit(i + 2);
      if (u2 < 0xDC00 || u2 > 0xDFFF) return Status::invalid_argument("invalid UTF-16: unpaired surrogate");
      utf8::append(out, 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00));
      i += 2;
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      return Status::invalid_argument("invalid UTF-16: unpaired surrogate");
    } else {
      utf8::append(out, u);
    }
  }
  return out;
}

// Text has few control characters; binary data decoded by accident has many. Tab, newlines, form
// feed, vertical tab and escape are fine; NUL never is.
bool looks_binary(std::string_view utf8) {
  size_t controls = 0;
  for (char ch : utf8) {
    auto c = static_cast<unsigned char>(ch);
    if (c == 0) return true;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1B) ++controls;
    if (c == 0x7F) ++controls;
  }
  return controls * 20 > utf8.size();  // over 5%
}

Result<std::string> convert_impl(std::string_view bytes, const char* charset, bool prefix) {
  iconv_t cd = iconv_open("UTF-8", charset);
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return Status::unsupported(std::string("unsupported charset '") + charset + "'");
  }
  std::string out(bytes.size() * 2 + 16, '\0');
  char* in = const_cast<char*>(bytes.data());  // iconv's signature; it does not write the input
  size_t in_left = bytes.size();
  size_t done = 0;
  Status st;
  while (in_left > 0) {
    char* o = out.data() + done;
    size_t o_left = out.size() - done;
    size_t r = iconv(cd, &in, &in_left, &o, &o_left);
    done = out.size() - o_left;
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    if (errno == EINVAL && prefix) break;  // incomplete character cut off at the end
    st = Status::invalid_argument(std::string("invalid ") + charset + " at byte " +
                                  std::to_string(bytes.size() - in_left));
    break;
  }
  iconv_close(cd);
  if (!st.is_ok()) return st;
  out.resize(done);
  return out;
}

Result<std::string> decode_impl(std::string_view bytes, std::string* encoding, bool prefix) {
  std::string enc;
  std::string out;
  if (starts_with_bytes(bytes, "\xEF\xBB\xBF")) {
    bytes.remove_prefix(3);
    enc = "utf-8";
  } else if (starts_with_bytes(bytes, "\xFF\xFE") || starts_with_bytes(bytes, "\xFE\xFF")) {
    bool be = bytes[0] == '\xFE';
    auto r = decode_utf16(bytes.substr(2), be, prefix);
    if (!r.is_ok())
      return Status::invalid_argument(std::string(kBinaryMessage) + ": " + r.status().message());
    out = std::move(r).value();
    enc = be ? "utf-16be" : "utf-16le";
  }
  if (enc.empty() || enc == "utf-8") {
    bool truncated = false;
    size_t valid = valid_utf8_prefix(bytes, &truncated);
    if (valid == bytes.size() || (prefix && truncated)) {
      out.assign(bytes.substr(0, valid));
      enc = "utf-8";
    } else if (enc.empty() && bytes.find('\0') == std::string_view::npos) {
      // Not UTF-8: Chinese files from Windows are often GBK/GB2312, which GB18030 contains.
      auto r = convert_impl(bytes, "GB18030", prefix);
      if (r.is_ok()) {
        out = std::move(r).value();
        enc = "gb18030";
      }
    }
    if (enc.empty() || (enc == "utf-8" && out.size() != valid)) {
      return Status::invalid_argument(std::string(kBinaryMessage) + ": not valid UTF-8, UTF-16 or GB18030");
    }
  }
  if (looks_binary(out)) {
    return Status::invalid_argument(std::string(kBinaryMessage) + ": NUL bytes or control characters");
  }
  if (encoding) *encoding = enc;
  return out;
}

// Binary formats we recognise but do not parse, so that the error says what the file is.
struct Magic {
  std::string_view bytes;
  std::string_view what;
};
constexpr std::array<Magic, 9> kMagics = {{
    {"GIF87a", "a GIF image"},
    {"GIF89a", "a GIF image"},
    {"\x1F\x8B", "gzip-compressed data"},
    {"\xFD"
     "7zXZ",
     "xz-compressed data"},
    {"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"},
    {"Rar!\x1A\x07", "a RAR archive"},
    {"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "a legacy Microsoft Office (OLE2) document such as .doc or .xls"},
    {"\x7F"
     "ELF",
     "an ELF executable"},
    {std::string_view("SQLite format 3\0", 16), "an SQLite database"},
}};

// A zip file: DOCX when its entry names say so (or, when the entries are past the head, its name).
Result<std::string> detect_zip(std::string_view head, const std::string& ext) {
  if (head.find("word/document.xml") != std::string_view::npos) return std::string("docx");
  if (head.find("word/") != std::string_view::npos &&
      head.find("[Content_Types].xml") != std::string_view::npos) {
    return std::string("docx");
  }
  if (ext == "docx" && head.find("xl/") == std::string_view::npos &&
      head.find("ppt/") == std::string_view::npos) {
    return std::string("docx");  // the docx parser checks the entries and says if they are wrong
  }
  std::string what = "a zip archive";
  if (head.find("xl/") != std::string_view::npos) {
    what = "an Excel (XLSX) workbook";
  } else if (head.find("ppt/") != std::string_view::npos) {
    what = "a PowerPoint (PPTX) presentation";
  } else if (head.find("application/epub+zip") != std::string_view::npos) {
    what = "an EPUB book";
  } else if (head.find("application/vnd.oasis.opendocument") != std::string_view::npos) {
    what = "an OpenDocument file";
  }
  return Status::unsupported("unsupported format: looks like " + what);
}

std::string_view skip_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// HTML by its start: a doctype, <html>, or a typical first tag, after an XML declaration and
// comments.
bool looks_html(std::string_view text, const std::string& ext) {
  std::string_view s = skip_space(text);
  for (int guard = 0; guard < 16; ++guard) {
    if (starts_with_bytes(s, "<?xml")) {
      size_t e = s.find("?>");
      if (e == std::string_view::npos) return false;
      s = skip_space(s.substr(e + 2));
    } else if (starts_with_bytes(s, "<!--")) {
      size_t e = s.find("-->");
      if (e == std::string_view::npos) return false;
      s = skip_space(s.substr(e + 3));
    } else {
      break;
    }
  }
  if (iequals_prefix(s, "<!doctype html")) return true;
  if (s.empty() || s[0] != '<') return false;
  if (ext == "html" || ext == "htm" || ext == "xhtml") return true;
  static constexpr std::array<std::string_view, 14> kTags = {"html", "head",    "body",    "meta", "title",
                                                             "div",  "p",       "table",   "h1",   "h2",
                                                             "h3",   "section", "article", "link"};
  std::string_view tag = s.substr(1);
  for (std::string_view t : kTags) {
    if (iequals_prefix(tag, t) && tag.size() > t.size() &&
        (tag[t.size()] == '>' || tag[t.size()] == '/' ||
         std::isspace(static_cast<unsigned char>(tag[t.size()])))) {
      return true;
    }
  }
  return false;
}

// True when text is JSON, or a prefix of JSON when the head was cut short.
bool parses_as_json(std::string_view text, bool cut_short) {
  try {
    [[maybe_unused]] auto v = nlohmann::json::parse(text.begin(), text.end());
    return true;
  } catch (const nlohmann::json::parse_error& e) {
    // An error at the very end of a cut-short head only means the rest is missing.
    if (cut_short && e.byte >= text.size()) return true;
  } catch (const std::exception&) {
  }
  // JSON Lines: the first line alone is a JSON object or array.
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos || nl + 1 >= text.size()) return false;
  std::string_view first = text.substr(0, nl);
  try {
    auto v = nlohmann::json::parse(first.begin(), first.end());
    return v.is_object() || v.is_array();
  } catch (const std::exception&) {
    return false;
  }
}

// Splits into at most max_lines lines (without their "\n").
std::vector<std::string_view> first_lines(std::string_view text, size_t max_lines) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size() && lines.size() < max_lines) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

// Delimiters outside double quotes on one line.
size_t count_delims(std::string_view line, char delim) {
  size_t n = 0;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    if (c == delim && !quoted) ++n;
  }
  return n;
}

// CSV by content: at least three lines with the same nonzero count of one delimiter. (Prose lines
// rarely agree on a count of commas three times over; a cut-short last line is ignored.)
bool looks_csv(std::string_view text, bool cut_short) {
  auto lines = first_lines(text, 20);
  if (cut_short && lines.size() > 1) lines.pop_back();
  while (!lines.empty() && skip_space(lines.back()).empty()) lines.pop_back();
  if (lines.size() < 3) return false;
  for (char d : {',', '\t', ';'}) {
    size_t want = count_delims(lines[0], d);
    if (want == 0) continue;
    bool same = std::all_of(lines.begin(), lines.end(),
                            [&](std::string_view l) { return count_delims(l, d) == want; });
    if (same) return true;
  }
  return false;
}

// Markdown by content: an ATX heading ("# Title") or a code fence at the start of a line.
bool looks_markdown(std::string_view text) {
  for (std::string_view line : first_lines(text, 200)) {
    size_t i = 0;
    while (i < line.size() && i < 3 && line[i] == ' ') ++i;
    std::string_view l = line.substr(i);
    if (starts_with_bytes(l, "```") || starts_with_bytes(l, "~~~")) return true;
    size_t h = 0;
    while (h < l.size() && l[h] == '#') ++h;
    if (h >= 1 && h <= 6 && h < l.size() && l[h] == ' ' && !skip_space(l.substr(h)).empty()) return true;
  }
  return false;
}

}  // namespace

Result<std::string> decode_text(std::string_view bytes, std::string* encoding) {
  return decode_impl(bytes, encoding, /*prefix=*/false);
}

Result<std::string> decode_text_prefix(std::string_view bytes, std::string* encoding) {
  return decode_impl(bytes, encoding, /*prefix=*/true);
}

Result<std::string> convert_to_utf8(std::string_view bytes, const char* charset) {
  return convert_impl(bytes, charset, /*prefix=*/false);
}

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<std::string> detect_format(std::string_view head, std::string_view filename) {
  if (head.empty()) return Status::invalid_argument("empty file");
  const std::string ext = extension_of(filename);
  // A PDF may have a little junk before its header; readers accept it within the first KiB.
  size_t pdf = head.substr(0, 1024).find("%PDF-");
  if (pdf != std::string_view::npos) return std::string("pdf");
  if (starts_with_bytes(head, "PK\x03\x04")) return detect_zip(head, ext);
  // Office wraps an encrypted DOCX in an OLE file; the docx parser says so.
  if (ext == "docx" && starts_with_bytes(head, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"))
    return std::string("docx");
  // The images OCR reads (image.cc); GIF and the rest are refused below.
  if (starts_with_bytes(head, "\x89PNG\r\n\x1A\n")) return std::string("png");
  if (starts_with_bytes(head, "\xFF\xD8\xFF")) return std::string("jpeg");
  if (starts_with_bytes(head, std::string_view("II*\0", 4)) ||
      starts_with_bytes(head, std::string_view("MM\0*", 4)))
    return std::string("tiff");
  for (const Magic& m : kMagics) {
    if (starts_with_bytes(head, m.bytes))
      return Status::unsupported("unsupported format: looks like " + std::string(m.what));
  }

  const bool cut_short = head.size() >= kDetectHeadBytes;
  std::string encoding;
  auto decoded = decode_impl(head, &encoding, cut_short);
  if (!decoded.is_ok()) return decoded.status();
  const std::string& text = decoded.value();
  if (skip_space(text).empty()) {
    // Only whitespace: nothing to sniff. The text parser reports it has no text.
    return std::string(ext == "md" || ext == "markdown" ? "markdown" : "text");
  }

  // Strong content signals first, then names of the text family, then weak content signals.
  if (looks_html(text, ext)) return std::string("html");
  std::string_view body = skip_space(text);
  if (body[0] == '{' || body[0] == '[') {
    if (parses_as_json(body, cut_short)) return std::string("json");
    // Named JSON but malformed: the JSON parser says where it breaks.
    if (ext == "json" || ext == "jsonl" || ext == "ndjson") return std::string("json");
  }
  if (ext == "md" || ext == "markdown" || ext == "mdown" || ext == "mkd") return std::string("markdown");
  if (ext == "csv" || ext == "tsv") return std::string("csv");
  if (ext == "html" || ext == "htm" || ext == "xhtml") return std::string("html");
  if (ext == "txt" || ext == "text" || ext == "log") return std::string("text");
  if (looks_csv(text, cut_short)) return std::string("csv");
  if (looks_markdown(text)) return std::string("markdown");
  return std::string("text");
}

}  // namespace sluice::parse
