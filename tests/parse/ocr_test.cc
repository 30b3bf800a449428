// Tests of OCR (src/parse/ocr.cc), the image parser (image.cc) and OCR'd PDF pages (pdf.cc):
// pages of real PDFs (tests/support/ocr_accuracy.h names them; scripts/setup.sh installs them) are
// rendered with pdftoppm, recognised, and compared with the PDF's own text layer (pdftotext). The
// character accuracy is printed and recorded as a test property; the floors asserted are below what
// is measured (see each test) so that they catch a broken pipeline (wrong language, garbled
// rendering, lost pages, spaces between Han characters), not tesseract's own noise.
#include "parse/ocr.h"

#include <gtest/gtest.h>
#include <leptonica/allheaders.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/utf8.h"
#include "parse/formats.h"
#include "parse/parser.h"
#include "support/golden.h"
#include "support/ocr_accuracy.h"

namespace sluice::parse {
namespace {

namespace fs = std::filesystem;
using sluice::test::character_accuracy;

// English pages of the libtasn1 manual: prose with code words (p5) and a function reference (p20).
constexpr int kEnglishPages[] = {5, 20};
// A page of the Chinese maintainers' guide, mostly Chinese with package names and URLs.
constexpr int kChinesePage = 10;

std::string all_text(const ParsedDocument& doc) {
  std::string out;
  for (const Block& b : doc.blocks) out += b.text + "\n";
  return out;
}

class Ocr : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [pdf, pkg] : {std::pair{sluice::test::kEnglishPdf, sluice::test::kEnglishPdfPackage},
                                   std::pair{sluice::test::kChinesePdf, sluice::test::kChinesePdfPackage}}) {
      ASSERT_TRUE(fs::exists(pdf)) << pdf << " is missing: install " << pkg << " (scripts/setup.sh does)";
    }
    dir_ = fs::temp_directory_path() / ("sluice-ocr-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string render(const char* pdf, int page, const std::string& format = "png") {
    const std::string base = (dir_ / ("page" + std::to_string(page))).string();
    std::string path = sluice::test::render_page(pdf, page, base, format);
    EXPECT_FALSE(path.empty()) << "pdftoppm could not render page " << page << " of " << pdf;
    return path;
  }

  static std::string reference(const char* pdf, int page) {
    bool ok = false;
    std::string text = sluice::test::pdf_page_text(pdf, page, &ok);
    EXPECT_TRUE(ok) << "pdftotext failed on page " << page << " of " << pdf;
    return text;
  }

  ParsedDocument parse_ok(const std::string& path, const ParseOptions& opts = {}) {
    Result<ParsedDocument> r = parse_file(path, opts);
    EXPECT_TRUE(r.is_ok()) << path << ": " << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : ParsedDocument{};
  }

  // Records and prints a measured accuracy.
  static void report(const std::string& what, double accuracy) {
    ::testing::Test::RecordProperty(what, std::to_string(accuracy));
    std::printf("[ accuracy ] %s: %.2f%%\n", what.c_str(), accuracy * 100);
  }

  fs::path dir_;
};

// True when the text has a space between two Han characters (what tesseract's word boxes give for
// Chinese unless the words are joined as ocr.h says).
bool has_space_between_han(const std::string& text) {
  std::u32string cps;
  for (size_t i = 0; i < text.size();) cps.push_back(utf8::decode(text, i));
  auto han = [](char32_t c) { return c >= 0x4E00 && c <= 0x9FFF; };
  for (size_t i = 1; i + 1 < cps.size(); ++i) {
    if (cps[i] == ' ' && han(cps[i - 1]) && han(cps[i + 1])) return true;
  }
  return false;
}

// Writes pixa as an image-only PDF (leptonica's writer: one picture per page, no text layer).
void write_image_pdf(Pixa* pixa, const std::string& path) {
  ASSERT_EQ(pixaConvertToPdf(pixa, 300, 1.0, L_FLATE_ENCODE, 0, "scan", path.c_str()), 0);
}

// ---- words into paragraphs ----

