// ParsedDocument's JSON form round-trips, Chinese text and OCR pages and all, and rejects unknown
// block kinds.
#include <gtest/gtest.h>

#include "parse/document.h"

namespace sluice::parse {
namespace {

TEST(ParsedDocumentJson, RoundTrip) {
  ParsedDocument d;
  d.format = "pdf";
  d.title = "用户手册";
  d.encoding = "utf-8";
  d.pages = 2;
  d.empty_pages = 1;
  d.ocr = {{1, 88.5, false}, {2, 0, true}};
  d.warnings = {"page 2 has no text"};
  d.blocks = {{BlockKind::kHeading, 1, "第一章 安装", 1},
              {BlockKind::kParagraph, 0, "Install with apt.", 1},
              {BlockKind::kTableRow, 0, "a | b", 2},
              {BlockKind::kRecord, 0, "name: 张三; age: 30", 0}};
  auto back = parsed_document_from_json(to_json(d));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->format, "pdf");
  EXPECT_EQ(back->title, "用户手册");
  EXPECT_EQ(back->pages, 2);
  EXPECT_EQ(back->warnings, d.warnings);
  EXPECT_EQ(back->empty_pages, 1);
  EXPECT_EQ(back->ocr, d.ocr);
  ASSERT_TRUE(mean_ocr_confidence(*back).has_value());
  EXPECT_DOUBLE_EQ(*mean_ocr_confidence(*back), 88.5);  // the empty page does not count
  ASSERT_EQ(back->blocks.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(back->blocks[i].kind, d.blocks[i].kind);
    EXPECT_EQ(back->blocks[i].level, d.blocks[i].level);
    EXPECT_EQ(back->blocks[i].page, d.blocks[i].page);
    EXPECT_EQ(back->blocks[i].text, d.blocks[i].text);
  }
}

TEST(ParsedDocumentJson, BadInput) {
  EXPECT_FALSE(parsed_document_from_json("[]").is_ok());
  EXPECT_FALSE(parsed_document_from_json("{").is_ok());
  auto r = parsed_document_from_json(R"({"blocks":[{"k":"poem","t":"x"}]})");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("poem"), std::string::npos);
}

}  // namespace
}  // namespace sluice::parse
