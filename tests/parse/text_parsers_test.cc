// Tests of format detection, text decoding and the text-family parsers (text, markdown, html, csv,
// json) on the fixtures of tests/fixtures/parse, with goldens in tests/golden/parse.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "parse/formats.h"
#include "parse/parse_test_util.h"
#include "parse/parser.h"
#include "support/golden.h"

namespace sluice::parse {
namespace {

namespace fs = std::filesystem;

std::string render(const ParsedDocument& doc) {
  return "format: " + doc.format + "\ntitle: " + escape(doc.title) + "\nencoding: " + doc.encoding + "\n" +
         render_body(doc);
}

ParsedDocument parse_ok(const std::string& name) {
  Result<ParsedDocument> r = parse_file(fixture(name));
  EXPECT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : ParsedDocument{};
}

// Parses a fixture through parse_file, checks the detected format and compares with its golden.
ParsedDocument golden(const std::string& name, const std::string& format) {
  ParsedDocument doc = parse_ok(name);
  EXPECT_EQ(doc.format, format) << name;
  for (const Block& b : doc.blocks) EXPECT_FALSE(b.text.empty()) << name;
  sluice::test::expect_golden("parse/" + name + ".txt", render(doc));
  return doc;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A scratch directory for files a test writes, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("sluice-parse-" + std::to_string(::getpid()) + "-" + std::to_string(next_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int next_ = 0;
  fs::path path_;
};

// Parses bytes written to a scratch file of the given name.
ParsedDocument parse_bytes(const std::string& name, const std::string& bytes) {
  TempDir dir;
  Result<ParsedDocument> r = parse_file(dir.write(name, bytes));
  EXPECT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : ParsedDocument{};
}

std::vector<std::string> texts(const ParsedDocument& doc) {
  std::vector<std::string> out;
  for (const Block& b : doc.blocks) out.push_back(b.text);
  return out;
}

// ---- decode_text ----

TEST(DecodeText, Utf8WithAndWithoutBom) {
  std::string enc;
  EXPECT_EQ(decode_text("h\xC3\xA9llo \xE4\xB8\xAD", &enc).value(), "h\xC3\xA9llo \xE4\xB8\xAD");
  EXPECT_EQ(enc, "utf-8");
  enc.clear();
  EXPECT_EQ(decode_text("\xEF\xBB\xBFtext", &enc).value(), "text");
  EXPECT_EQ(enc, "utf-8");
}

TEST(DecodeText, Utf16WithBom) {
  std::string enc;
  // "A中" and U+1F600 (a surrogate pair).
  EXPECT_EQ(decode_text(std::string("\xFF\xFE"
                                    "A\0\x2D\x4E\x3D\xD8\x00\xDE",
                                    10),
                        &enc)
                .value(),
            "A\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(enc, "utf-16le");
  EXPECT_EQ(decode_text(std::string("\xFE\xFF\0A\x4E\x2D", 6), &enc).value(), "A\xE4\xB8\xAD");
  EXPECT_EQ(enc, "utf-16be");
}

TEST(DecodeText, Gb18030WhenNotUtf8) {
  std::string enc;
  // "中文" in GBK.
  EXPECT_EQ(decode_text("\xD6\xD0\xCE\xC4", &enc).value(), "\xE4\xB8\xAD\xE6\x96\x87");
  EXPECT_EQ(enc, "gb18030");
}

TEST(DecodeText, BinaryIsBadInput) {
  for (const std::string& bytes : {std::string("abc\0def", 7), std::string("\x80\x81\xFF\xFE\x00\x01", 6),
                                   std::string("\xFF\xFE\x00\xD8", 4) /* unpaired surrogate */,
                                   std::string("\x01\x02\x03\x04\x05\x06 binary", 13)}) {
    std::string enc = "unchanged";
    Result<std::string> r = decode_text(bytes, &enc);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
    EXPECT_TRUE(contains(r.status().message(), "does not look like text (binary data)"))
        << r.status().message();
    EXPECT_EQ(enc, "unchanged");
  }
}

TEST(DecodeText, PrefixDropsACharacterCutInHalf) {
  std::string enc;
  EXPECT_FALSE(decode_text("ab\xE4\xB8", &enc).is_ok() && enc == "utf-8");
  EXPECT_EQ(decode_text_prefix("ab\xE4\xB8", &enc).value(), "ab");
  EXPECT_EQ(enc, "utf-8");
  EXPECT_EQ(decode_text_prefix(std::string("\xFF\xFE"
                                           "A\0B",
                                           5),
                               &enc)
                .value(),
            "A");
}

// ---- detect_format ----

TEST(DetectFormat, MagicBytes) {
  EXPECT_EQ(detect_format("%PDF-1.7\n...", "x.bin").value(), "pdf");
  EXPECT_EQ(detect_format(std::string("PK\x03\x04....word/document.xml", 25), "upload").value(), "docx");
  EXPECT_EQ(detect_format(std::string("PK\x03\x04....docProps/core.xml", 24), "a.docx").value(), "docx");
  Result<std::string> zip = detect_format(std::string("PK\x03\x04....readme.txt", 18), "a.zip");
  ASSERT_FALSE(zip.is_ok());
  EXPECT_EQ(zip.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(zip.status().message(), "unsupported format: looks like a zip archive");
  Result<std::string> xlsx = detect_format(std::string("PK\x03\x04....xl/workbook.xml", 24), "a.xlsx");
  ASSERT_FALSE(xlsx.is_ok());
  EXPECT_EQ(xlsx.status().message(), "unsupported format: looks like an Excel (XLSX) workbook");
  // The images OCR reads, whatever their name says; other images are refused by name.
  EXPECT_EQ(detect_format("\x89PNG\r\n\x1A\n....", "photo.txt").value(), "png");
  EXPECT_EQ(detect_format("\xFF\xD8\xFF\xE0....", "scan").value(), "jpeg");
  EXPECT_EQ(detect_format(std::string("II*\0....", 8), "a.pdf").value(), "tiff");
  EXPECT_EQ(detect_format(std::string("MM\0*....", 8), "").value(), "tiff");
  Result<std::string> gif = detect_format("GIF89a....", "anim.gif");
  ASSERT_FALSE(gif.is_ok());
  EXPECT_EQ(gif.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(gif.status().message(), "unsupported format: looks like a GIF image");
}

TEST(DetectFormat, ContentBeatsTheName) {
  EXPECT_EQ(detect_format("<!DOCTYPE html><html><body>x</body></html>", "page.txt").value(), "html");
  EXPECT_EQ(detect_format("  <html lang=en><p>x", "").value(), "html");
  EXPECT_EQ(detect_format("<?xml version=\"1.0\"?>\n<!-- c -->\n<html>", "").value(), "html");
  EXPECT_EQ(detect_format("<div>fragment</div>", "noext").value(), "html");
  EXPECT_EQ(detect_format("<custom>x</custom>", "a.htm").value(), "html");
  EXPECT_EQ(detect_format("<notatag> is not html", "notes").value(), "text");
  EXPECT_EQ(detect_format("{\"a\": [1, 2]}", "data.txt").value(), "json");
  EXPECT_EQ(detect_format("[1, 2, 3]", "").value(), "json");
  EXPECT_EQ(detect_format("{\"a\": 1}\n{\"a\": 2}\n", "events.log").value(), "json");  // JSON Lines
}

TEST(DetectFormat, NamesOfTheTextFamily) {
  EXPECT_EQ(detect_format("just words", "readme.md").value(), "markdown");
  EXPECT_EQ(detect_format("just words", "readme.MARKDOWN").value(), "markdown");
  EXPECT_EQ(detect_format("a;b\n", "t.csv").value(), "csv");
  EXPECT_EQ(detect_format("a\tb\n", "t.TSV").value(), "csv");
  // Malformed but named JSON goes to the JSON parser, which says where it breaks.
  EXPECT_EQ(detect_format("{\"a\": ", "x.json").value(), "json");
  EXPECT_EQ(detect_format("[not json", "notes").value(), "text");
  // A .txt name outweighs weak hints (a "# comment" line).
  EXPECT_EQ(detect_format("# not a heading\nplain", "notes.txt").value(), "text");
}

TEST(DetectFormat, WeakContentHints) {
  EXPECT_EQ(detect_format("# Title\n\nSome text.\n", "README").value(), "markdown");
  EXPECT_EQ(detect_format("Text\n```\ncode\n```\n", "").value(), "markdown");
  EXPECT_EQ(detect_format("a,b,c\n1,2,3\n4,\"5,5\",6\n", "export").value(), "csv");
  EXPECT_EQ(detect_format("a;b\n1;2\n3;4\n", "").value(), "csv");
  // Prose with commas does not agree on a count line after line.
  EXPECT_EQ(detect_format("Hello, world.\nNo commas here\nOne, two, three.\n", "").value(), "text");
  EXPECT_EQ(detect_format("only two, lines\nof, text\n", "").value(), "text");
  EXPECT_EQ(detect_format("Plain words.\n", "").value(), "text");
  EXPECT_EQ(detect_format("\xD6\xD0\xCE\xC4", "gbk").value(), "text");
  EXPECT_EQ(detect_format("   \n\n", "blank").value(), "text");
}

TEST(DetectFormat, HeadCutShortStillDetects) {
  // A large JSON array whose head ends mid-value, and UTF-8 cut inside a character.
  std::string json = "[";
  while (json.size() < kDetectHeadBytes) json += "{\"k\": \"\xE4\xB8\xAD\xE6\x96\x87\"},";
  EXPECT_EQ(detect_format(std::string_view(json).substr(0, kDetectHeadBytes), "big").value(), "json");
  std::string text;
  while (text.size() < kDetectHeadBytes) text += "\xE4\xB8\xAD";
  EXPECT_EQ(detect_format(std::string_view(text).substr(0, kDetectHeadBytes), "big").value(), "text");
}

TEST(DetectFormat, EmptyAndBinary) {
  Result<std::string> empty = detect_format("", "a.txt");
  ASSERT_FALSE(empty.is_ok());
  EXPECT_EQ(empty.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(empty.status().message(), "empty file");
  Result<std::string> junk = detect_format(std::string("\x00\x01\x02garbage\xFF", 11), "a.txt");
  ASSERT_FALSE(junk.is_ok());
  EXPECT_EQ(junk.status().error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(contains(junk.status().message(), "does not look like text (binary data)"))
      << junk.status().message();
}

// ---- registry ----

TEST(ParseRegistry, EveryFormatHasItsParser) {
  for (std::string_view f : {"text", "markdown", "html", "csv", "json", "pdf", "docx"}) {
    Parser* p = parser_for(f);
    ASSERT_NE(p, nullptr) << f;
    EXPECT_EQ(p->format(), f);
  }
  EXPECT_EQ(parser_for("xlsx"), nullptr);
  EXPECT_EQ(parser_for(""), nullptr);
}

// ---- plain text ----

TEST(ParseText, ParagraphsOnBlankLines) {
  ParsedDocument doc = golden("plain.txt", "text");
  EXPECT_EQ(doc.encoding, "utf-8");
  ASSERT_EQ(doc.blocks.size(), 3u);
  EXPECT_EQ(doc.blocks[2].text,
            "A second paragraph, after two blank lines,\n    with an indented line kept as is.");
}

TEST(ParseText, CrLfLineEndings) {
  ParsedDocument doc = parse_ok("crlf.txt");
  EXPECT_EQ(texts(doc), (std::vector<std::string>{"Windows line endings.\nSecond line.", "Next paragraph."}));
}

TEST(ParseText, ChineseUtf8) {
  ParsedDocument doc = golden("chinese_utf8.txt", "text");
  EXPECT_EQ(doc.encoding, "utf-8");
  ASSERT_EQ(doc.blocks.size(), 3u);
  EXPECT_EQ(doc.blocks[0].text, "文档摄取引擎");
}

TEST(ParseText, ChineseUtf8BomIsStripped) {
  ParsedDocument bom = parse_ok("chinese_utf8_bom.txt");
  EXPECT_EQ(bom.encoding, "utf-8");
  EXPECT_EQ(texts(bom), texts(parse_ok("chinese_utf8.txt")));
}

TEST(ParseText, ChineseGbkIsConverted) {
  ParsedDocument doc = golden("chinese_gbk.txt", "text");
  EXPECT_EQ(doc.encoding, "gb18030");
  // The same text as the UTF-8 file it was made from with iconv.
  EXPECT_EQ(texts(doc), texts(parse_ok("chinese_utf8.txt")));
}

TEST(ParseText, Utf16WithBom) {
  ParsedDocument le = golden("utf16le_bom.txt", "text");
  EXPECT_EQ(le.encoding, "utf-16le");
  ParsedDocument be = golden("utf16be_bom.txt", "text");
  EXPECT_EQ(be.encoding, "utf-16be");
  EXPECT_EQ(texts(le), texts(be));
  ASSERT_EQ(le.blocks.size(), 2u);
  EXPECT_EQ(le.blocks[1].text, "第二段：带字节顺序标记的文本 \xF0\x9F\x98\x80");
}

TEST(ParseText, WhitespaceOnlyWarns) {
  ParsedDocument doc = parse_bytes("blank.txt", "  \n\t\n");
  EXPECT_TRUE(doc.blocks.empty());
  ASSERT_EQ(doc.warnings.size(), 1u);
}

// ---- markdown ----

TEST(ParseMarkdown, HeadingsListsCodeTables) {
  ParsedDocument doc = golden("guide.md", "markdown");
  EXPECT_EQ(doc.title, "Sluice Operator Guide");  // from the front matter
  auto has = [&](BlockKind k, int level, const std::string& text) {
    for (const Block& b : doc.blocks) {
      if (b.kind == k && b.level == level && b.text == text) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(BlockKind::kHeading, 1, "Getting started with sluice"));
  EXPECT_TRUE(has(BlockKind::kHeading, 2, "Setext heading"));
  EXPECT_TRUE(has(BlockKind::kHeading, 2, "Configuration & tuning"));
  EXPECT_TRUE(has(BlockKind::kHeading, 3, "中文说明"));
  EXPECT_TRUE(has(BlockKind::kListItem, 0, "Run sluice ingest ./docs and wait for the results"));
  EXPECT_TRUE(has(BlockKind::kTableRow, 0, "Setting | Default | Meaning"));
  EXPECT_TRUE(has(BlockKind::kTableRow, 0, "--workers | 4 | parse workers | threads"));
  EXPECT_TRUE(has(BlockKind::kCode, 0, "sluice ingest ./docs \\\n    --workers 8"));
  EXPECT_TRUE(has(BlockKind::kParagraph, 0, "这是一个重要的段落，用于测试中文换行的连接。"));
  for (const Block& b : doc.blocks) {
    if (b.kind == BlockKind::kCode) continue;
    EXPECT_FALSE(contains(b.text, "**")) << b.text;
    EXPECT_FALSE(contains(b.text, "](")) << b.text;
    EXPECT_FALSE(contains(b.text, "<b>")) << b.text;
    EXPECT_FALSE(contains(b.text, "comment")) << b.text;
    EXPECT_FALSE(contains(b.text, "example.com/design")) << b.text;
  }
}

TEST(ParseMarkdown, SetextTitleAndHardBreak) {
  ParsedDocument doc = golden("notes.markdown", "markdown");
  EXPECT_EQ(doc.title, "Title from setext");
}

TEST(ParseMarkdown, InlineMarkup) {
  auto one = [](const std::string& md) {
    ParsedDocument doc = parse_bytes("x.md", md);
    return doc.blocks.empty() ? std::string() : doc.blocks[0].text;
  };
  EXPECT_EQ(one("**bold** and *em* and ***both***"), "bold and em and both");
  EXPECT_EQ(one("__bold__ and _em_ but snake_case_name stays"), "bold and em but snake_case_name stays");
  EXPECT_EQ(one("`a **literal** [x](y)` and ``with ` tick``"), "a **literal** [x](y) and with ` tick");
  EXPECT_EQ(one("[**text**](http://x \"t\") and ![alt](i.png) and [ref][1]"), "text and alt and ref");
  EXPECT_EQ(one("escaped \\*stars\\* and 2 * 3 * 4"), "escaped *stars* and 2 * 3 * 4");
  EXPECT_EQ(one("这是**重要**的"), "这是重要的");
  EXPECT_EQ(one("a [bracket] alone, a < b, AT&T"), "a [bracket] alone, a < b, AT&T");
  EXPECT_EQ(one("unmatched **star"), "unmatched **star");
}

TEST(ParseMarkdown, UnclosedFenceRunsToTheEnd) {
  ParsedDocument doc = parse_bytes("x.md", "# T\n\n```\ncode\n\nmore code\n");
  ASSERT_EQ(doc.blocks.size(), 2u);
  EXPECT_EQ(doc.blocks[1].kind, BlockKind::kCode);
  EXPECT_EQ(doc.blocks[1].text, "code\n\nmore code");
}

// ---- html ----

TEST(ParseHtml, BoilerplateIsDropped) {
  ParsedDocument doc = golden("page.html", "html");
  EXPECT_EQ(doc.title, "Rotating the WAL – sluice docs");
  EXPECT_EQ(doc.encoding, "utf-8");
  ASSERT_FALSE(doc.blocks.empty());
  EXPECT_EQ(doc.blocks[0].kind, BlockKind::kHeading);
  EXPECT_EQ(doc.blocks[0].text, "Rotating the WAL");  // the article's own <header> is kept
  for (const Block& b : doc.blocks) {
    EXPECT_FALSE(contains(b.text, "BOILERPLATE")) << b.text;
    EXPECT_FALSE(contains(b.text, "font-family")) << b.text;
  }
  bool footnote = false, table = false;
  for (const Block& b : doc.blocks) {
    footnote = footnote || b.text == "A footnote is content, not a footer.";
    table = table || (b.kind == BlockKind::kTableRow && b.text == "segment_bytes | 64\xC2\xA0MiB");
  }
  EXPECT_TRUE(footnote);
  EXPECT_TRUE(table);
}

// Read the Docs' theme wraps the whole page in containers named after the navigation beside it
// ("wy-body-for-nav", "wy-grid-for-nav", "wy-nav-content"): the article inside must survive, the
// navigation itself must not (every page of the Linux kernel's documentation looks like this).
TEST(ParseHtml, NavigationNamedWrapperKeepsTheArticle) {
  ParsedDocument doc = golden("rtd_page.html", "html");
  EXPECT_EQ(doc.title, "PCI Error Recovery \xE2\x80\x94 The Linux Kernel documentation");
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{
                "PCI Error Recovery",
                "Many PCI bus controllers are able to detect a variety of hardware PCI errors on the bus.",
                "Detailed Design",
                "The recovery is coordinated by the platform, which calls the driver's error callbacks."}));
}

TEST(ParseHtml, CharsetFromMeta) {
  ParsedDocument doc = golden("gbk_page.html", "html");
  EXPECT_EQ(doc.encoding, "gb18030");
  EXPECT_EQ(doc.title, "中文网页");
  EXPECT_EQ(texts(doc), (std::vector<std::string>{"标题", "这是用 GBK 编码的网页。"}));
}

TEST(ParseHtml, FragmentByName) {
  ParsedDocument doc = golden("fragment.htm", "html");
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{"A fragment without html or body, but with tags.", "Second."}));
}

// ---- csv ----

TEST(ParseCsv, QuotesAndEmbeddedNewlines) {
  ParsedDocument doc = golden("people.csv", "csv");
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{"name: Alice; city: Paris, France; notes: Says \"hello\"; score: 10",
                                      "name: Bob; city: Berlin; notes: Line one\nLine two",
                                      "name: 张三; city: 北京; notes: 中文备注; score: 7",
                                      "name: Eve; city: Oslo; score: 3; column 5: extra"}));
  for (const Block& b : doc.blocks) EXPECT_EQ(b.kind, BlockKind::kRecord);
}

TEST(ParseCsv, SemicolonAndTabDelimiters) {
  ParsedDocument semi = golden("semicolon.csv", "csv");
  ASSERT_EQ(semi.blocks.size(), 3u);
  EXPECT_EQ(semi.blocks[1].text, "id: 2; label: Gadget; deluxe; price: 10,00");
  ParsedDocument tsv = golden("words.tsv", "csv");
  EXPECT_EQ(texts(tsv),
            (std::vector<std::string>{"id: 1; word: dam; lang: en", "id: 2; word: 水坝; lang: zh"}));
}

TEST(ParseCsv, DetectedByContent) {
  ParsedDocument doc = parse_ok("nocsvname.dat");
  EXPECT_EQ(doc.format, "csv");
  EXPECT_EQ(texts(doc), (std::vector<std::string>{"a: 1; b: 2", "a: 3; b: 4", "a: 5; b: 6"}));
}

TEST(ParseCsv, UnclosedQuoteWarns) {
  ParsedDocument doc = parse_bytes("x.csv", "a,b\n1,\"open\n2,3\n");
  EXPECT_EQ(texts(doc), (std::vector<std::string>{"a: 1; b: open\n2,3"}));
  ASSERT_EQ(doc.warnings.size(), 1u);
}

// ---- json ----

TEST(ParseJson, ArrayOfObjects) {
  ParsedDocument doc = golden("items.json", "json");
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{
                "id: 1; name: sluice; tags: queue, ingest; owner.name: Ops; owner.email: ops@example.com",
                "id: 2; name: 文档; active: false; score: 2.5",
                "id: 3; parts[0].kind: pdf; parts[0].pages: 10; parts[1].kind: docx", "a bare string"}));
}

TEST(ParseJson, ObjectRecordsPerTopLevelKey) {
  ParsedDocument doc = golden("object.json", "json");
  EXPECT_EQ(
      texts(doc),
      (std::vector<std::string>{
          "version: 2; name: catalog", "users.id: u1; users.role: admin", "users.id: u2; users.role: reader",
          "settings.retention.days: 7; settings.compression: lz4", "comment: after the containers"}));
  EXPECT_EQ(texts(parse_ok("flat.json")), (std::vector<std::string>{"key: value; n: 1"}));
}

TEST(ParseJson, JsonLines) {
  ParsedDocument doc = golden("events.jsonl", "json");
  EXPECT_EQ(texts(doc),
            (std::vector<std::string>{"event: upload; doc: a.pdf", "event: parsed; doc: a.pdf; pages: 3",
                                      "event: indexed; doc: a.pdf; chunks: 1, 2"}));
}

// ---- bad input ----

TEST(ParseErrors, EmptyFile) {
  const std::string path = fixture("empty.txt");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(r.status().message(), "parse '" + path + "': empty file");
  for (Parser* p : {text_parser(), markdown_parser(), html_parser(), csv_parser(), json_parser()}) {
    Result<ParsedDocument> d = p->parse(path, {});
    ASSERT_FALSE(d.is_ok()) << p->format();
    EXPECT_EQ(d.status().error_class(), ErrorClass::kBadInput);
    EXPECT_EQ(d.status().message(), "'" + path + "': empty file");
  }
}

TEST(ParseErrors, BinaryJunkNamedTxt) {
  const std::string path = fixture("junk.txt");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(r.status().message().starts_with("parse '" + path + "': does not look like text (binary data)"))
      << r.status().message();
  // The text parser on its own says the same.
  Result<ParsedDocument> direct = text_parser()->parse(path, {});
  ASSERT_FALSE(direct.is_ok());
  EXPECT_EQ(direct.status().error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(contains(direct.status().message(), "does not look like text (binary data)"));
}

TEST(ParseErrors, MalformedJsonNamesLineAndColumn) {
  const std::string path = fixture("malformed.json");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  // Line 4 is `  "missing": "comma"`: the comma before it is missing.
  EXPECT_TRUE(r.status().message().starts_with("parse '" + path + "': malformed JSON at line 4, column 3: "))
      << r.status().message();
}

TEST(ParseErrors, MalformedJsonLinesNamesTheLine) {
  const std::string path = fixture("malformed.jsonl");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  // Line 3 is `{"ok": 3,}`: a key expected at the closing brace, the tenth character.
  EXPECT_TRUE(
      r.status().message().starts_with("parse '" + path + "': malformed JSON Lines at line 3, column 10: "))
      << r.status().message();
}

TEST(ParseErrors, OverMaxBytesIsResourceLimit) {
  ParseOptions opts;
  opts.max_bytes = 16;
  for (const std::string name : {"plain.txt", "guide.md", "page.html", "people.csv", "items.json"}) {
    const std::string path = fixture(name);
    const auto size = fs::file_size(path);
    const std::string want =
        "'" + path + "' is " + std::to_string(size) + " bytes, over the limit of 16 bytes (max_bytes)";
    Result<ParsedDocument> r = parse_file(path, opts);
    ASSERT_FALSE(r.is_ok()) << name;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kResourceLimit) << name;
    EXPECT_EQ(r.status().message(), want);
  }
  for (Parser* p : {text_parser(), markdown_parser(), html_parser(), csv_parser(), json_parser()}) {
    Result<ParsedDocument> r = p->parse(fixture("plain.txt"), opts);
    ASSERT_FALSE(r.is_ok()) << p->format();
    EXPECT_EQ(r.status().error_class(), ErrorClass::kResourceLimit) << p->format();
  }
}

TEST(ParseErrors, ExactlyAtMaxBytesIsFine) {
  ParseOptions opts;
  opts.max_bytes = fs::file_size(fixture("plain.txt"));
  EXPECT_TRUE(parse_file(fixture("plain.txt"), opts).is_ok());
  opts.max_bytes -= 1;
  EXPECT_EQ(parse_file(fixture("plain.txt"), opts).status().error_class(), ErrorClass::kResourceLimit);
}

// A file gone before detection, or between detection and parsing (the parser is called on a path
// that no longer exists): kBadInput, since retrying cannot bring it back.
TEST(ParseErrors, MissingFile) {
  TempDir dir;
  const std::string path = dir.path("gone.txt");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "file not found: '" + path + "'");
  for (Parser* p : {text_parser(), markdown_parser(), html_parser(), csv_parser(), json_parser()}) {
    Result<ParsedDocument> d = p->parse(path, {});
    ASSERT_FALSE(d.is_ok()) << p->format();
    EXPECT_EQ(d.status().error_class(), ErrorClass::kBadInput) << p->format();
    EXPECT_EQ(d.status().message(), "file not found: '" + path + "'");
  }
}

TEST(ParseErrors, DirectoryIsBadInput) {
  TempDir dir;
  const std::string path = dir.path("");
  Result<ParsedDocument> r = parse_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(contains(r.status().message(), "is a directory")) << r.status().message();
}

// Every text parser on every fixture (PDF, DOCX and binary junk included): a document or a
// kBadInput, never a crash or another class.
TEST(ParseRobustness, EveryParserOnEveryFixture) {
  for (const auto& entry : fs::directory_iterator(fixture(""))) {
    if (!entry.is_regular_file()) continue;
    for (Parser* p : {text_parser(), markdown_parser(), html_parser(), csv_parser(), json_parser()}) {
      Result<ParsedDocument> r = p->parse(entry.path().string(), {});
      if (r.is_ok()) {
        for (const Block& b : r->blocks) EXPECT_FALSE(b.text.empty()) << entry.path() << " " << p->format();
      } else {
        EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput)
            << entry.path() << " " << r.status().to_string();
      }
    }
  }
}

