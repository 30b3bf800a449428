// Tests for clean_document: a golden file for a PDF-like document (running headers and footers,
// a table of contents, hyphenation, odd white space, Chinese lines), and focused unit tests.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "text/text.h"
#include "text/text_fixture.h"

namespace sluice::text {
namespace {

using parse::Block;
using parse::BlockKind;
using parse::ParsedDocument;

ParsedDocument one_block(std::string text, BlockKind kind = BlockKind::kParagraph, int page = 0) {
  ParsedDocument doc;
  Block b;
  b.kind = kind;
  b.text = std::move(text);
  b.page = page;
  doc.blocks.push_back(b);
  return doc;
}

std::string clean_one(std::string text, BlockKind kind = BlockKind::kParagraph, int page = 0) {
  ParsedDocument doc = one_block(std::move(text), kind, page);
  clean_document(doc, {});
  return doc.blocks.empty() ? "<dropped>" : doc.blocks[0].text;
}

TEST(Clean, GoldenFourPageReport) {
  ParsedDocument doc = test::read_fixture_document("tests/fixtures/text/clean_report.txt");
  ASSERT_EQ(doc.pages, 4);
  const CleanStats stats = clean_document(doc, {});
  std::string out = test::render_document(doc);
  out += "# blocks_dropped=" + std::to_string(stats.blocks_dropped) +
         " pii_masked=" + std::to_string(stats.pii_masked) + "\n";
  test::expect_golden("text/clean_report.txt", out);
}

TEST(Clean, WhiteSpaceIsCollapsedAndTrimmed) {
  EXPECT_EQ(clean_one("  a \t b\u00A0\u00A0c\u3000d  "), "a b c d");
  EXPECT_EQ(clean_one("zero\u200Bwidth\uFEFF here\u2060"), "zerowidth here");
  EXPECT_EQ(clean_one("line one\r\nline two\rline three"), "line one line two line three");
  // ZWJ stays: it holds emoji sequences together.
  EXPECT_EQ(clean_one("family \U0001F468\u200D\U0001F469\u200D\U0001F467"),
            "family \U0001F468\u200D\U0001F469\u200D\U0001F467");
}

TEST(Clean, HeadingPermalinkMarksAreDropped) {
  EXPECT_EQ(clean_one("15. Floating Point Arithmetic\u00b6", BlockKind::kHeading), "15. Floating Point Arithmetic");
  EXPECT_EQ(clean_one("\u00b6", BlockKind::kHeading), "<dropped>");
  EXPECT_EQ(clean_one("a \u00b6 inside stays", BlockKind::kParagraph), "a \u00b6 inside stays");
}

TEST(Clean, BlankLinesKeepParagraphBreaksInsideABlock) {
  EXPECT_EQ(clean_one("first\nline\n\n\n\nsecond"), "first line\nsecond");
  EXPECT_EQ(clean_one("a heading\n\nwrapped", BlockKind::kHeading), "a heading wrapped");
}

TEST(Clean, HyphenationAtLineBreaks) {
  EXPECT_EQ(clean_one("inter-\nnational"), "international");
  EXPECT_EQ(clean_one("a well-known fact"), "a well-known fact");
  EXPECT_EQ(clean_one("Jean-\nPierre"), "Jean-Pierre");
  EXPECT_EQ(clean_one("COVID-\n19 cases"), "COVID-19 cases");
  EXPECT_EQ(clean_one("pros -\nand cons"), "pros - and cons");
  EXPECT_EQ(clean_one("hyphen\u00AD\nation"), "hyphenation");
  EXPECT_EQ(clean_one("in\u00ADvisible"), "invisible");
}

TEST(Clean, KnownCompoundKeepsItsHyphenAcrossALineBreak) {
  ParsedDocument doc = one_block("a well-known case");
  doc.blocks.push_back(one_block("another well-\nknown case").blocks[0]);
  doc.blocks.push_back(one_block("an inter-\nnational case").blocks[0]);
  clean_document(doc, {});
  ASSERT_EQ(doc.blocks.size(), 3u);
  EXPECT_EQ(doc.blocks[1].text, "another well-known case");
  EXPECT_EQ(doc.blocks[2].text, "an international case");
}

TEST(Clean, CjkLinesJoinWithoutSpace) {
  EXPECT_EQ(clean_one("我们在中国的\n业务持续增长。"), "我们在中国的业务持续增长。");
  EXPECT_EQ(clean_one("使用\nKafka\n作为队列"), "使用 Kafka 作为队列");
  EXPECT_EQ(clean_one("他说：\nHello"), "他说：Hello");
  EXPECT_EQ(clean_one("English line\ncontinues"), "English line continues");
  EXPECT_EQ(clean_one("在“双十一”\n期间"), "在“双十一”期间");
  EXPECT_EQ(clean_one("He said “yes”\nand left"), "He said “yes” and left");
  EXPECT_EQ(clean_one("\u3000\u3000段落缩进"), "段落缩进");
}

TEST(Clean, CodeKeepsItsWhiteSpace) {
  EXPECT_EQ(clean_one("  if (x) {\r\n\treturn  1;\r\n  }", BlockKind::kCode),
            "  if (x) {\n\treturn  1;\n  }");
  EXPECT_EQ(clean_one(" \n\t\n", BlockKind::kCode), "<dropped>");
}

TEST(Clean, BarePageNumbersAreDropped) {
  for (const char* s :
       {"12", "- 12 -", "— 7 —", "Page 12", "Page 12 of 40", "page 3/40", "12 / 40", "第 12 页", "第12页",
        "第十二页", "第 3 页 / 共 40 页", "共 40 页 第 3 页", "[ 5 ]"}) {
    EXPECT_EQ(clean_one(s, BlockKind::kParagraph, 1), "<dropped>") << s;
  }
  EXPECT_EQ(clean_one("iv", BlockKind::kParagraph, 2), "<dropped>");
  // Not page numbers.
  for (const char* s :
       {"12 apples", "2023年", "第一章", "一", "Chapter 12", "12345", "Page turner", "3.14"}) {
    EXPECT_EQ(clean_one(s, BlockKind::kParagraph, 1), s) << s;
  }
  EXPECT_EQ(clean_one("iv", BlockKind::kParagraph, 0), "iv");  // roman numbers only on paged documents
  EXPECT_EQ(clean_one("12", BlockKind::kTableRow, 1), "12");   // a table cell is data
}

TEST(Clean, PageNumberLinesInsideAParagraphAreRemoved) {
  EXPECT_EQ(clean_one("the inter-\n12\nnational market", BlockKind::kParagraph, 1),
            "the international market");
}

TEST(Clean, TableOfContentsEntriesAreDropped) {
  EXPECT_EQ(clean_one("Introduction ........ 3"), "<dropped>");
  EXPECT_EQ(clean_one("2.1 Scope . . . . . . 14"), "<dropped>");
  EXPECT_EQ(clean_one("第一章 概述……………… 1"), "<dropped>");
  EXPECT_EQ(clean_one("Preface .......... xi", BlockKind::kParagraph, 1), "<dropped>");
  EXPECT_EQ(clean_one("Contents\nIntroduction ..... 1\nUsage ..... 5"), "Contents");
  // Leaders without a page number (a form to fill in), and ordinary ellipses, stay.
  EXPECT_EQ(clean_one("Signature: ............"), "Signature: ............");
  EXPECT_EQ(clean_one("wait... 3 more"), "wait... 3 more");
}

ParsedDocument paged(std::vector<std::vector<std::string>> pages) {
  ParsedDocument doc;
  for (size_t p = 0; p < pages.size(); ++p) {
    for (const std::string& t : pages[p]) {
      Block b;
      b.text = t;
      b.page = static_cast<int>(p) + 1;
      doc.blocks.push_back(b);
    }
  }
  doc.pages = static_cast<int>(pages.size());
  return doc;
}

std::vector<std::string> texts(const ParsedDocument& doc) {
  std::vector<std::string> out;
  for (const Block& b : doc.blocks) out.push_back(b.text);
  return out;
}

TEST(Clean, RepeatedHeadersAndFootersAreRemoved) {
  ParsedDocument doc = paged({{"ACME Manual v2", "Alpha text.", "Beta text.", "Gamma text.", "Footer 1"},
                              {"ACME Manual v2", "Delta text.", "Epsilon text.", "Footer 2"},
                              {"Zeta text.", "ACME Manual v2", "Eta text.", "Theta text.", "Iota text."},
                              {"Kappa text.", "Lambda text.", "Mu text.", "Nu text.", "Xi text."}});
  const CleanStats stats = clean_document(doc, {});
  // "ACME Manual v2" is at a page edge on pages 1, 2 and 3 (second block counts as an edge); the
  // footers differ only by their digits and appear on 2 of 4 pages (50%).
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{"Alpha text.", "Beta text.", "Gamma text.", "Delta text.",
                                      "Epsilon text.", "Zeta text.", "Eta text.", "Theta text.", "Iota text.",
                                      "Kappa text.", "Lambda text.", "Mu text.", "Nu text.", "Xi text."}));
  EXPECT_EQ(stats.blocks_dropped, 5u);
}

