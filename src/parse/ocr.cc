// OCR with tesseract: one engine per thread, words joined into paragraphs (see ocr.h).
#include "parse/ocr.h"

#include <dlfcn.h>
#include <leptonica/allheaders.h>
#include <sys/stat.h>
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "parse/formats.h"

namespace sluice::parse {
namespace {

// The languages of a "+"-joined list, each checked to be a plain file name.
Result<std::vector<std::string>> split_languages(std::string_view list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t plus = list.find('+', pos);
    if (plus == std::string_view::npos) plus = list.size();
    std::string lang(list.substr(pos, plus - pos));
    if (lang.empty() || lang.find_first_of("/\\ \t.") != std::string::npos) {
      return Status::invalid_argument("OCR languages '" + std::string(list) +
                                      "' must be tesseract language names joined by '+', e.g. eng+chi_sim");
    }
    out.push_back(std::move(lang));
    pos = plus + 1;
  }
  return out;
}

// Where tesseract looks for <lang>.traineddata: TESSDATA_PREFIX, else its built-in directory, which
// it tells only after an Init (asked once, with TESSDATA_PREFIX unset and a language that cannot
// exist: no model is loaded).
std::string tessdata_dir() {
  std::string d;
  if (const char* env = std::getenv("TESSDATA_PREFIX"); env != nullptr && *env != '\0') {
    d = env;
  } else {
    static const std::string built_in = [] {
      tesseract::TessBaseAPI probe;
      probe.SetVariable("debug_file", "/dev/null");
      (void)probe.Init(nullptr, "sluice_no_such_language");
      std::string p = probe.GetDatapath() != nullptr ? probe.GetDatapath() : "";
      probe.End();
      return p;
    }();
    d = built_in;
  }
  if (!d.empty() && d.back() != '/') d += '/';
  return d;
}

Status missing_language(const std::string& lang, const std::string& dir) {
  return Status(ErrorClass::kFatal, Code::kNotFound,
                "OCR language '" + lang + "' is not installed (no " + lang + ".traineddata in " +
                    (dir.empty() ? "tesseract's data directory" : dir) + "): install " +
                    ocr_language_package(lang) + " (apt-get install " + ocr_language_package(lang) +
                    "), or choose installed languages with --ocr-lang / SLUICE_OCR_LANG");
}

// Tesseract's OpenMP loops run serially in this thread (see ocr.h). The setting belongs to the
// calling thread's OpenMP task, so every thread that recognises sets it; libgomp comes with
// libtesseract, and when it does not (a build without OpenMP) there is nothing to turn off.
void serial_openmp_in_this_thread() {
  using SetLevels = void (*)(int);
  static const auto set_levels =
      reinterpret_cast<SetLevels>(dlsym(RTLD_DEFAULT, "omp_set_max_active_levels"));
  if (set_levels != nullptr) set_levels(0);
}

// Leptonica's messages go to the thread that caused them (and never to stderr).
thread_local std::string* t_lept_message = nullptr;

void on_leptonica_message(const char* msg) {
  if (t_lept_message == nullptr || msg == nullptr) return;
  *t_lept_message = msg;
  while (!t_lept_message->empty() && (t_lept_message->back() == '\n' || t_lept_message->back() == ' '))
    t_lept_message->pop_back();
}

void init_leptonica() {
  static std::once_flag once;
  std::call_once(once, [] { leptSetStderrHandler(&on_leptonica_message); });
}

// This thread's engine.
struct Engine {
  std::string languages;
  std::unique_ptr<tesseract::TessBaseAPI> api;
};
thread_local Engine t_engine;

Result<tesseract::TessBaseAPI*> engine_for(const OcrOptions& opts) {
  if (t_engine.api && t_engine.languages == opts.languages) return t_engine.api.get();
  t_engine.api.reset();
  init_leptonica();
  SLUICE_RETURN_IF_ERROR(check_ocr_languages(opts));
  serial_openmp_in_this_thread();
  auto api = std::make_unique<tesseract::TessBaseAPI>();
  // Tesseract's messages ("Estimating resolution as ...") would go to the worker's stderr.
  api->SetVariable("debug_file", "/dev/null");
  if (api->Init(nullptr, opts.languages.c_str(), tesseract::OEM_DEFAULT) != 0) {
    return Status(ErrorClass::kFatal, Code::kInternal,
                  "tesseract could not load the OCR languages '" + opts.languages + "' from " +
                      tessdata_dir() +
                      " (a damaged .traineddata file? reinstall the tesseract-ocr-* packages)");
  }
  t_engine.languages = opts.languages;
  t_engine.api = std::move(api);
  return t_engine.api.get();
}

struct PixDeleter {
  void operator()(Pix* p) const { pixDestroy(&p); }
};
using PixPtr = std::unique_ptr<Pix, PixDeleter>;

}  // namespace

