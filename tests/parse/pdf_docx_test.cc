// Tests of the PDF and DOCX parsers (src/parse/pdf.cc, docx.cc) on the fixtures of
// tests/fixtures/parse (made by make_fixtures.py there), with goldens in tests/golden/parse.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "parse/formats.h"
#include "parse/parse_test_util.h"
#include "parse/parser.h"
#include "support/golden.h"

namespace sluice::parse {
namespace {

std::string render(const ParsedDocument& doc) {
  return "format: " + doc.format + "\ntitle: " + escape(doc.title) + "\npages: " + std::to_string(doc.pages) +
         "\n" + render_body(doc);
}

ParsedDocument parse_ok(Parser* parser, const std::string& name, const ParseOptions& opts = {}) {
  Result<ParsedDocument> r = parser->parse(fixture(name), opts);
  EXPECT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : ParsedDocument{};
}

void expect_error(Parser* parser, const std::string& name, ErrorClass cls, const std::string& message,
                  const ParseOptions& opts = {}) {
  Result<ParsedDocument> r = parser->parse(fixture(name), opts);
  ASSERT_FALSE(r.is_ok()) << name << " parsed";
  EXPECT_EQ(r.status().error_class(), cls) << r.status().to_string();
  EXPECT_EQ(r.status().message(), message);
}

void expect_blocks_nonempty(const ParsedDocument& doc) {
  for (const Block& b : doc.blocks) EXPECT_FALSE(b.text.empty());
}

// Fails (rather than crashes) when a weak "no parser" stub won the link over pdf.cc/docx.cc.
class PdfParser : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(pdf_parser(), nullptr) << "pdf_parser() is a null stub: pdf.cc was not linked in";
  }
};

class DocxParser : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(docx_parser(), nullptr) << "docx_parser() is a null stub: docx.cc was not linked in";
  }
};

// ---- PDF ----

TEST_F(PdfParser, Format) {
  EXPECT_EQ(pdf_parser()->format(), "pdf");
}

TEST_F(PdfParser, EnglishThreePages) {
  ParsedDocument doc = parse_ok(pdf_parser(), "english.pdf");
  EXPECT_EQ(doc.pages, 3);
  EXPECT_EQ(doc.title, "Sluice Ingestion Guide");
  expect_blocks_nonempty(doc);
  sluice::test::expect_golden("parse/english.pdf.txt", render(doc));
}

TEST_F(PdfParser, KeepsHyphenatedLineBreakForTheCleaner) {
  ParsedDocument doc = parse_ok(pdf_parser(), "english.pdf");
  bool found = false;
  for (const Block& b : doc.blocks) found = found || b.text.find("inter-\nnational") != std::string::npos;
  EXPECT_TRUE(found) << render(doc);
}

TEST_F(PdfParser, ChineseEmbeddedFont) {
  ParsedDocument doc = parse_ok(pdf_parser(), "chinese.pdf");
  EXPECT_EQ(doc.title, "文档解析说明");
  sluice::test::expect_golden("parse/chinese.pdf.txt", render(doc));
}

// Non-embedded Adobe-GB1 fonts need poppler-data (scripts/setup.sh installs it).
TEST_F(PdfParser, ChineseCidFontNeedsPopplerData) {
  ParsedDocument doc = parse_ok(pdf_parser(), "chinese_cid.pdf");
  EXPECT_TRUE(doc.warnings.empty()) << render(doc);
  sluice::test::expect_golden("parse/chinese_cid.pdf.txt", render(doc));
}

// With OCR off (tests/parse/ocr_test.cc has it on).
TEST_F(PdfParser, PageWithoutTextIsAWarning) {
  ParseOptions never;
  never.ocr.mode = OcrMode::kNever;
  ParsedDocument doc = parse_ok(pdf_parser(), "scanned_page.pdf", never);
  EXPECT_EQ(doc.pages, 2);
  EXPECT_EQ(doc.empty_pages, 1);
  EXPECT_EQ(doc.warnings,
            std::vector<std::string>{"page 2 has no text layer (scanned?) and OCR is off (--ocr never)"});
  sluice::test::expect_golden("parse/scanned_page.pdf.txt", render(doc));
}

TEST_F(PdfParser, OwnerPasswordOnlyParses) {
  ParsedDocument doc = parse_ok(pdf_parser(), "owner_only.pdf");
  ParsedDocument plain = parse_ok(pdf_parser(), "english.pdf");
  EXPECT_EQ(render(doc), render(plain));
}

TEST_F(PdfParser, EncryptedIsBadInput) {
  expect_error(pdf_parser(), "encrypted.pdf", ErrorClass::kBadInput,
               "encrypted PDF: '" + fixture("encrypted.pdf") + "' needs a password");
}

