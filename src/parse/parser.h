// Parsers: one per format, all behind one interface, chosen by content (magic bytes, then text
// sniffing) and only then by extension. parse_file() is what the parse stage calls.
//
// Errors: a file that is not what it claims, corrupt, encrypted or empty is ErrorClass::kBadInput
// (retrying cannot fix it), and so is a file that vanished before it was read (kNotFound: a retry
// would not bring it back); a file over ParseOptions::max_bytes is kResourceLimit; other I/O
// failures keep the class errno gives them. Messages name the file and say what was wrong.
// Thread-safety: parse_file may run on many threads at once. Parsers are stateless, except that
// OCR keeps one recognition engine per thread (parse/ocr.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "parse/document.h"

namespace sluice::parse {

// When text is recognised from pixels (parse/ocr.h).
enum class OcrMode {
  kAuto,    // images, and PDF pages without a text layer
  kAlways,  // images and every PDF page (a page's text layer is replaced by what OCR reads)
  kNever,   // images fail (kBadInput), PDF pages without a text layer stay empty
};

struct OcrOptions {
  OcrMode mode = OcrMode::kAuto;
  std::string languages = "eng+chi_sim";  // tesseract's language names joined by '+'
  int dpi = 300;                          // PDF pages are rendered at this resolution
};

struct ParseOptions {
  uint64_t max_bytes = 256ull << 20;  // larger files fail with kResourceLimit before being read
  OcrOptions ocr;
};

// "auto" | "always" | "never" and back; an unknown name is kBadInput.
std::string_view ocr_mode_name(OcrMode m);
[[nodiscard]] Result<OcrMode> ocr_mode_from_name(std::string_view name);

class Parser {
 public:
  virtual ~Parser() = default;
  virtual std::string_view format() const = 0;
  // Parses the file at path (already detected as this format).
  [[nodiscard]] virtual Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) = 0;
};

// The format of a file from its first bytes (up to 8 KiB) and, when the bytes do not say, its
// name: "pdf", "docx", "html", "json", "csv", "markdown", "text", and the images OCR reads: "png",
// "jpeg", "tiff". Unknown binary content is kBadInput naming what it looks like.
[[nodiscard]] Result<std::string> detect_format(std::string_view head, std::string_view filename);

// The parser of a format, or nullptr.
Parser* parser_for(std::string_view format);

// Detects and parses.
[[nodiscard]] Result<ParsedDocument> parse_file(const std::string& path, const ParseOptions& opts = {});

// Decodes text bytes to UTF-8: UTF-8 (BOM stripped), UTF-16 LE/BE with BOM, and GB18030/GBK when
// the bytes are not valid UTF-8 but decode as GB18030. Sets *encoding. Invalid everything is
// kBadInput.
[[nodiscard]] Result<std::string> decode_text(std::string_view bytes, std::string* encoding);

}  // namespace sluice::parse
