#include "parse/document.h"

namespace sluice::parse {

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::kHeading: return "heading";
    case BlockKind::kParagraph: return "paragraph";
    case BlockKind::kListItem: return "list_item";
    case BlockKind::kTableRow: return "table_row";
    case BlockKind::kCode: return "code";
    case BlockKind::kRecord: return "record";
  }
  return "paragraph";
}

std::optional<double> mean_ocr_confidence(const ParsedDocument& doc) {
  double sum = 0;
  int n = 0;
  for (const OcrPage& p : doc.ocr) {
    if (p.empty) continue;
    sum += p.confidence;
    ++n;
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

}  // namespace sluice::parse

#include <nlohmann/json.hpp>

namespace sluice::parse {
namespace {

bool kind_from_name(std::string_view s, BlockKind* out) {
  for (BlockKind k : {BlockKind::kHeading, BlockKind::kParagraph, BlockKind::kListItem, BlockKind::kTableRow,
                      BlockKind::kCode, BlockKind::kRecord}) {
    if (s == block_kind_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string to_json(const ParsedDocument& doc) {
  nlohmann::json blocks = nlohmann::json::array();
  for (const auto& b : doc.blocks) {
    nlohmann::json jb = {{"k", block_kind_name(b.kind)}, {"t", b.text}};
    if (b.level) jb["l"] = b.level;
    if (b.page) jb["p"] = b.page;
    blocks.push_back(std::move(jb));
  }
  nlohmann::json j = {{"format", doc.format}, {"title", doc.title},       {"encoding", doc.encoding},
                      {"pages", doc.pages},   {"warnings", doc.warnings}, {"blocks", std::move(blocks)}};
  if (doc.empty_pages) j["empty_pages"] = doc.empty_pages;
  if (!doc.ocr.empty()) {
    nlohmann::json ocr = nlohmann::json::array();
    for (const OcrPage& p : doc.ocr) {
      nlohmann::json jp = {{"p", p.page}, {"c", p.confidence}};
      if (p.empty) jp["e"] = true;
      ocr.push_back(std::move(jp));
    }
    j["ocr"] = std::move(ocr);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<ParsedDocument> parsed_document_from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::invalid_argument("parsed document is not a JSON object");
  try {
    ParsedDocument d;
    d.format = j.value("format", "");
    d.title = j.value("title", "");
    d.encoding = j.value("encoding", "");
    d.pages = j.value("pages", 0);
    d.empty_pages = j.value("empty_pages", 0);
    for (const auto& jp : j.value("ocr", nlohmann::json::array())) {
      d.ocr.push_back({jp.value("p", 0), jp.value("c", 0.0), jp.value("e", false)});
    }
    if (j.contains("warnings")) d.warnings = j["warnings"].get<std::vector<std::string>>();
    for (const auto& jb : j.value("blocks", nlohmann::json::array())) {
      Block b;
      if (!kind_from_name(jb.value("k", ""), &b.kind)) {
        return Status::invalid_argument("parsed document has a block of unknown kind '" + jb.value("k", "") +
                                        "'");
      }
      b.level = jb.value("l", 0);
      b.page = jb.value("p", 0);
      b.text = jb.value("t", "");
      d.blocks.push_back(std::move(b));
    }
    return d;
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(std::string("parsed document: ") + e.what());
  }
}

}  // namespace sluice::parse