TEST_F(PdfParser, TruncatedIsBadInput) {
  Result<ParsedDocument> r = pdf_parser()->parse(fixture("truncated.pdf"), {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  // Poppler's own last words follow in parentheses.
  const std::string prefix = "corrupt or truncated PDF: '" + fixture("truncated.pdf") + "' (";
  EXPECT_EQ(r.status().message().substr(0, prefix.size()), prefix) << r.status().message();
}

TEST_F(PdfParser, NotAPdfIsBadInput) {
  Result<ParsedDocument> r = pdf_parser()->parse(fixture("sample.docx"), {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << r.status().to_string();
}

TEST_F(PdfParser, OverMaxBytesIsResourceLimit) {
  ParseOptions opts;
  opts.max_bytes = 1000;
  expect_error(pdf_parser(), "english.pdf", ErrorClass::kResourceLimit,
               "PDF too large: '" + fixture("english.pdf") +
                   "' is 2976 bytes, over the limit of 1000 bytes (max_bytes)",
               opts);
}

TEST_F(PdfParser, MissingFileIsNotFound) {
  Result<ParsedDocument> r = pdf_parser()->parse(fixture("no_such.pdf"), {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "file not found: '" + fixture("no_such.pdf") + "'");
}

// Poppler's shared state (global params, the error callback) must survive parallel parses.
TEST_F(PdfParser, ConcurrentParsesAgree) {
  const std::vector<std::string> names = {"english.pdf", "chinese.pdf", "scanned_page.pdf", "truncated.pdf",
                                          "encrypted.pdf"};
  std::vector<std::string> expected;
  for (const std::string& n : names) {
    Result<ParsedDocument> r = pdf_parser()->parse(fixture(n), {});
    expected.push_back(r.is_ok() ? render(*r) : r.status().to_string());
  }
  constexpr int kThreads = 8;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < names.size(); ++i) {
          const std::string& n = names[(i + t) % names.size()];
          Result<ParsedDocument> r = pdf_parser()->parse(fixture(n), {});
          got[t].push_back(n + "\n" + (r.is_ok() ? render(*r) : r.status().to_string()));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (const std::string& g : got[t]) {
      const std::string name = g.substr(0, g.find('\n'));
      const size_t i = static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
      EXPECT_EQ(g.substr(name.size() + 1), expected[i]) << name;
    }
  }
}

// ---- DOCX ----

TEST_F(DocxParser, Format) {
  EXPECT_EQ(docx_parser()->format(), "docx");
}

TEST_F(DocxParser, HeadingsListsTablesAndChinese) {
  ParsedDocument doc = parse_ok(docx_parser(), "sample.docx");
  EXPECT_EQ(doc.title, "Sluice 使用手册");
  EXPECT_EQ(doc.pages, 0);
  expect_blocks_nonempty(doc);
  sluice::test::expect_golden("parse/sample.docx.txt", render(doc));
}

TEST_F(DocxParser, DamagedZipIsBadInput) {
  expect_error(
      docx_parser(), "broken.docx", ErrorClass::kBadInput,
      "damaged DOCX: '" + fixture("broken.docx") + "' is not a readable zip archive (Not a zip archive)");
}

TEST_F(DocxParser, ZipWithoutDocumentIsBadInput) {
  expect_error(docx_parser(), "not_docx.docx", ErrorClass::kBadInput,
               "not a DOCX: '" + fixture("not_docx.docx") + "' is a zip archive without word/document.xml");
}

TEST_F(DocxParser, MalformedXmlIsBadInput) {
  Result<ParsedDocument> r = docx_parser()->parse(fixture("bad_xml.docx"), {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  const std::string prefix =
      "damaged DOCX: '" + fixture("bad_xml.docx") + "': word/document.xml is not well-formed XML (line ";
  EXPECT_EQ(r.status().message().substr(0, prefix.size()), prefix) << r.status().message();
}

TEST_F(DocxParser, PdfIsNotAZip) {
  expect_error(
      docx_parser(), "english.pdf", ErrorClass::kBadInput,
      "damaged DOCX: '" + fixture("english.pdf") + "' is not a readable zip archive (Not a zip archive)");
}

TEST_F(DocxParser, OverMaxBytesIsResourceLimit) {
  ParseOptions opts;
  opts.max_bytes = 100;
  expect_error(docx_parser(), "sample.docx", ErrorClass::kResourceLimit,
               "DOCX too large: '" + fixture("sample.docx") +
                   "' is 2541 bytes, over the limit of 100 bytes (max_bytes)",
               opts);
}

// A small file may still unpack to more than the limit (a zip bomb): checked per part.
TEST_F(DocxParser, PartOverMaxBytesIsResourceLimit) {
  ParseOptions opts;
  opts.max_bytes = 20000;  // the file (5 KB) fits, its word/document.xml (150 KB) does not
  expect_error(docx_parser(), "big_part.docx", ErrorClass::kResourceLimit,
               "DOCX part too large: '" + fixture("big_part.docx") +
                   "': word/document.xml unpacks to 153559 bytes, over the limit of 20000 bytes (max_bytes)",
               opts);
  ParsedDocument doc = parse_ok(docx_parser(), "big_part.docx");
  EXPECT_EQ(doc.blocks.size(), 1500u);
}

// ---- through parse_file ----

TEST_F(PdfParser, ParseFileDispatchesToPdf) {
  Result<ParsedDocument> r = parse_file(fixture("english.pdf"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(render(*r), render(parse_ok(pdf_parser(), "english.pdf")));
  Result<ParsedDocument> enc = parse_file(fixture("encrypted.pdf"));
  ASSERT_FALSE(enc.is_ok());
  EXPECT_EQ(enc.status().error_class(), ErrorClass::kBadInput);
}

TEST_F(DocxParser, ParseFileDispatchesToDocx) {
  Result<ParsedDocument> r = parse_file(fixture("sample.docx"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(render(*r), render(parse_ok(docx_parser(), "sample.docx")));
  Result<ParsedDocument> broken = parse_file(fixture("broken.docx"));
  ASSERT_FALSE(broken.is_ok());
  EXPECT_EQ(broken.status().error_class(), ErrorClass::kBadInput);
}

}  // namespace
}  // namespace sluice::parse