TEST(OcrWords, CjkJoinsWithoutSpaces) {
  std::string p;
  append_ocr_word(p, "需要", false);
  append_ocr_word(p, "的", false);
  append_ocr_word(p, "开发文档", false);
  EXPECT_EQ(p, "需要的开发文档");
  append_ocr_word(p, "debian-policy", false);
  append_ocr_word(p, "手册", false);
  EXPECT_EQ(p, "需要的开发文档 debian-policy 手册");
  append_ocr_word(p, "。", false);  // CJK punctuation sticks too
  EXPECT_EQ(p, "需要的开发文档 debian-policy 手册。");
}

TEST(OcrWords, LinesJoinLikeThePdfParser) {
  std::string p;
  append_ocr_word(p, "an", false);
  append_ocr_word(p, "inter-", false);
  append_ocr_word(p, "national", true);  // hyphenated across lines: kept for the cleaner
  append_ocr_word(p, "standard", true);
  EXPECT_EQ(p, "an inter-\nnational standard");
  std::string zh;
  append_ocr_word(zh, "软件", false);
  append_ocr_word(zh, "包", true);  // a line break inside Chinese text is no space
  EXPECT_EQ(zh, "软件包");
}

TEST(OcrLanguages, PackageNames) {
  EXPECT_EQ(ocr_language_package("eng"), "tesseract-ocr-eng");
  EXPECT_EQ(ocr_language_package("chi_sim"), "tesseract-ocr-chi-sim");
  EXPECT_EQ(ocr_language_package("chi_tra_vert"), "tesseract-ocr-chi-tra-vert");
}

TEST(OcrLanguages, DefaultLanguagesAreInstalled) {
  Status st = check_ocr_languages(OcrOptions{});
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

TEST(OcrLanguages, MissingLanguageSaysWhatToInstall) {
  OcrOptions o;
  o.languages = "eng+xyz_nope";
  Status st = check_ocr_languages(o);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kFatal);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("OCR language 'xyz_nope' is not installed"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("install tesseract-ocr-xyz-nope"), std::string::npos) << st.message();

  o.languages = "eng++chi_sim";
  st = check_ocr_languages(o);
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  o.languages = "../etc/passwd";
  EXPECT_EQ(check_ocr_languages(o).error_class(), ErrorClass::kBadInput);
}

// A machine with only the English pack (TESSDATA_PREFIX pointing at a directory holding it) is
// told to install the Chinese one, both by the check and when a page is read.
TEST_F(Ocr, MissingChinesePackNamesThePackage) {
  const char* old = std::getenv("TESSDATA_PREFIX");
  const std::string saved = old ? old : "";
  const fs::path data = dir_ / "tessdata";
  fs::create_directories(data);
  fs::create_symlink("/usr/share/tesseract-ocr/5/tessdata/eng.traineddata", data / "eng.traineddata");
  ::setenv("TESSDATA_PREFIX", data.c_str(), 1);
  const std::string png = render(sluice::test::kEnglishPdf, kEnglishPages[0]);
  // On a thread of its own: this thread's engine may have been made by an earlier test.
  Result<ParsedDocument> r = Status::internal("not run");
  std::thread([&] { r = parse_file(png, {}); }).join();
  Status st = check_ocr_languages(OcrOptions{});
  if (old) {
    ::setenv("TESSDATA_PREFIX", saved.c_str(), 1);
  } else {
    ::unsetenv("TESSDATA_PREFIX");
  }
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("install tesseract-ocr-chi-sim"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(data.string()), std::string::npos) << st.message();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kFatal);
  EXPECT_NE(r.status().message().find("install tesseract-ocr-chi-sim"), std::string::npos)
      << r.status().message();
}

// ---- accuracy on real pages ----

// Measured on Debian 12 (tesseract 5.3.0, eng+chi_sim, 300 dpi): 98-99% on both pages.
TEST_F(Ocr, EnglishPagesFromARealPdf) {
  for (int page : kEnglishPages) {
    const std::string png = render(sluice::test::kEnglishPdf, page);
    ParsedDocument doc = parse_ok(png);
    EXPECT_EQ(doc.format, "png");
    EXPECT_EQ(doc.pages, 1);
    ASSERT_EQ(doc.ocr.size(), 1u);
    EXPECT_FALSE(doc.ocr[0].empty);
    EXPECT_GT(doc.ocr[0].confidence, 80) << all_text(doc);
    for (const Block& b : doc.blocks) EXPECT_EQ(b.page, 1);
    const double acc = character_accuracy(all_text(doc), reference(sluice::test::kEnglishPdf, page));
    report("english_page_" + std::to_string(page), acc);
    EXPECT_GE(acc, 0.95) << all_text(doc);
  }
}