TEST(Clean, RepeatedTextInTheMiddleOfAPageStays) {
  // (Distinct words: "a1", "a2", ... would compare equal once digits are normalised.)
  ParsedDocument doc = paged({{"alpha", "bravo", "Note", "charlie", "delta"},
                              {"echo", "foxtrot", "Note", "golf", "hotel"},
                              {"india", "juliet", "Note", "kilo", "lima"}});
  clean_document(doc, {});
  EXPECT_EQ(doc.blocks.size(), 15u);
}

TEST(Clean, HeaderOnFewerThanHalfThePagesStays) {
  ParsedDocument doc =
      paged({{"Chapter One", "text a"}, {"Chapter One", "text b"}, {"text c"}, {"text d"}, {"text e"}});
  clean_document(doc, {});
  EXPECT_EQ(doc.blocks.size(), 7u);
}

TEST(Clean, UnpagedDocumentsKeepRepeatedBlocks) {
  ParsedDocument doc = paged({{"Same", "Same", "Same"}});
  for (Block& b : doc.blocks) b.page = 0;
  clean_document(doc, {});
  EXPECT_EQ(doc.blocks.size(), 3u);
}

TEST(Clean, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(clean_one(std::string("ok \xFF\xC0 done")), "ok \uFFFD\uFFFD done");
  EXPECT_TRUE(test::valid_utf8(clean_one(std::string("\xE4\xB8 cut", 6), BlockKind::kCode)));
}

