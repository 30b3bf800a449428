// Text processing between parsing and embedding: cleaning (whitespace, hyphenation, repeated
// headers/footers, dot leaders, bare page numbers, optional PII masking) and structure-aware
// chunking with heading paths and pages. UTF-8 throughout; Chinese text is first-class.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parse/document.h"

namespace sluice::text {

struct CleanOptions {
  bool mask_pii = false;  // e-mail, phone numbers (incl. Chinese mobile), Chinese ID numbers
};

struct CleanStats {
  size_t blocks_dropped = 0;           // empty after cleaning, repeated headers/footers, page numbers
  size_t pii_masked = 0;               // how many PII spans were replaced
};

// Cleans the document in place.
CleanStats clean_document(parse::ParsedDocument& doc, const CleanOptions& opts);

// Replaces PII spans in s with [EMAIL], [PHONE], [ID]; returns how many.
size_t mask_pii(std::string& s);

// English function words ("the", "how", "do", ...) that carry no topic: the hash embedder leaves
// them out of vectors and keyword queries leave them out of the match, so a question's content
// words decide what it finds. word must be lower-case.
bool is_stopword(std::string_view word);

// Approximate tokens: one per CJK character, one per Latin word (~0.75 words per token is close
// enough for sizing chunks), one per other symbol run.
size_t approx_tokens(std::string_view s);

struct ChunkOptions {
  size_t target_tokens = 400;
  size_t overlap_tokens = 50;
};

struct Chunk {
  std::string text;
  std::vector<std::string> heading_path;  // outermost first
  int page = 0;                           // page where the chunk starts (0: no pages)
  size_t tokens = 0;
};

// Cuts the document into chunks of about target_tokens: never across a heading, preferring
// paragraph, then sentence (。！？.!? and friends), then word boundaries; never inside a UTF-8
// sequence; consecutive chunks of one section share about overlap_tokens.
std::vector<Chunk> chunk_document(const parse::ParsedDocument& doc, const ChunkOptions& opts);

}  // namespace sluice::text
