// The `hash` embedder and open_embedder().
//
// Feature hashing (the "hashing trick"): every feature of a text is hashed with XXH3 into one of
// `dimension` buckets, and one more bit of the hash picks the sign, so collisions cancel out on
// average instead of piling up. Features: lower-cased Latin words (runs of letters and digits),
// adjacent word pairs (weight 0.5), and for CJK text (Han, kana) character bigrams (weight 1) and
// single characters (weight 0.25, so a one-character query still finds something). Each feature
// counts 1 + log(tf) times its weight; the vector is L2-normalised (an empty text gives zeros).
//
// This is LEXICAL similarity, not semantic: texts sharing words and character pairs come out
// close; synonyms, paraphrases and translations do not. It needs no model and no network, is
// deterministic across runs and machines (XXH3 with fixed seeds), and runs at hundreds of MB/s.
//
// Ownership: HashEmbedder holds only its dimension; per-thread scratch space (a feature table)
// lives in thread_local storage and is reused, so embed() allocates nothing per token.
// Thread-safety: embed() may be called from several threads at once.
// Inlined: the features are a few bytes each, where a library call would cost more than the hash.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "embed/embedder.h"
#include "embed/http_embedder.h"
#include "text/text.h"

namespace sluice::embed {
namespace {

constexpr size_t kDefaultDimension = 512;
constexpr size_t kMinDimension = 8;
constexpr size_t kMaxDimension = 65536;

// Distinct seeds keep the feature families apart: the word "ab" and a pair never share a hash.
constexpr uint64_t kSeedWord = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kSeedWordPair = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kSeedCjkUni = 0x165667B19E3779F9ull;
constexpr uint64_t kSeedCjkBi = 0x27D4EB2F165667C5ull;

constexpr float kWeightWord = 1.0f;
constexpr float kWeightWordPair = 0.5f;
constexpr float kWeightCjkBigram = 1.0f;
constexpr float kWeightCjkUnigram = 0.25f;

// Longer "words" (base64, hashes) are truncated: they carry no lexical signal worth the bytes.
constexpr size_t kMaxWordBytes = 64;

// Decodes one UTF-8 sequence at s[i]; advances i. Invalid bytes decode as U+FFFD, one byte each,
// so no input can stall or overrun the loop.
inline uint32_t next_codepoint(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char c = p[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  size_t n = s.size();
  if ((c & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
    uint32_t cp = ((c & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
    i += 2;
    return cp >= 0x80 ? cp : 0xFFFD;
  }
  if ((c & 0xF0) == 0xE0 && i + 2 < n && (p[i + 1] & 0xC0) == 0x80 && (p[i + 2] & 0xC0) == 0x80) {
    uint32_t cp = ((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
    i += 3;
    return cp >= 0x800 ? cp : 0xFFFD;
  }
  if ((c & 0xF8) == 0xF0 && i + 3 < n && (p[i + 1] & 0xC0) == 0x80 && (p[i + 2] & 0xC0) == 0x80 &&
      (p[i + 3] & 0xC0) == 0x80) {
    uint32_t cp =
        ((c & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
    i += 4;
    return (cp >= 0x10000 && cp <= 0x10FFFF) ? cp : 0xFFFD;
  }
  ++i;
  return 0xFFFD;
}

// Scripts written without spaces between words: Han (with extensions and compatibility
// ideographs), Hiragana and Katakana.
inline bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x3040 && cp <= 0x30FF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3134F) || (cp >= 0x31F0 && cp <= 0x31FF);
}

enum class CharClass { kSeparator, kSentenceEnd, kWord, kCjk };

// Folds full-width ASCII (common in Chinese text) to ASCII and lower-cases the scripts whose case
// mapping is a fixed offset; other code points pass unchanged.
inline uint32_t fold(uint32_t cp) {
  if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9) ||
      (cp >= 0x410 && cp <= 0x42F)) {
    return cp + 32;
  }
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
  // Latin Extended-A: capital and small letters alternate, capital first.
  if (((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x14A && cp <= 0x177)) && (cp & 1) == 0) return cp + 1;
  return cp;
}

inline CharClass classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) return CharClass::kWord;
    if (cp == '.' || cp == '!' || cp == '?' || cp == ';' || cp == ':') return CharClass::kSentenceEnd;
    return CharClass::kSeparator;
  }
  if (is_cjk(cp) && cp != 0x30FB) return CharClass::kCjk;  // U+30FB KATAKANA MIDDLE DOT separates
  if (cp == 0x3002 || cp == 0xFF61 || cp == 0xFF0E) return CharClass::kSentenceEnd;  // 。｡
  // Punctuation and symbol blocks separate words; every other code point is taken as a letter,
  // which is right for Latin-1, Greek, Cyrillic, Hangul and most alphabets.
  if ((cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
      (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
      (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) ||
      (cp >= 0x1F000 && cp <= 0x1FAFF) || cp == 0xFFFD || (cp >= 0xFE00 && cp <= 0xFE0F)) {
    return CharClass::kSeparator;
  }
  return CharClass::kWord;
}

inline size_t encode_utf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

// Counts features of one text: open addressing on the 64-bit feature hash (0 marks a free
// slot). Reused across texts on a thread; only the slots used are cleared.
class FeatureTable {
 public:
  void add(uint64_t h, float weight) {
    if (h == 0) h = 1;
    if ((used_.size() + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>(h) & mask;
    while (true) {
      Slot& s = slots_[i];
      if (s.key == h) {
        s.count += 1;
        return;
      }
      if (s.key == 0) {
        s = Slot{h, 1, weight};
        used_.push_back(static_cast<uint32_t>(i));
        return;
      }
      i = (i + 1) & mask;
    }
  }

  // Adds every feature into out[0, dim) and clears the table.
  void drain(float* out, size_t dim) {
    for (uint32_t idx : used_) {
      Slot& s = slots_[idx];
      // Bucket from the low 32 bits by multiply-shift (no division); sign from the top bit.
      size_t bucket = static_cast<size_t>(((s.key & 0xFFFFFFFFull) * dim) >> 32);
      float v = s.count == 1 ? s.weight : s.weight * (1.0f + std::log(s.count));
      out[bucket] += (s.key >> 63) ? -v : v;
      s = Slot{};
    }
    used_.clear();
  }

 private:
  struct Slot {
    uint64_t key = 0;
    float count = 0;
    float weight = 0;
  };

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(std::max<size_t>(1024, old.size() * 2), Slot{});
    size_t mask = slots_.size() - 1;
    used_.clear();
    for (const Slot& s : old) {
      if (s.key == 0) continue;
      size_t i = static_cast<size_t>(s.key) & mask;
      while (slots_[i].key != 0) i = (i + 1) & mask;
      slots_[i] = s;
      used_.push_back(static_cast<uint32_t>(i));
    }
  }

  std::vector<Slot> slots_;
  std::vector<uint32_t> used_;
};

void extract_features(std::string_view text, FeatureTable& table) {
  char word[kMaxWordBytes + 4];
  size_t word_len = 0;
  uint64_t prev_word = 0;  // hash of the previous word in this sentence, 0 when none
  uint32_t prev_cjk = 0;   // previous CJK character of the current run, 0 when none

  auto end_word = [&] {
    if (word_len == 0) return;
    if (text::is_stopword(std::string_view(word, word_len))) {
      // Left out, and the words on either side of it pair up: "read a file" gives (read, file).
      word_len = 0;
      return;
    }
    uint64_t h = XXH3_64bits_withSeed(word, word_len, kSeedWord);
    table.add(h, kWeightWord);
    if (prev_word != 0) {
      uint64_t pair[2] = {prev_word, h};
      table.add(XXH3_64bits_withSeed(pair, sizeof pair, kSeedWordPair), kWeightWordPair);
    }
    prev_word = h;
    word_len = 0;
  };

  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp = fold(next_codepoint(text, i));
    switch (classify(cp)) {
      case CharClass::kWord:
        prev_cjk = 0;
        if (word_len < kMaxWordBytes) word_len += encode_utf8(cp, word + word_len);
        break;
      case CharClass::kCjk: {
        end_word();
        prev_word = 0;
        table.add(XXH3_64bits_withSeed(&cp, sizeof cp, kSeedCjkUni), kWeightCjkUnigram);
        if (prev_cjk != 0) {
          uint32_t pair[2] = {prev_cjk, cp};
          table.add(XXH3_64bits_withSeed(pair, sizeof pair, kSeedCjkBi), kWeightCjkBigram);
        }
        prev_cjk = cp;
        break;
      }
      case CharClass::kSentenceEnd:
        end_word();
        prev_word = 0;
        prev_cjk = 0;
        break;
      case CharClass::kSeparator:
        end_word();
        prev_cjk = 0;
        break;
    }
  }
  end_word();
}

class HashEmbedder final : public Embedder {
 public:
  explicit HashEmbedder(size_t dimension) : dimension_(dimension) {}

  size_t dimension() const override { return dimension_; }
  std::string name() const override { return "hash:" + std::to_string(dimension_); }

  Status embed(std::span<const std::string_view> texts, std::vector<float>* out) override {
    if (out == nullptr) return Status::invalid_argument("embed: out is null");
    thread_local FeatureTable table;
    size_t base = out->size();
    out->resize(base + texts.size() * dimension_, 0.0f);
    for (size_t t = 0; t < texts.size(); ++t) {
      float* v = out->data() + base + t * dimension_;
      extract_features(texts[t], table);
      table.drain(v, dimension_);
      double norm = 0;
      for (size_t d = 0; d < dimension_; ++d) norm += static_cast<double>(v[d]) * v[d];
      // Features can cancel exactly (or be absent): leave zeros rather than divide by zero.
      if (norm > 0) {
        float inv = static_cast<float>(1.0 / std::sqrt(norm));
        for (size_t d = 0; d < dimension_; ++d) v[d] *= inv;
      }
    }
    return Status::ok();
  }

 private:
  size_t dimension_;
};

}  // namespace

Result<std::unique_ptr<Embedder>> open_embedder(std::string_view uri) {
  std::string_view scheme = uri.substr(0, uri.find(':'));
  if (scheme.empty()) return Status::invalid_argument("embedder: empty URI (expected e.g. \"hash:512\")");
  if (is_http_embedder_uri(uri)) {
    SLUICE_ASSIGN_OR_RETURN(HttpEmbedderOptions opts,
                            parse_http_embedder_uri(uri, [](const char* name) { return std::getenv(name); }));
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<HttpEmbedder> e, HttpEmbedder::open(std::move(opts)));
    return std::unique_ptr<Embedder>(std::move(e));
  }
  if (scheme != "hash") {
    return Status::unsupported(
        "embedder: unsupported scheme '" + std::string(scheme) +
        "' (supported: hash:DIM, ollama://HOST:PORT/MODEL, openai://HOST[:PORT]/v1?model=M, "
        "openais://...)");
  }
  size_t dimension = kDefaultDimension;
  if (uri.size() > scheme.size()) {
    std::string_view arg = uri.substr(scheme.size() + 1);
    unsigned long long v = 0;
    auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
    if (arg.empty() || ec != std::errc() || ptr != arg.data() + arg.size()) {
      return Status::invalid_argument("embedder: bad dimension '" + std::string(arg) + "' in '" +
                                      std::string(uri) + "' (expected an integer " +
                                      std::to_string(kMinDimension) + ".." + std::to_string(kMaxDimension) +
                                      ")");
    }
    if (v < kMinDimension || v > kMaxDimension) {
      return Status::invalid_argument("embedder: dimension " + std::to_string(v) + " out of range " +
                                      std::to_string(kMinDimension) + ".." + std::to_string(kMaxDimension));
    }
    dimension = static_cast<size_t>(v);
  }
  return std::unique_ptr<Embedder>(std::make_unique<HashEmbedder>(dimension));
}

}  // namespace sluice::embed