TEST(Clean, MaskPiiOnlyWhenAsked) {
  ParsedDocument doc = one_block("联系 alice@example.com 或 13800138000");
  CleanStats stats = clean_document(doc, {});
  EXPECT_EQ(doc.blocks[0].text, "联系 alice@example.com 或 13800138000");
  EXPECT_EQ(stats.pii_masked, 0u);
  stats = clean_document(doc, {.mask_pii = true});
  EXPECT_EQ(doc.blocks[0].text, "联系 [EMAIL] 或 [PHONE]");
  EXPECT_EQ(stats.pii_masked, 2u);
}

TEST(Clean, RandomBytesGiveValidUtf8) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"a",      " ",      "\n",       "\r\n",       "-",        "\n12\n",
                                           "中",     "。",     "\xE4\xB8", "\xFF",       "\xC0\xAF", "\u00AD",
                                           "\u200B", "\u3000", "@x.com",   "138",        "0013",     "8000",
                                           "+86 ",   "......", " 3",       "\U0001F600", "\t",       "\x01"};
  for (int round = 0; round < 300; ++round) {
    ParsedDocument doc;
    const int n = 1 + rng() % 6;
    for (int b = 0; b < n; ++b) {
      Block blk;
      blk.kind = static_cast<BlockKind>(rng() % 6);
      blk.page = 1 + b / 2;
      for (int k = rng() % 40; k >= 0; --k) blk.text += pieces[rng() % pieces.size()];
      doc.blocks.push_back(blk);
    }
    clean_document(doc, {.mask_pii = round % 2 == 0});
    for (const Block& b : doc.blocks) {
      ASSERT_FALSE(b.text.empty());
      ASSERT_TRUE(test::valid_utf8(b.text)) << "round " << round;
    }
  }
}

TEST(Clean, EmptyDocumentStaysEmpty) {
  ParsedDocument doc;
  const CleanStats stats = clean_document(doc, {.mask_pii = true});
  EXPECT_TRUE(doc.blocks.empty());
  EXPECT_EQ(stats.blocks_dropped, 0u);
}

}  // namespace
}  // namespace sluice::text