TEST(ParseRobustness, DeepNestingAndOddBytes) {
  TempDir dir;
  std::string deep_json(100000, '[');
  Result<ParsedDocument> j =
      json_parser()->parse(dir.write("deep.json", deep_json + "1" + std::string(100000, ']')), {});
  ASSERT_FALSE(j.is_ok());
  EXPECT_EQ(j.status().error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(contains(j.status().message(), "JSON nested deeper than 512 levels at line 1, column 513"))
      << j.status().message();
  // Deep but allowed: kept as compact JSON below 64 levels.
  Result<ParsedDocument> ok = json_parser()->parse(
      dir.write("deep_ok.json", "{\"a\": " + std::string(300, '[') + "1" + std::string(300, ']') + "}"), {});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  ASSERT_EQ(ok->blocks.size(), 1u);
  const std::string& t = ok->blocks[0].text;
  EXPECT_TRUE(t.starts_with("a[0][0][0]")) << t.substr(0, 80);
  EXPECT_TRUE(contains(t, "]: [[[")) << t.substr(0, 80);
  EXPECT_TRUE(contains(t, "[[1]]")) << t.substr(t.size() - 20);
  std::string deep_html;
  for (int i = 0; i < 5000; ++i) deep_html += "<div><span>";
  deep_html += "deep text";
  EXPECT_TRUE(html_parser()->parse(dir.write("deep.html", deep_html), {}).is_ok());
  std::string md;
  for (int i = 0; i < 2000; ++i) md += "> ";
  md += "quoted\n" + std::string(5000, '*') + std::string(3000, '[') + std::string(3000, '`');
  Result<ParsedDocument> m = markdown_parser()->parse(dir.write("odd.md", md), {});
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  Result<ParsedDocument> c = csv_parser()->parse(dir.write("odd.csv", "\"\"\"\n,,\n\"a\"b\"\n"), {});
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
}

// ---- threads ----

TEST(ParseConcurrency, ParsersAreStateless) {
  const std::vector<std::string> names = {"plain.txt",  "chinese_gbk.txt", "utf16le_bom.txt",
                                          "guide.md",   "page.html",       "gbk_page.html",
                                          "people.csv", "items.json",      "events.jsonl"};
  std::vector<std::string> expected;
  for (const std::string& n : names) expected.push_back(render(parse_ok(n)));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        for (size_t i = 0; i < names.size(); ++i) {
          Result<ParsedDocument> r = parse_file(fixture(names[i]));
          if (!r.is_ok() || render(*r) != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace sluice::parse
