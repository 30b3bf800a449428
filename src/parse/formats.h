// The parsers of src/parse, one per format, and the helpers they share (bounded reading, text
// decoding). Internal to src/parse: other modules go through parser_for()/parse_file() in parser.h.
// Thread-safety: every parser is a stateless singleton; the helpers are pure functions.
#pragma once

#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include "base/status.h"
#include "parse/parser.h"

namespace sluice::parse {

// One singleton per format (never null once its file is linked in). pdf_parser() and docx_parser()
// live in pdf.cc and docx.cc.
Parser* text_parser();
Parser* markdown_parser();
Parser* html_parser();
Parser* csv_parser();
Parser* json_parser();
Parser* pdf_parser();
Parser* docx_parser();
Parser* image_parser();  // image.cc: PNG, JPEG and TIFF through OCR

// How many leading bytes detect_format() looks at.
inline constexpr size_t kDetectHeadBytes = 8192;

// Reads the whole file, refusing before reading anything when it is over opts.max_bytes
// (kResourceLimit naming the size and the limit) and never reading more than that even when the
// file grows meanwhile. A missing file is kBadInput/kNotFound, an empty one kBadInput. Messages
// name the file.
[[nodiscard]] Result<std::string> read_file_limited(const std::string& path, const ParseOptions& opts);

// Reads at most n leading bytes (for detection). Same error rules as read_file_limited, except
// that an empty file is returned as "" (detect_format says what is wrong with it).
[[nodiscard]] Result<std::string> read_file_head(const std::string& path, size_t n);

// decode_text() for a prefix of a file: an incomplete character cut off at the end is dropped
// rather than treated as invalid.
[[nodiscard]] Result<std::string> decode_text_prefix(std::string_view bytes, std::string* encoding);

// Converts bytes from the named charset (an iconv name) to UTF-8; invalid or incomplete input is
// kBadInput.
[[nodiscard]] Result<std::string> convert_to_utf8(std::string_view bytes, const char* charset);

// "\r\n" and lone "\r" become "\n".
std::string normalize_newlines(std::string_view s);

// The first and last code point of UTF-8 text (0 when empty or invalid).
char32_t first_code_point(std::string_view s);
char32_t last_code_point(std::string_view s);
// Scripts written without spaces between words (Hangul is written with spaces, so it is not here).
bool is_cjk(char32_t c);
// Latin and other alphabetic letters (not CJK), for hyphenation.
bool is_letter(char32_t c);
// How the next line of a paragraph joins the text so far: "-\n" kept as "\n" after letter + '-'
// before a letter (a hyphenation the cleaner decides on), "" between two CJK characters, else " ".
const char* line_joint(std::string_view prev, std::string_view next);

// Appends text to a document as a block when it is not empty after trimming.
void add_block(ParsedDocument& doc, BlockKind kind, std::string text, int level = 0);

// A Parser around a parse function that calls into C++ libraries (poppler, libzip): exceptions they
// throw become a Status here, so none crosses the module boundary. `label` names the format in
// messages ("PDF").
template <Result<ParsedDocument> (*Fn)(const std::string&, const ParseOptions&)>
class GuardedParser final : public Parser {
 public:
  GuardedParser(std::string_view format, std::string_view label) : format_(format), label_(label) {}
  std::string_view format() const override { return format_; }
  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    try {
      return Fn(path, opts);
    } catch (const std::bad_alloc&) {
      return Status::resource_limit(std::string(label_) + " too large to parse in memory: '" + path + "'");
    } catch (const std::exception& e) {
      return Status::internal(std::string(label_) + " parser failed on '" + path + "': " + e.what());
    }
  }

 private:
  std::string_view format_, label_;
};

}  // namespace sluice::parse
