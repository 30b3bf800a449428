// PDF parser: the text layer of every page through poppler-cpp, cut into paragraphs by layout.
//
// Poppler gives words in reading order (its own flow/block analysis) with their boxes; lines and
// paragraphs are rebuilt here from the geometry, because poppler's plain-text output neither
// separates paragraphs reliably nor keeps hyphenated line breaks (it silently joins "inter-" +
// "national", which also mangles "well-" + "known").
// Line breaks inside a paragraph become one space, except:
//   - a line ending in letter + '-' followed by a letter keeps "-\n" ("inter-\nnational"), so the
//     cleaner can tell a hyphenation from a real hyphen;
//   - between two CJK characters nothing is inserted (a space there would be noise).
// Paragraphs whose font is clearly larger than the body font (and that are short and do not end like
// a sentence) become headings, one level per distinct size.
//
// Thread-safety: every parse loads its own poppler::document and never shares it. Poppler's
// process-wide state (GlobalParams, the error callback) is set up under poppler's own mutex; the
// error callback is installed once and routes messages to the parsing thread through a
// thread_local, so concurrent parses neither print to stderr nor see each other's errors.
#include <errno.h>
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "base/env.h"
#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

// What poppler reported while this thread was parsing.
struct PopplerLog {
  std::string last;                    // the last message, for the error of a failed load
  bool missing_language_pack = false;  // CJK text lost because poppler-data is not installed
};

thread_local PopplerLog* t_log = nullptr;

void on_poppler_message(const std::string& msg, void* /*closure*/) {
  if (t_log == nullptr) return;  // silenced either way
  t_log->last = msg;
  if (msg.find("Missing language pack") != std::string::npos) t_log->missing_language_pack = true;
}

// A minimal PDF (no xref: poppler rebuilds it, quietly) whose document is never freed.
constexpr char kTinyPdf[] =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

// Once per process: route poppler's messages to on_poppler_message, and keep one document alive so
// that poppler's global state (built when the first document opens, freed when the last one
// closes) is not rebuilt for every file; that halves the cost of a small PDF.
void init_poppler() {
  static std::once_flag once;
  std::call_once(once, [] {
    poppler::set_debug_error_function(&on_poppler_message, nullptr);
    // volatile: the store stays, so leak checkers see the document as reachable.
    static poppler::document* volatile keep_alive =
        poppler::document::load_from_raw_data(kTinyPdf, static_cast<int>(sizeof(kTinyPdf) - 1));
    (void)keep_alive;
  });
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

std::string to_std(const poppler::ustring& s) {
  const poppler::byte_array utf8 = s.to_utf8();
  return std::string(utf8.begin(), utf8.end());
}

// Poppler's messages look like "error (1234): Couldn't read xref table".
std::string poppler_detail(const PopplerLog& log) {
  std::string m = log.last;
  if (m.rfind("error", 0) == 0) {
    const size_t colon = m.find(": ");
    if (colon != std::string::npos) m = m.substr(colon + 2);
  }
  return m;
}

// UTF-8 helpers for the first and last code point of a string (0 when empty or invalid).
char32_t first_code_point(const std::string& s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  int n = p[0] < 0x80 ? 1 : (p[0] >> 5) == 0x6 ? 2 : (p[0] >> 4) == 0xE ? 3 : (p[0] >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || static_cast<size_t>(n) > s.size()) return 0;
  if (n == 1) return p[0];
  char32_t c = p[0] & (0x7F >> n);
  for (int i = 1; i < n; ++i) c = (c << 6) | (p[i] & 0x3F);
  return c;
}

char32_t last_code_point(const std::string& s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i == 0) return 0;
  return first_code_point(s.substr(i - 1));
}

// Scripts written without spaces between words (Hangul is written with spaces, so it is not here).
bool is_cjk(char32_t c) {
  return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFFEF) ||
         (c >= 0x20000 && c <= 0x3FFFF);
}

bool is_letter(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= 0xC0 && c != 0xD7 && c != 0xF7 && !is_cjk(c));
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

