// PDF parser: the text layer of every page through poppler's core API (the TextOutputDev that
// pdftotext uses), cut into paragraphs by layout.
//
// Poppler gives words in reading order (its own flow/block analysis) with their boxes and font
// sizes; lines and paragraphs are rebuilt here from the geometry, because poppler's plain-text output
// neither separates paragraphs reliably nor keeps hyphenated line breaks (it silently joins "inter-" +
// "national", which also mangles "well-" + "known").
// Line breaks inside a paragraph become one space, except:
//   - a line ending in letter + '-' followed by a letter keeps "-\n" ("inter-\nnational"), so the
//     cleaner can tell a hyphenation from a real hyphen;
//   - between two CJK characters nothing is inserted (a space there would be noise).
// Paragraphs whose font is clearly larger than the body font (and that are short and do not end like
// a sentence) become headings, one level per distinct size.
//
// Speed (pdftotext's pages/s was the bar; this runs at about 2.5x it): poppler-cpp's text_list()
// copied every word into a ustring, made a box per character, looked font names up per character and
// copied the xref table for every page, 3x slower than pdftotext; here the words are read in place
// from poppler's TextPage. On top of that, poppler builds a page's fonts again for every page,
// inflating their font programs each time, which was half of the remaining time: FontStreamCache
// inflates each once per document. The file is read into memory (poppler's file stream makes a system
// call per 256 bytes). None of this changes the text.
//
// OCR: a page without a text layer (every page with --ocr always, none with --ocr never) is rendered
// with poppler's Splash in 8-bit gray at OcrOptions::dpi, as `pdftoppm -gray -r 300` renders it, and
// read by OCR (ocr.h); its paragraphs are never headings (OCR gives no font sizes), and its
// confidence goes to ParsedDocument::ocr. A page left with no text counts in empty_pages.
//
// Thread-safety: parses may run on several threads at once, without a lock. Each parse owns its
// PDFDoc and TextOutputDev and shares nothing with another. Poppler's process-wide state is set up
// once and never torn down: GlobalParams (whose caches have their own locks) through a
// GlobalParamsIniter that lives forever, and the error callback, which routes messages to the
// parsing thread through a thread_local, so concurrent parses neither print to stderr nor see each
// other's errors.
#include <ErrorCodes.h>
#include <GlobalParams.h>
#include <Object.h>
#include <PDFDoc.h>
#include <Page.h>
#include <SplashOutputDev.h>
#include <Stream.h>
#include <TextOutputDev.h>
#include <UTF.h>
#include <errno.h>
#include <goo/GooString.h>
#include <goo/gmem.h>
#include <splash/SplashBitmap.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/env.h"
#include "parse/formats.h"
#include "parse/ocr.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

// What poppler reported while this thread was parsing.
struct PopplerLog {
  std::string last;                    // the last message, for the error of a failed load
  bool missing_language_pack = false;  // CJK text lost because poppler-data is not installed
};

thread_local PopplerLog* t_log = nullptr;

void on_poppler_error(ErrorCategory /*category*/, Goffset /*pos*/, const char* msg) {
  if (t_log == nullptr || msg == nullptr) return;  // silenced either way
  t_log->last = msg;
  if (std::strstr(msg, "Missing language pack") != nullptr) t_log->missing_language_pack = true;
}

// Once per process: poppler's GlobalParams (read from poppler-data) and the error callback. The
// initer is never destroyed, so they are not rebuilt for every file (that would double the cost of a
// small PDF) and stay valid for parses still running on other threads at exit.
void init_poppler() {
  // volatile: the store stays, so leak checkers see the initer as reachable.
  static GlobalParamsIniter* volatile initer = [] {
    auto* i = new GlobalParamsIniter(&on_poppler_error);
    setErrorCallback(&on_poppler_error);  // also when another poppler user came first
    return i;
  }();
  (void)initer;
}

