// Image parser: PNG, JPEG and TIFF (every page of a multi-page TIFF) become documents by OCR
// (parse/ocr.h), one page per image page, each paragraph a block.
//
// The image is decoded by leptonica from memory after its header was checked: a picture larger
// than kMaxPixels is refused before it is decoded (a 20000x20000 PNG of a few kilobytes would
// otherwise ask for 1.6 GB), transparency is flattened onto white (a transparent background reads
// as black otherwise) and colour becomes 8-bit gray, which is what tesseract reads anyway.
// Errors: OCR off (--ocr never) and undecodable images are kBadInput; a picture over the size
// limit is kResourceLimit; a missing language is ocr.h's kFatal.
// Thread-safety: stateless; OCR keeps one engine per thread.
#include <leptonica/allheaders.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parse/formats.h"
#include "parse/ocr.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

// Pixels per image page OCR takes: an A3 page at 400 dpi is 31 million.
constexpr int64_t kMaxPixels = 64'000'000;

struct PixDeleter {
  void operator()(Pix* p) const { pixDestroy(&p); }
};
using PixPtr = std::unique_ptr<Pix, PixDeleter>;

const char* label_of(int format) {
  switch (format) {
    case IFF_PNG: return "PNG";
    case IFF_JFIF_JPEG: return "JPEG";
    case IFF_TIFF:
    case IFF_TIFF_PACKBITS:
    case IFF_TIFF_RLE:
    case IFF_TIFF_G3:
    case IFF_TIFF_G4:
    case IFF_TIFF_LZW:
    case IFF_TIFF_ZIP:
    case IFF_TIFF_JPEG: return "TIFF";
    default: return nullptr;
  }
}

// 8-bit gray on white, whatever the depth, colormap or alpha channel.
PixPtr to_gray(Pix* pix) {
  PixPtr flat;
  if (pixGetDepth(pix) == 32 && pixGetSpp(pix) == 4) {
    flat.reset(pixAlphaBlendUniform(pix, 0xffffff00));
    if (flat) pix = flat.get();
  }
  return PixPtr(pixConvertTo8(pix, /*cmapflag=*/0));
}

// A PNG whose chunks run past the end of the file, or that has no IEND chunk, is truncated or not
// a PNG: said here, before libpng, which would print its complaint on stderr.
std::string png_structure_error(std::string_view bytes) {
  size_t pos = 8;  // after the signature
  while (pos + 12 <= bytes.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos);
    const uint64_t length = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    const std::string_view type = bytes.substr(pos + 4, 4);
    if (pos + 12 + length > bytes.size()) {
      return "its " + std::string(type) + " chunk at byte " + std::to_string(pos) +
             " runs past the end of the file";
    }
    if (type == "IEND") return {};
    pos += 12 + length;
  }
  return "it ends before its IEND chunk";
}

Result<ParsedDocument> parse_image(const std::string& path, const ParseOptions& opts) {
  LeptonicaLog log;
  SLUICE_ASSIGN_OR_RETURN(const std::string bytes, read_file_limited(path, opts));
  const auto* data = reinterpret_cast<const l_uint8*>(bytes.data());
  l_int32 format = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
  const bool header_ok = pixReadHeaderMem(data, bytes.size(), &format, &w, &h, &bps, &spp, &cmap) == 0;
  const char* label = label_of(format);
  if (!header_ok || label == nullptr || w <= 0 || h <= 0) {
    return Status(ErrorClass::kBadInput, Code::kCorruption,
                  "corrupt or truncated image: '" + path + "' cannot be decoded as PNG, JPEG or TIFF" +
                      (log.last().empty() ? "" : " (" + log.last() + ")"));
  }
  if (opts.ocr.mode == OcrMode::kNever) {
    return Status(
        ErrorClass::kBadInput, Code::kUnsupported,
        "'" + path + "' is a " + label +
            " image, whose text only OCR can read, and OCR is off (--ocr never / SLUICE_OCR=never); "
            "ingest it with --ocr auto");
  }
  if (static_cast<int64_t>(w) * h > kMaxPixels) {
    return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                  "image too large for OCR: '" + path + "' is " + std::to_string(w) + "x" +
                      std::to_string(h) + " pixels, over the limit of " +
                      std::to_string(kMaxPixels / 1'000'000) +
                      " million per page; scale it down (300 dpi is plenty for OCR)");
  }
  const bool tiff = std::string_view(label) == "TIFF";
  if (format == IFF_PNG) {
    if (std::string why = png_structure_error(bytes); !why.empty()) {
      return Status(ErrorClass::kBadInput, Code::kCorruption,
                    "corrupt or truncated PNG image: '" + path + "': " + why);
    }
  }

  ParsedDocument doc;
  doc.format = tiff ? "tiff" : std::string_view(label) == "PNG" ? "png" : "jpeg";
  size_t offset = 0;  // of the next TIFF page
  for (int page = 1;; ++page) {
    PixPtr pix;
    if (tiff) {
      if (page > 1 && offset == 0) break;  // the last page was read
      pix.reset(pixReadMemFromMultipageTiff(data, bytes.size(), &offset));
    } else {
      pix.reset(pixReadMem(data, bytes.size()));
    }
    if (!pix) {
      if (page == 1) {
        return Status(ErrorClass::kBadInput, Code::kCorruption,
                      std::string("corrupt or truncated ") + label + " image: '" + path + "'" +
                          (log.last().empty() ? "" : " (" + log.last() + ")"));
      }
      doc.warnings.push_back("page " + std::to_string(page) +
                             " of the TIFF could not be decoded; the pages after it are not read");
      break;
    }
    if (static_cast<int64_t>(pixGetWidth(pix.get())) * pixGetHeight(pix.get()) > kMaxPixels) {
      return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                    "image too large for OCR: page " + std::to_string(page) + " of '" + path + "' is over " +
                        std::to_string(kMaxPixels / 1'000'000) + " million pixels; scale it down");
    }
    PixPtr gray = to_gray(pix.get());
    if (!gray) {
      return Status(ErrorClass::kBadInput, Code::kCorruption,
                    std::string("cannot convert page ") + std::to_string(page) + " of the " + label +
                        " image '" + path + "' to grayscale" +
                        (log.last().empty() ? "" : " (" + log.last() + ")"));
    }
    pix.reset();
    SLUICE_ASSIGN_OR_RETURN(OcrText text, recognize(gray.get(), opts.ocr));
    doc.pages = page;
    const bool empty = text.paragraphs.empty();
    doc.ocr.push_back({page, text.confidence, empty});
    if (empty) {
      ++doc.empty_pages;
      doc.warnings.push_back("page " + std::to_string(page) + ": OCR found no text");
    }
    for (std::string& p : text.paragraphs) {
      const size_t before = doc.blocks.size();
      add_block(doc, BlockKind::kParagraph, std::move(p));
      if (doc.blocks.size() > before) doc.blocks.back().page = page;
    }
    if (!tiff) break;
  }
  return doc;
}

}  // namespace

Parser* image_parser() {
  static GuardedParser<parse_image> parser("image", "image");
  return &parser;
}

}  // namespace sluice::parse