LeptonicaLog::LeptonicaLog() : prev_(t_lept_message) {
  init_leptonica();
  t_lept_message = &last_;
}

LeptonicaLog::~LeptonicaLog() {
  t_lept_message = prev_;
}

std::string ocr_language_package(std::string_view language) {
  std::string p = "tesseract-ocr-";
  for (char c : language)
    p += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p;
}

Status check_ocr_languages(const OcrOptions& opts) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> langs, split_languages(opts.languages));
  const std::string dir = tessdata_dir();
  for (const std::string& lang : langs) {
    struct stat st {};
    if (dir.empty() || ::stat((dir + lang + ".traineddata").c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return missing_language(lang, dir);
    }
  }
  return {};
}

void append_ocr_word(std::string& paragraph, std::string_view word, bool line_start) {
  if (word.empty()) return;
  if (!paragraph.empty()) {
    if (line_start) {
      paragraph += line_joint(paragraph, word);
    } else if (!(is_cjk(last_code_point(paragraph)) && is_cjk(first_code_point(word)))) {
      paragraph += ' ';
    }
  }
  paragraph += word;
}

Result<OcrText> recognize(Pix* image, const OcrOptions& opts) {
  if (image == nullptr) return Status::internal("OCR was given no image");
  SLUICE_ASSIGN_OR_RETURN(tesseract::TessBaseAPI * api, engine_for(opts));
  OcrText out;
  try {
    api->SetImage(image);
    if (api->Recognize(nullptr) != 0) {
      api->Clear();
      return Status::internal("tesseract could not recognise the page");
    }
    std::unique_ptr<tesseract::ResultIterator> it(api->GetIterator());
    std::string para;
    if (it) {
      do {
        if (it->Empty(tesseract::RIL_WORD)) continue;
        const bool new_para = it->IsAtBeginningOf(tesseract::RIL_PARA);
        const bool new_line = it->IsAtBeginningOf(tesseract::RIL_TEXTLINE);
        std::unique_ptr<char[]> word(it->GetUTF8Text(tesseract::RIL_WORD));
        if (!word || word[0] == '\0') continue;
        if (new_para && !para.empty()) out.paragraphs.push_back(std::move(para)), para.clear();
        append_ocr_word(para, word.get(), new_line);
      } while (it->Next(tesseract::RIL_WORD));
    }
    if (!para.empty()) out.paragraphs.push_back(std::move(para));
    out.confidence = out.paragraphs.empty() ? 0 : api->MeanTextConf();
    api->Clear();
  } catch (const std::bad_alloc&) {
    t_engine.api.reset();  // its state is unknown now
    return Status::resource_limit(
        "OCR ran out of memory on a page (raise --parse-memory, or lower --ocr-dpi)");
  }
  return out;
}

Result<OcrText> recognize(const GrayImage& image, const OcrOptions& opts) {
  if (image.data == nullptr || image.width <= 0 || image.height <= 0 || image.stride < image.width) {
    return Status::internal("OCR was given an empty or malformed image");
  }
  LeptonicaLog log;
  PixPtr pix(pixCreate(image.width, image.height, 8));
  if (!pix)
    return Status::resource_limit("OCR: no memory for a " + std::to_string(image.width) + "x" +
                                  std::to_string(image.height) + " page image");
  l_uint32* data = pixGetData(pix.get());
  const int wpl = pixGetWpl(pix.get());
  for (int y = 0; y < image.height; ++y) {
    auto* row = reinterpret_cast<unsigned char*>(data + static_cast<ptrdiff_t>(y) * wpl);
    std::memcpy(row, image.data + static_cast<ptrdiff_t>(y) * image.stride, static_cast<size_t>(image.width));
  }
  // Leptonica keeps 8-bit pixels in 32-bit words, most significant byte first.
  pixEndianByteSwap(pix.get());
  if (image.dpi > 0) pixSetResolution(pix.get(), image.dpi, image.dpi);
  return recognize(pix.get(), opts);
}

}  // namespace sluice::parse