// Points t_log at a log for the lifetime of one parse.
class PopplerLogScope {
 public:
  explicit PopplerLogScope(PopplerLog* log) : prev_(t_log) { t_log = log; }
  ~PopplerLogScope() { t_log = prev_; }
  PopplerLogScope(const PopplerLogScope&) = delete;
  PopplerLogScope& operator=(const PopplerLogScope&) = delete;

 private:
  PopplerLog* prev_;
};

// Appends one code point as UTF-8. NUL is dropped; what is not a Unicode scalar value (a lone
// surrogate from a broken ToUnicode map) becomes U+FFFD, so the output is always valid UTF-8.
void append_utf8(char32_t c, std::string* out) {
  if (c == 0) return;
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    const char b[] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 2);
  } else if (c < 0x10000) {
    const char b[] = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                      static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 3);
  } else {
    const char b[] = {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                      static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 4);
  }
}

// A PDF text string (document info): UTF-16 with a byte order mark, UTF-8 with one (PDF 2.0), or
// else PDFDocEncoding.
std::string text_string_to_utf8(const GooString& s) {
  const std::string& raw = s.toStr();
  if (raw.size() >= 3 && raw.compare(0, 3, "\xEF\xBB\xBF") == 0) {
    std::string out;
    for (size_t i = 3; i < raw.size(); ++i) {
      if (raw[i] != '\0') out.push_back(raw[i]);
    }
    return out;
  }
  Unicode* u = nullptr;
  const int n = TextStringToUCS4(raw, &u);
  std::string out;
  for (int i = 0; i < n; ++i) append_utf8(u[i], &out);
  gfree(u);
  return out;
}

struct Line {
  std::string text;
  double top = 0, bottom = 0, left = 0, right = 0;
  double font_size = 0;
};

struct Para {
  std::string text;
  int page = 0;
  double font_size = 0;  // the largest on any of its lines
  size_t chars = 0;      // code points, for the body font estimate
};

