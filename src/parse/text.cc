// The plain-text parser: decodes (UTF-8, UTF-16 with BOM, GB18030) and splits into paragraphs on
// blank lines. Line breaks inside a paragraph are kept: in plain text they may mean something
// (addresses, verse, lists) and the cleaner downstream can still reflow them.
#include <string>

#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\f\v") == std::string_view::npos;
}

class TextParser final : public Parser {
 public:
  std::string_view format() const override { return "text"; }

  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, read_file_limited(path, opts));
    ParsedDocument doc;
    doc.format = "text";
    auto text = decode_text(bytes, &doc.encoding);
    if (!text.is_ok()) return text.status().with_context("parse '" + path + "'");
    const std::string body = normalize_newlines(text.value());

    std::string para;
    size_t pos = 0;
    while (pos <= body.size()) {
      size_t nl = body.find('\n', pos);
      if (nl == std::string::npos) nl = body.size();
      std::string_view line(body.data() + pos, nl - pos);
      pos = nl + 1;
      if (blank(line)) {
        add_block(doc, BlockKind::kParagraph, std::move(para));
        para.clear();
        continue;
      }
      size_t end = line.find_last_not_of(" \t\f\v");
      if (!para.empty()) para += '\n';
      para.append(line.substr(0, end + 1));
    }
    add_block(doc, BlockKind::kParagraph, std::move(para));
    if (doc.blocks.empty()) doc.warnings.push_back("no text: the file holds only whitespace");
    return doc;
  }
};

}  // namespace

Parser* text_parser() {
  static TextParser parser;
  return &parser;
}

}  // namespace sluice::parse
