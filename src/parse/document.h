// ParsedDocument: what a parser makes of a file — an ordered list of blocks (headings, paragraphs,
// list items, table rows, records), each with the page it came from. The cleaner and the chunker
// work on it; nothing downstream looks at the original bytes again.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::parse {

enum class BlockKind {
  kHeading,  // level 1..6
  kParagraph,
  kListItem,
  kTableRow,  // one row of a table, cells joined by " | "
  kCode,      // preformatted text, kept as is
  kRecord,    // one CSV row or JSON object, as "field: value; field: value"
};

struct Block {
  BlockKind kind = BlockKind::kParagraph;
  int level = 0;     // heading level (1 = top); 0 for other kinds
  std::string text;  // UTF-8, never empty after parsing
  int page = 0;      // 1-based page, 0 when the format has no pages
};

// One page whose text came from OCR, and how sure the recogniser was of it.
struct OcrPage {
  int page = 0;           // 1-based
  double confidence = 0;  // tesseract's mean text confidence, 0..100 (0 when nothing was read)
  bool empty = false;     // nothing was recognised on it
  bool operator==(const OcrPage&) const = default;
};

struct ParsedDocument {
  std::string format;    // "text", "markdown", "html", "csv", "json", "pdf", "docx", "png", "jpeg", "tiff"
  std::string title;     // from metadata or the first heading; may be empty
  std::string encoding;  // the source text encoding detected ("utf-8", "utf-16le", "gb18030", ...)
  int pages = 0;         // page count when the format has pages (PDF, images), else 0
  int empty_pages = 0;   // pages that gave no text at all (with or without OCR)
  std::vector<OcrPage> ocr;  // the pages read by OCR, in page order; empty when none was
  std::vector<Block> blocks;
  std::vector<std::string> warnings;  // things a person may want to know (a page with no text, ...)
};

const char* block_kind_name(BlockKind k);

// The mean of the confidences of the OCR pages that gave text (empty ones are counted by
// empty_pages instead); nullopt when no page was read by OCR or none gave text.
std::optional<double> mean_ocr_confidence(const ParsedDocument& doc);

}  // namespace sluice::parse

namespace sluice::parse {

// JSON form of a parsed document (the parse stage's output, and what a parse worker process sends
// back): {"format","title","encoding","pages","empty_pages","ocr":[{"p","c","e"}],"warnings":[..],
// "blocks":[{"k","l","p","t"}]} ("empty_pages" and "ocr" only when not zero / empty).
std::string to_json(const ParsedDocument& doc);
[[nodiscard]] Result<ParsedDocument> parsed_document_from_json(std::string_view json);

}  // namespace sluice::parse