// Measured: about 93% with the default eng+chi_sim (the page mixes Chinese with package names and
// URLs); never a space between two Han characters.
TEST_F(Ocr, ChinesePageFromARealPdf) {
  const std::string png = render(sluice::test::kChinesePdf, kChinesePage);
  ParsedDocument doc = parse_ok(png);
  ASSERT_EQ(doc.ocr.size(), 1u);
  const std::string text = all_text(doc);
  const double acc = character_accuracy(text, reference(sluice::test::kChinesePdf, kChinesePage));
  report("chinese_page_" + std::to_string(kChinesePage), acc);
  EXPECT_GE(acc, 0.85) << text;
  EXPECT_FALSE(has_space_between_han(text)) << text;
  EXPECT_NE(text.find("开发文档"), std::string::npos) << text;
}

// ---- image formats ----

TEST_F(Ocr, JpegAndTiffToo) {
  const std::string ref = reference(sluice::test::kEnglishPdf, kEnglishPages[0]);
  for (const std::string format : {"jpeg", "tiff"}) {
    const std::string path = render(sluice::test::kEnglishPdf, kEnglishPages[0], format);
    ParsedDocument doc = parse_ok(path);
    EXPECT_EQ(doc.format, format);
    const double acc = character_accuracy(all_text(doc), ref);
    report(format + "_page", acc);
    EXPECT_GE(acc, 0.95) << format;
  }
}

// Every page of a multi-page TIFF is read, each block knowing its page.
TEST_F(Ocr, MultiPageTiff) {
  const std::string tif = (dir_ / "two.tif").string();
  for (int i = 0; i < 2; ++i) {
    const std::string png = render(sluice::test::kEnglishPdf, kEnglishPages[i]);
    Pix* pix = pixRead(png.c_str());
    ASSERT_NE(pix, nullptr);
    ASSERT_EQ(pixWriteTiff(tif.c_str(), pix, IFF_TIFF_ZIP, i == 0 ? "w" : "a"), 0);
    pixDestroy(&pix);
  }
  ParsedDocument doc = parse_ok(tif);
  EXPECT_EQ(doc.format, "tiff");
  EXPECT_EQ(doc.pages, 2);
  ASSERT_EQ(doc.ocr.size(), 2u);
  EXPECT_EQ(doc.ocr[1].page, 2);
  std::string page2;
  for (const Block& b : doc.blocks)
    if (b.page == 2) page2 += b.text + "\n";
  EXPECT_GE(character_accuracy(page2, reference(sluice::test::kEnglishPdf, kEnglishPages[1])), 0.95) << page2;
}

// A PNG with an alpha channel: a transparent background reads as white, not black.
TEST_F(Ocr, TransparentBackground) {
  const std::string png = render(sluice::test::kEnglishPdf, kEnglishPages[0]);
  Pix* read = pixRead(png.c_str());
  ASSERT_NE(read, nullptr);
  Pix* gray = pixConvertTo8(read, 0);
  pixDestroy(&read);
  Pix* inverted = pixInvert(nullptr, gray);                         // ink opaque, paper transparent
  Pix* rgb = pixCreate(pixGetWidth(gray), pixGetHeight(gray), 32);  // every colour black
  pixSetSpp(rgb, 4);
  ASSERT_EQ(pixSetRGBComponent(rgb, inverted, L_ALPHA_CHANNEL), 0);  // only the alpha draws the text
  const std::string out = (dir_ / "alpha.png").string();
  ASSERT_EQ(pixWrite(out.c_str(), rgb, IFF_PNG), 0);
  for (Pix* p : {gray, rgb, inverted}) pixDestroy(&p);
  ParsedDocument doc = parse_ok(out);
  EXPECT_GE(character_accuracy(all_text(doc), reference(sluice::test::kEnglishPdf, kEnglishPages[0])), 0.9);
}