// Groups poppler's words (in reading order) into lines.
std::vector<Line> make_lines(const std::vector<poppler::text_box>& boxes) {
  std::vector<Line> lines;
  bool space_pending = false;
  for (const poppler::text_box& box : boxes) {
    std::string word = to_std(box.text());
    if (word.empty()) continue;
    const poppler::rectf r = box.bbox();
    const double top = r.top(), bottom = r.bottom(), height = std::max(r.height(), 0.1);
    bool same_line = false;
    if (!lines.empty()) {
      const Line& l = lines.back();
      const double overlap = std::min(bottom, l.bottom) - std::max(top, l.top);
      const double min_h = std::min(height, std::max(l.bottom - l.top, 0.1));
      // Same line: mostly level with it and to its right (a jump back left is the next line).
      same_line = overlap > 0.5 * min_h && r.left() >= l.right - 0.5 * height;
    }
    if (!same_line) {
      lines.push_back(Line{"", top, bottom, r.left(), r.right(), 0});
      space_pending = false;
    }
    Line& l = lines.back();
    if (space_pending) l.text += ' ';
    l.text += word;
    l.top = std::min(l.top, top);
    l.bottom = std::max(l.bottom, bottom);
    l.right = std::max(l.right, r.right());
    if (box.has_font_info()) l.font_size = std::max(l.font_size, box.get_font_size());
    space_pending = box.has_space_after();
  }
  return lines;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool similar_size(double a, double b) {
  return std::fabs(a - b) <= 0.15 * std::max(a, b);
}

// How the text of the next line joins the paragraph so far (see the file comment).
const char* line_joint(const std::string& prev, const std::string& next) {
  const char32_t a = last_code_point(prev), b = first_code_point(next);
  if (a == '-' && prev.size() >= 2 && is_letter(last_code_point(prev.substr(0, prev.size() - 1))) &&
      is_letter(b)) {
    return "\n";
  }
  if (is_cjk(a) && is_cjk(b)) return "";
  return " ";
}

// Cuts the lines of one page into paragraphs: at a vertical gap clearly larger than the page's usual
// line pitch (or a blank line's worth), at a jump upwards (next column) and at a font size change.
std::vector<Para> make_paragraphs(const std::vector<Line>& lines, int page) {
  std::vector<double> pitches;
  for (size_t i = 1; i < lines.size(); ++i) {
    const double pitch = lines[i].bottom - lines[i - 1].bottom;
    if (pitch > 0 && similar_size(lines[i].font_size, lines[i - 1].font_size)) pitches.push_back(pitch);
  }
  const double usual_pitch = median(pitches);
  std::vector<Para> paras;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
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
      paras.push_back(Para{l.text, page, l.font_size, 0});
    } else {
      Para& para = paras.back();
      para.text += line_joint(para.text, l.text);
      para.text += l.text;
      para.font_size = std::max(para.font_size, l.font_size);
    }
  }
  for (Para& p : paras) p.chars = count_code_points(p.text);
  return paras;
}

// Marks paragraphs set in a clearly larger font than the body text as headings, one level per size.
void add_blocks(const std::vector<Para>& paras, ParsedDocument* doc) {
  std::map<long, size_t> chars_by_size;  // font size in tenths of a point -> code points
  for (const Para& p : paras) chars_by_size[std::lround(p.font_size * 10)] += p.chars;
  long body = 0;
  size_t most = 0;
  for (const auto& [size, chars] : chars_by_size) {
    if (chars > most) most = chars, body = size;
  }
  auto is_heading = [&](const Para& p) {
    if (body <= 0 || std::lround(p.font_size * 10) < body * 1.2 || p.chars > 100) return false;
    const char32_t last = last_code_point(p.text);
    return last != '.' && last != ',' && last != ';' && last != U'。' && last != U'，' && last != U'；';
  };
  std::vector<long> heading_sizes;  // distinct, largest first
  for (const Para& p : paras) {
    if (is_heading(p)) heading_sizes.push_back(std::lround(p.font_size * 10));
  }
  std::sort(heading_sizes.rbegin(), heading_sizes.rend());
  heading_sizes.erase(std::unique(heading_sizes.begin(), heading_sizes.end()), heading_sizes.end());
  for (const Para& p : paras) {
    Block b;
    b.text = p.text;
    b.page = p.page;
    if (is_heading(p)) {
      const auto it = std::find(heading_sizes.begin(), heading_sizes.end(), std::lround(p.font_size * 10));
      b.kind = BlockKind::kHeading;
      b.level = std::min(static_cast<int>(it - heading_sizes.begin()) + 1, 6);
      if (doc->title.empty()) doc->title = p.text;
    }
    doc->blocks.push_back(std::move(b));
  }
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

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

  std::unique_ptr<poppler::document> pdf(poppler::document::load_from_file(path));
  if (!pdf) {
    const std::string detail = poppler_detail(log);
    return Status(ErrorClass::kBadInput, Code::kCorruption,
                  "corrupt or truncated PDF: '" + path + "'" + (detail.empty() ? "" : " (" + detail + ")"));
  }
  // Poppler has already tried the empty password, so locked means a user password is needed.
  if (pdf->is_locked()) {
    return Status(ErrorClass::kBadInput, Code::kUnsupported,
                  "encrypted PDF: '" + path + "' needs a password");
  }
  const int pages = pdf->pages();
  if (pages <= 0) {
    return Status(ErrorClass::kBadInput, Code::kCorruption,
                  "corrupt or truncated PDF: '" + path + "' has no pages");
  }

  ParsedDocument doc;
  doc.format = "pdf";
  doc.pages = pages;
  doc.title = trim(to_std(pdf->get_title()));  // else add_blocks() takes the first heading
  std::vector<Para> paras;
  for (int i = 0; i < pages; ++i) {
    const int page_no = i + 1;
    std::unique_ptr<poppler::page> page(pdf->create_page(i));
    if (!page) {
      doc.warnings.push_back("page " + std::to_string(page_no) + " could not be read");
      continue;
    }
    log.missing_language_pack = false;
    std::vector<Para> page_paras =
        make_paragraphs(make_lines(page->text_list(poppler::page::text_list_include_font)), page_no);
    if (log.missing_language_pack) {
      doc.warnings.push_back(
          "page " + std::to_string(page_no) +
          " uses a CJK font poppler cannot map without poppler-data; its text may be lost");
    }
    std::erase_if(page_paras, [](Para& p) { return (p.text = trim(p.text)).empty(); });
    if (page_paras.empty()) {
      doc.warnings.push_back("page " + std::to_string(page_no) + " has no text (scanned? OCR comes later)");
    }
    paras.insert(paras.end(), std::make_move_iterator(page_paras.begin()),
                 std::make_move_iterator(page_paras.end()));
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