size_t count_code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Groups the words of the page poppler last drew (in its reading order: flows, blocks, lines) into
// lines. `word` is scratch space, kept by the caller so that a page costs no allocation per word.
void make_lines(const TextOutputDev& out, std::string* word, std::vector<Line>* lines) {
  lines->clear();
  bool space_pending = false;
  for (const TextFlow* flow = out.getFlows(); flow != nullptr; flow = flow->getNext()) {
    for (const TextBlock* block = flow->getBlocks(); block != nullptr; block = block->getNext()) {
      for (const TextLine* tl = block->getLines(); tl != nullptr; tl = tl->getNext()) {
        for (const TextWord* w = tl->getWords(); w != nullptr; w = w->getNext()) {
          word->clear();
          for (int i = 0; i < w->getLength(); ++i) append_utf8(*w->getChar(i), word);
          if (word->empty()) continue;
          double left, top, right, bottom;
          w->getBBox(&left, &top, &right, &bottom);
          const double height = std::max(bottom - top, 0.1);
          bool same_line = false;
          if (!lines->empty()) {
            const Line& l = lines->back();
            const double overlap = std::min(bottom, l.bottom) - std::max(top, l.top);
            const double min_h = std::min(height, std::max(l.bottom - l.top, 0.1));
            // Same line: mostly level with it and to its right (a jump back left is the next line).
            same_line = overlap > 0.5 * min_h && left >= l.right - 0.5 * height;
          }
          if (!same_line) {
            lines->push_back(Line{"", top, bottom, left, right, 0});
            space_pending = false;
          }
          Line& l = lines->back();
          if (space_pending) l.text += ' ';
          l.text += *word;
          l.top = std::min(l.top, top);
          l.bottom = std::max(l.bottom, bottom);
          l.right = std::max(l.right, right);
          l.font_size = std::max(l.font_size, w->getFontSize());
          space_pending = w->hasSpaceAfter();
        }
      }
    }
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool similar_size(double a, double b) {
  return std::fabs(a - b) <= 0.15 * std::max(a, b);
}

// Cuts the lines of one page into paragraphs (appended to `paras`, taking the lines' text): at a
// vertical gap clearly larger than the page's usual line pitch (or a blank line's worth), at a jump
// upwards (next column) and at a font size change.
void make_paragraphs(std::vector<Line>& lines, int page, std::vector<Para>* paras) {
  std::vector<double> pitches;
  for (size_t i = 1; i < lines.size(); ++i) {
    const double pitch = lines[i].bottom - lines[i - 1].bottom;
    if (pitch > 0 && similar_size(lines[i].font_size, lines[i - 1].font_size)) pitches.push_back(pitch);
  }
  const double usual_pitch = median(std::move(pitches));
  const size_t first = paras->size();
  for (size_t i = 0; i < lines.size(); ++i) {
    Line& l = lines[i];
    bool new_para = i == 0;
    if (!new_para) {
      const Line& p = lines[i - 1];
      const double height = std::max(std::min(l.bottom - l.top, p.bottom - p.top), 0.1);
      const double pitch = l.bottom - p.bottom;
      const double gap = l.top - p.bottom;
      new_para = pitch <= 0 || gap > 1.0 * height || (usual_pitch > 0 && pitch > 1.3 * usual_pitch) ||
                 !similar_size(l.font_size, p.font_size);
    }
    if (new_para) {
      paras->push_back(Para{std::move(l.text), page, l.font_size, 0});
    } else {
      Para& para = paras->back();
      para.text += line_joint(para.text, l.text);
      para.text += l.text;
      para.font_size = std::max(para.font_size, l.font_size);
    }
  }
  for (size_t i = first; i < paras->size(); ++i) (*paras)[i].chars = count_code_points((*paras)[i].text);
}

// Marks paragraphs set in a clearly larger font than the body text as headings, one level per size.
void add_blocks(std::vector<Para>& paras, ParsedDocument* doc) {
  std::map<long, size_t> chars_by_size;  // font size in tenths of a point -> code points
  for (const Para& p : paras) chars_by_size[std::lround(p.font_size * 10)] += p.chars;
  long body = 0;
  size_t most = 0;
  for (const auto& [size, chars] : chars_by_size) {
    if (chars > most) most = chars, body = size;
  }
  auto is_heading = [&](const Para& p) {
    if (body <= 0 || static_cast<double>(std::lround(p.font_size * 10)) < static_cast<double>(body) * 1.2 ||
        p.chars > 100) {
      return false;
    }
    const char32_t last = last_code_point(p.text);
    return last != '.' && last != ',' && last != ';' && last != U'。' && last != U'，' && last != U'；';
  };
  std::vector<long> heading_sizes;  // distinct, largest first
  for (const Para& p : paras) {
    if (is_heading(p)) heading_sizes.push_back(std::lround(p.font_size * 10));
  }
  std::sort(heading_sizes.rbegin(), heading_sizes.rend());
  heading_sizes.erase(std::unique(heading_sizes.begin(), heading_sizes.end()), heading_sizes.end());
  doc->blocks.reserve(doc->blocks.size() + paras.size());
  for (Para& p : paras) {
    Block b;
    if (is_heading(p)) {
      const auto it = std::find(heading_sizes.begin(), heading_sizes.end(), std::lround(p.font_size * 10));
      b.kind = BlockKind::kHeading;
      b.level = std::min(static_cast<int>(it - heading_sizes.begin()) + 1, 6);
      if (doc->title.empty()) doc->title = p.text;
    }
    b.text = std::move(p.text);
    b.page = p.page;
    doc->blocks.push_back(std::move(b));
  }
}

// Strips leading and trailing whitespace in place.
void trim(std::string* s) {
  const char* ws = " \t\r\n";
  const size_t e = s->find_last_not_of(ws);
  if (e == std::string::npos) {
    s->clear();
    return;
  }
  s->erase(e + 1);
  s->erase(0, s->find_first_not_of(ws));
}

// Decoded copies of a document's embedded font programs and ToUnicode maps, put in its xref in
// place of the compressed originals. Why: poppler builds every font of a page again for each page,
// inflating its font program and ToUnicode stream every time; that was over 40% of a parse (and of
// pdftotext's run). The copies are the very bytes poppler would decode, so the text is unchanged.
// Belongs to one document; declare it before the PDFDoc, whose xref reads from its buffers.
class FontStreamCache {
 public:
  // Caches the streams of the fonts the page uses directly and through its form XObjects.
  void add_page(PDFDoc* pdf, Page* page) {
    xref_ = pdf->getXRef();
    if (Dict* res = page->getResourceDict()) add_resources(*res, 0);
  }

 private:
  static constexpr int kMaxDepth = 8;  // forms inside forms; deeper ones are left as they are
  // Decoded bytes kept per document at most (a parse worker's address space is limited).
  static constexpr size_t kMaxCachedBytes = 64u << 20;

  // True the first time an indirect object is met; direct objects are always new.
  bool first_visit(const Object& nf) { return !nf.isRef() || seen_.insert(nf.getRef().num).second; }

  void add_resources(Dict& res, int depth) {
    const Object fonts = res.lookup("Font");
    if (fonts.isDict()) {
      for (int i = 0; i < fonts.dictGetLength(); ++i) add_font(fonts.getDict()->getValNF(i), depth);
    }
    const Object xobjects = res.lookup("XObject");
    if (!xobjects.isDict() || depth >= kMaxDepth) return;
    for (int i = 0; i < xobjects.dictGetLength(); ++i) {
      const Object& nf = xobjects.getDict()->getValNF(i);
      if (!nf.isRef() || !first_visit(nf)) continue;  // images are streams too: only look at forms once
      const Object form = nf.fetch(xref_);
      if (!form.isStream()) continue;
      Dict* dict = form.streamGetDict();
      if (!dict->lookup("Subtype").isName("Form")) continue;
      const Object sub = dict->lookup("Resources");
      if (sub.isDict()) add_resources(*sub.getDict(), depth + 1);
    }
  }

  void add_font(const Object& nf, int depth) {
    if (!first_visit(nf) || depth >= kMaxDepth) return;
    const Object font = nf.fetch(xref_);
    if (!font.isDict()) return;
    add_stream(font.dictLookupNF("ToUnicode"));
    const Object desc = font.dictLookup("FontDescriptor");
    if (desc.isDict()) {
      for (const char* key : {"FontFile", "FontFile2", "FontFile3"}) add_stream(desc.dictLookupNF(key));
    }
    const Object descendants = font.dictLookup("DescendantFonts");  // a Type0 font's CID font
    if (descendants.isArray()) {
      for (int i = 0; i < descendants.arrayGetLength(); ++i) add_font(descendants.arrayGetNF(i), depth + 1);
    }
  }

  void add_stream(const Object& nf) {
    if (!nf.isRef() || !first_visit(nf)) return;
    const Object obj = nf.fetch(xref_);
    if (!obj.isStream()) return;
    Dict* dict = obj.streamGetDict();
    if (dict->lookupNF("Filter").isNull()) return;  // nothing to inflate: poppler reads it as fast
    if (cached_bytes_ >= kMaxCachedBytes) return;
    std::string& bytes = buffers_.emplace_back();
    obj.getStream()->fillString(bytes);
    obj.getStream()->close();
    cached_bytes_ += bytes.size();
    if (cached_bytes_ > kMaxCachedBytes) {  // keep the original; poppler inflates it when needed
      buffers_.pop_back();
      return;
    }
    Dict* plain = dict->copy(xref_);
    for (const char* key : {"Filter", "DecodeParms", "DP"}) plain->remove(key);
    plain->set("Length", Object(static_cast<int>(bytes.size())));
    Object decoded(static_cast<Stream*>(
        new MemStream(bytes.data(), 0, static_cast<Goffset>(bytes.size()), Object(plain))));
    xref_->setModifiedObject(&decoded, nf.getRef());
  }

  XRef* xref_ = nullptr;
  size_t cached_bytes_ = 0;
  std::unordered_set<int> seen_;     // object numbers of fonts, forms and streams looked at
  std::deque<std::string> buffers_;  // decoded streams; a deque never moves them
};

// OCR'd pages are rendered with at most this many pixels (the dpi is lowered for huge pages).
constexpr double kMaxOcrPixels = 64e6;

// Renders a page as 8-bit gray at opts.dpi (the way `pdftoppm -gray -r DPI` does) and recognises it.
// *renderer is made on first use and kept for the document's other pages.
Result<OcrText> ocr_page(PDFDoc* pdf, int page_no, const OcrOptions& opts,
                         std::unique_ptr<SplashOutputDev>* renderer) {
  if (!*renderer) {
    SplashColor white;
    white[0] = 0xff;
    *renderer =
        std::make_unique<SplashOutputDev>(splashModeMono8, /*bitmapRowPad=*/4, /*reverseVideo=*/false, white);
    (*renderer)->setFontAntialias(true);
    (*renderer)->setVectorAntialias(true);
    (*renderer)->startDoc(pdf);
  }
  double dpi = std::clamp(opts.dpi, 36, 1200);
  const double w_in = pdf->getPageCropWidth(page_no) / 72.0, h_in = pdf->getPageCropHeight(page_no) / 72.0;
  if (w_in > 0 && h_in > 0 && w_in * h_in * dpi * dpi > kMaxOcrPixels) {
    dpi = std::sqrt(kMaxOcrPixels / (w_in * h_in));
  }
  pdf->displayPage(renderer->get(), page_no, dpi, dpi, /*rotate=*/0, /*useMediaBox=*/false, /*crop=*/true,
                   /*printing=*/false);
  SplashBitmap* bitmap = (*renderer)->getBitmap();
  if (bitmap == nullptr || bitmap->getWidth() <= 0 || bitmap->getHeight() <= 0) {
    return OcrText{};  // nothing drawn: an empty page
  }
  GrayImage image;
  image.data = bitmap->getDataPtr();
  image.width = bitmap->getWidth();
  image.height = bitmap->getHeight();
  image.stride = bitmap->getRowSize();
  image.dpi = static_cast<int>(std::lround(dpi));
  return recognize(image, opts);
}

// Larger PDFs are not read into memory first (see parse_pdf).
constexpr uint64_t kInMemoryBytes = 64ull << 20;

// The file's size, with the same errors as read_file_limited() in parse_file.cc.
Result<uint64_t> file_size_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return Status::not_found("file not found: '" + path + "'");
    return errno_status("stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) return Status::invalid_argument("'" + path + "' is a directory, not a file");
  return static_cast<uint64_t>(st.st_size);
}

Result<ParsedDocument> parse_pdf(const std::string& path, const ParseOptions& opts) {
  SLUICE_ASSIGN_OR_RETURN(const uint64_t size, file_size_of(path));
  if (size > opts.max_bytes) {
    return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                  "PDF too large: '" + path + "' is " + std::to_string(size) + " bytes, over the limit of " +
                      std::to_string(opts.max_bytes) + " bytes (max_bytes)");
  }
  init_poppler();
  PopplerLog log;
  PopplerLogScope scope(&log);

  // In memory when not huge: poppler's FileStream makes a system call per 256 bytes, about a tenth
  // of a parse. Larger files are read from disk, keeping memory bounded under the parse workers'
  // address-space limit.
  std::string bytes;      // outlives pdf, which reads from it
  FontStreamCache fonts;  // also outlives pdf, whose xref reads decoded fonts from it
  std::unique_ptr<PDFDoc> pdf;
  // No passwords: poppler tries the empty user password, which opens owner-password-only files.
  if (size > 0 && size <= kInMemoryBytes) {
    SLUICE_ASSIGN_OR_RETURN(bytes, read_file_limited(path, opts));
    pdf = std::make_unique<PDFDoc>(
        new MemStream(bytes.data(), 0, static_cast<Goffset>(bytes.size()), Object(objNull)));
  } else {
    pdf = std::make_unique<PDFDoc>(std::make_unique<GooString>(path));
  }
  if (!pdf->isOk()) {
    if (pdf->getErrorCode() == errEncrypted) {
      return Status(ErrorClass::kBadInput, Code::kUnsupported,
                    "encrypted PDF: '" + path + "' needs a password");
    }
    return Status(
        ErrorClass::kBadInput, Code::kCorruption,
        "corrupt or truncated PDF: '" + path + "'" + (log.last.empty() ? "" : " (" + log.last + ")"));
  }
  const int pages = pdf->getNumPages();
  if (pages <= 0) {
    return Status(ErrorClass::kBadInput, Code::kCorruption,
                  "corrupt or truncated PDF: '" + path + "' has no pages");
  }

  ParsedDocument doc;
  doc.format = "pdf";
  doc.pages = pages;
  if (const std::unique_ptr<GooString> title = pdf->getDocInfoTitle()) {
    doc.title = text_string_to_utf8(*title);  // else add_blocks() takes the first heading
    trim(&doc.title);
  }
  // The settings of poppler-cpp's text_list() and of pdftotext without options: reading order, no
  // physical layout.
  TextOutputDev out(nullptr, /*physLayoutA=*/false, /*fixedPitchA=*/0, /*rawOrderA=*/false, /*append=*/false);
  if (!out.isOk()) return Status::internal("poppler could not set up text extraction for '" + path + "'");
  std::vector<Para> paras;
  std::vector<Line> lines;
  std::string word;
  std::unique_ptr<SplashOutputDev> renderer;  // made for the first page OCR reads
  for (int page_no = 1; page_no <= pages; ++page_no) {
    Page* page = pdf->getPage(page_no);
    if (page == nullptr) {
      doc.warnings.push_back("page " + std::to_string(page_no) + " could not be read");
      continue;
    }
    log.missing_language_pack = false;
    fonts.add_page(pdf.get(), page);
    const size_t first = paras.size();
    if (opts.ocr.mode != OcrMode::kAlways) {
      // 72 dpi: boxes in points. Crop box, no clipping to it, annotations drawn, not for printing.
      pdf->displayPage(&out, page_no, 72, 72, /*rotate=*/0, /*useMediaBox=*/false, /*crop=*/false,
                       /*printing=*/false);
      make_lines(out, &word, &lines);
      make_paragraphs(lines, page_no, &paras);
      if (log.missing_language_pack) {
        doc.warnings.push_back(
            "page " + std::to_string(page_no) +
            " uses a CJK font poppler cannot map without poppler-data; its text may be lost");
      }
      const auto kept =
          std::remove_if(paras.begin() + static_cast<std::ptrdiff_t>(first), paras.end(), [](Para& p) {
            trim(&p.text);
            return p.text.empty();
          });
      paras.erase(kept, paras.end());
    }
    if (paras.size() > first) continue;
    if (opts.ocr.mode == OcrMode::kNever) {
      ++doc.empty_pages;
      doc.warnings.push_back("page " + std::to_string(page_no) +
                             " has no text layer (scanned?) and OCR is off (--ocr never)");
      continue;
    }
    SLUICE_ASSIGN_OR_RETURN(OcrText text, ocr_page(pdf.get(), page_no, opts.ocr, &renderer));
    const bool empty = text.paragraphs.empty();
    doc.ocr.push_back({page_no, text.confidence, empty});
    if (empty) {
      ++doc.empty_pages;
      doc.warnings.push_back("page " + std::to_string(page_no) +
                             (opts.ocr.mode == OcrMode::kAlways
                                  ? ": OCR found no text"
                                  : " has no text layer, and OCR found no text"));
    }
    for (std::string& t : text.paragraphs) {
      paras.push_back(Para{std::move(t), page_no, /*font_size=*/0, 0});  // no font size: never a heading
      paras.back().chars = count_code_points(paras.back().text);
    }
  }
  add_blocks(paras, &doc);
  return doc;
}

}  // namespace

Parser* pdf_parser() {
  static GuardedParser<parse_pdf> parser("pdf", "PDF");
  return &parser;
}

}  // namespace sluice::parse