// ---- PDFs ----

// A scanned PDF (pages that are only pictures, made here from rendered pages) is read by OCR in
// the default mode; with --ocr never its pages stay empty.
TEST_F(Ocr, ScannedOnlyPdf) {
  Pixa* pixa = pixaCreate(2);
  for (int page : kEnglishPages) {
    Pix* pix = pixRead(render(sluice::test::kEnglishPdf, page).c_str());
    ASSERT_NE(pix, nullptr);
    pixaAddPix(pixa, pix, L_INSERT);
  }
  const std::string pdf = (dir_ / "scan.pdf").string();
  write_image_pdf(pixa, pdf);
  pixaDestroy(&pixa);
  bool ok = false;
  EXPECT_EQ(sluice::test::run_command(
                "pdftotext -q " + sluice::test::shell_quote(pdf) + " - | tr -d '[:space:]'", &ok),
            "")
      << "the test PDF has a text layer";

  ParsedDocument doc = parse_ok(pdf);
  EXPECT_EQ(doc.format, "pdf");
  EXPECT_EQ(doc.pages, 2);
  ASSERT_EQ(doc.ocr.size(), 2u);
  EXPECT_EQ(doc.empty_pages, 0);
  for (int i = 0; i < 2; ++i) {
    std::string text;
    for (const Block& b : doc.blocks)
      if (b.page == i + 1) text += b.text + "\n";
    const double acc = character_accuracy(text, reference(sluice::test::kEnglishPdf, kEnglishPages[i]));
    report("scanned_pdf_page_" + std::to_string(i + 1), acc);
    EXPECT_GE(acc, 0.95) << text;
  }
  ASSERT_TRUE(mean_ocr_confidence(doc).has_value());
  EXPECT_GT(*mean_ocr_confidence(doc), 80);

  ParseOptions never;
  never.ocr.mode = OcrMode::kNever;
  ParsedDocument off = parse_ok(pdf, never);
  EXPECT_TRUE(off.blocks.empty());
  EXPECT_TRUE(off.ocr.empty());
  EXPECT_EQ(off.empty_pages, 2);
  EXPECT_EQ(off.warnings[0], "page 1 has no text layer (scanned?) and OCR is off (--ocr never)");
}

// --ocr always reads every page, even one with a text layer, in place of that layer; auto leaves a
// page with text alone.
TEST_F(Ocr, AlwaysReadsPagesWithText) {
  // A two-page slice of the real manual, text layer and all (pdfseparate + pdfunite, poppler-utils).
  const std::string part = (dir_ / "part.pdf").string();
  bool ok = false;
  sluice::test::run_command("pdfseparate -f 5 -l 6 " + sluice::test::shell_quote(sluice::test::kEnglishPdf) +
                                " " + sluice::test::shell_quote((dir_ / "p%d.pdf").string()) +
                                " && pdfunite " + sluice::test::shell_quote((dir_ / "p5.pdf").string()) +
                                " " + sluice::test::shell_quote((dir_ / "p6.pdf").string()) + " " +
                                sluice::test::shell_quote(part),
                            &ok);
  ASSERT_TRUE(ok) << "pdfseparate/pdfunite failed";
  ParsedDocument text_layer = parse_ok(part);
  EXPECT_TRUE(text_layer.ocr.empty());
  ParseOptions always;
  always.ocr.mode = OcrMode::kAlways;
  ParsedDocument ocr = parse_ok(part, always);
  ASSERT_EQ(ocr.ocr.size(), 2u);
  const double acc = character_accuracy(all_text(ocr), all_text(text_layer));
  report("always_vs_text_layer", acc);
  EXPECT_GE(acc, 0.95);
}

