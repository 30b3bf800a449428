// OCR: text recognised from the pixels of a page, with tesseract (Debian's libtesseract 5, its
// default engine) and the language packs installed next to it (tesseract-ocr-eng,
// tesseract-ocr-chi-sim, ...). The image parser (image.cc: PNG, JPEG, TIFF) and the PDF parser
// (pages without a text layer, rendered with poppler's Splash at OcrOptions::dpi) call it.
//
// What comes out: the page's paragraphs in tesseract's reading order and its mean text confidence
// (0..100). Words are joined with one space, except between two CJK characters, where nothing is
// put (tesseract's word boxes split Chinese text into one "word" per character or phrase and a space
// there is noise for the chunker and the keyword index); a line ending in letter + '-' followed by
// a letter keeps "-\n" like the PDF parser does, so the cleaner can tell a hyphenation from a hyphen.
//
// Ownership: the functions borrow the image. A recognition engine (tesseract::TessBaseAPI, ~200 MB
// with eng+chi_sim loaded) is made on first use in each thread, kept for that thread's later pages
// (loading the models costs more than a page) and freed when the thread ends; a different language
// list makes it anew.
// Thread-safety: TessBaseAPI is not thread-safe, so each thread has its own and shares nothing;
// the functions may run on many threads at once. Tesseract's OpenMP loops are turned off for the
// calling thread (one team per thread): parallelism comes from pages in several threads or parser
// processes, and OpenMP's spinning threads made a page 3-5x slower on a busy 2-core machine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "parse/parser.h"

struct Pix;  // leptonica's image

namespace sluice::parse {

// A grayscale image in memory: 8 bits per pixel, `height` rows of `stride` bytes, top row first.
struct GrayImage {
  const unsigned char* data = nullptr;
  int width = 0;
  int height = 0;
  int stride = 0;
  int dpi = 0;  // 0: unknown (tesseract estimates it from the size of the text)
};

struct OcrText {
  std::vector<std::string> paragraphs;  // reading order; none is empty
  double confidence = 0;                // tesseract's mean text confidence, 0..100; 0 when nothing was read
};

// Recognises one page in opts.languages. Errors: a language that is not installed is
// kFatal/kNotFound naming the package to install (this machine cannot read the document until
// someone does; check_ocr_languages says so before any document); tesseract failing is kFatal.
[[nodiscard]] Result<OcrText> recognize(const GrayImage& image, const OcrOptions& opts);
// The same for a leptonica image (any depth; borrowed, not changed).
[[nodiscard]] Result<OcrText> recognize(Pix* image, const OcrOptions& opts);

// Checks, without loading a model, that every language of opts.languages ("eng+chi_sim") is
// installed where tesseract looks (TESSDATA_PREFIX, else its built-in directory). A malformed
// list is kBadInput; a missing language kFatal/kNotFound: "OCR language 'chi_sim' is not
// installed (no chi_sim.traineddata in DIR): install tesseract-ocr-chi-sim ...".
[[nodiscard]] Status check_ocr_languages(const OcrOptions& opts);

// The Debian package of a tesseract language: "chi_sim" → "tesseract-ocr-chi-sim".
std::string ocr_language_package(std::string_view language);

// Collects what leptonica reports on this thread while it lives (leptonica would print it on
// stderr); for messages that say why an image could not be read. Internal to src/parse.
class LeptonicaLog {
 public:
  LeptonicaLog();
  ~LeptonicaLog();
  LeptonicaLog(const LeptonicaLog&) = delete;
  LeptonicaLog& operator=(const LeptonicaLog&) = delete;
  const std::string& last() const { return last_; }  // "" when it said nothing

 private:
  std::string last_;
  std::string* prev_;
};

// How OCR words are put together (see the file comment); exposed for tests. `line_start`: the
// word begins a new line of the same paragraph.
void append_ocr_word(std::string& paragraph, std::string_view word, bool line_start);

}  // namespace sluice::parse