// The fixture whose page 2 is a small picture of the word "scanned" (tests/fixtures/parse).
TEST_F(Ocr, FixturePageWithAPicture) {
  ParsedDocument doc = parse_ok(sluice::test::source_path("tests/fixtures/parse/scanned_page.pdf"));
  ASSERT_EQ(doc.ocr.size(), 1u);
  EXPECT_EQ(doc.ocr[0].page, 2);
  std::string page2;
  for (const Block& b : doc.blocks) {
    if (b.page != 2) continue;
    for (char c : b.text) page2 += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  // A blocky bitmap font, 7 letters: tesseract 5.3 reads "Scammed".
  EXPECT_GE(character_accuracy(page2, "scanned"), 0.7) << page2;
}

// ---- errors ----

TEST_F(Ocr, OcrNeverRefusesImages) {
  const std::string png = render(sluice::test::kEnglishPdf, kEnglishPages[0]);
  ParseOptions never;
  never.ocr.mode = OcrMode::kNever;
  Result<ParsedDocument> r = parse_file(png, never);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(r.status().message(),
            "'" + png +
                "' is a PNG image, whose text only OCR can read, and OCR is off (--ocr never / "
                "SLUICE_OCR=never); ingest it with --ocr auto");
}

TEST_F(Ocr, CorruptImagesAreBadInput) {
  const std::string png = render(sluice::test::kEnglishPdf, kEnglishPages[0]);
  std::string bytes = sluice::test::read_text_file(png);
  struct Case {
    std::string name, data;
  };
  const std::vector<Case> cases = {
      {"truncated.png", bytes.substr(0, bytes.size() / 3)},
      {"header_only.png", bytes.substr(0, 40)},
      {"garbage.png", std::string("\x89PNG\r\n\x1A\n", 8) + std::string(5000, 'x')},
      {"garbage.jpg", std::string("\xFF\xD8\xFF\xE0", 4) + std::string(5000, '\x01')},
      {"garbage.tif", std::string("II*\0", 4) + std::string(5000, '\x07')},
  };
  for (const Case& c : cases) {
    const std::string path = (dir_ / c.name).string();
    std::ofstream(path, std::ios::binary) << c.data;
    Result<ParsedDocument> r = parse_file(path, {});
    ASSERT_FALSE(r.is_ok()) << c.name << " parsed";
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << c.name << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  }
}

TEST_F(Ocr, HugeImagesAreRefusedBeforeDecoding) {
  // 30000 x 30000 one-bit pixels compress to a few hundred kilobytes.
  Pix* pix = pixCreate(30000, 30000, 1);
  const std::string path = (dir_ / "huge.png").string();
  ASSERT_EQ(pixWrite(path.c_str(), pix, IFF_PNG), 0);
  pixDestroy(&pix);
  Result<ParsedDocument> r = parse_file(path, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kResourceLimit) << r.status().to_string();
  EXPECT_NE(r.status().message().find("30000x30000 pixels"), std::string::npos) << r.status().message();
}

// Noise reads as a little garbage with a low confidence: what the quality gate holds back.
TEST_F(Ocr, NoiseHasLowConfidence) {
  Pix* pix = pixCreate(800, 500, 8);
  std::mt19937 rng(1);
  for (int y = 0; y < 500; ++y)
    for (int x = 0; x < 800; ++x) pixSetPixel(pix, x, y, rng() % 256);
  pixSetResolution(pix, 300, 300);
  const std::string path = (dir_ / "noise.png").string();
  ASSERT_EQ(pixWrite(path.c_str(), pix, IFF_PNG), 0);
  pixDestroy(&pix);
  ParsedDocument doc = parse_ok(path);
  ASSERT_EQ(doc.ocr.size(), 1u);
  EXPECT_LT(doc.ocr[0].confidence, 40) << all_text(doc);
}

// One engine per thread: pages recognised on two threads at once come out as on one.
TEST_F(Ocr, TwoThreadsAtOnce) {
  const std::string a = render(sluice::test::kEnglishPdf, kEnglishPages[0]);
  const std::string b = render(sluice::test::kEnglishPdf, kEnglishPages[1]);
  const std::string one_a = all_text(parse_ok(a)), one_b = all_text(parse_ok(b));
  std::string two_a, two_b;
  std::thread t([&] { two_a = all_text(parse_ok(a)); });
  two_b = all_text(parse_ok(b));
  t.join();
  EXPECT_EQ(one_a, two_a);
  EXPECT_EQ(one_b, two_b);
}

}  // namespace
}  // namespace sluice::parse
