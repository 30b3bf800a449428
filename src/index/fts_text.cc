// Derived FTS5 text for CJK-aware keyword search (see fts_text.h). Thread-safety: pure functions.
#include "index/fts_text.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/utf8.h"
#include "text/text.h"

namespace sluice::index {
namespace {

// Longest query we turn into terms; beyond this a query is a document, not a question.
constexpr size_t kMaxQueryTerms = 64;

// Decodes one UTF-8 sequence at s[i] and advances i; a bad byte is returned as U+FFFD.
// Han (with extensions and compatibility ideographs), Hiragana, Katakana: written without spaces.
bool is_cjk(uint32_t cp) {
  if (cp == 0x30FB) return false;  // KATAKANA MIDDLE DOT is punctuation
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x3040 && cp <= 0x30FF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3134F) || (cp >= 0x31F0 && cp <= 0x31FF);
}

// Full-width ASCII (ＳＱＬ，１２３) is common in Chinese text; fold it so it matches ASCII.
uint32_t fold_width(uint32_t cp) {
  return (cp >= 0xFF01 && cp <= 0xFF5E) ? cp - 0xFEE0 : cp;
}

// A letter or digit for query terms. Only ASCII is classified exactly; other non-CJK code points
// count as letters unless they are in a punctuation or symbol block. A misjudged character is
// harmless: inside a quoted term unicode61 splits it off (making a phrase) or drops it.
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
  return !((cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
           (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
           (cp >= 0xFF00 && cp <= 0xFFEF) || (cp >= 0x1F000 && cp <= 0x1FAFF) || cp == 0xFFFD);
}

void append_cjk_run(const std::vector<uint32_t>& run, std::string& out) {
  if (run.empty()) return;
  out += ' ';
  for (size_t k = 0; k + 1 < run.size(); ++k) {
    utf8::append(out, run[k]);
    utf8::append(out, run[k + 1]);
    out += ' ';
  }
  for (uint32_t cp : run) {
    utf8::append(out, cp);
    out += ' ';
  }
}

}  // namespace

std::string fts_document_text(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  std::vector<uint32_t> run;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t cp = utf8::decode(s, i);
    if (is_cjk(cp)) {
      run.push_back(cp);
      continue;
    }
    append_cjk_run(run, out);
    run.clear();
    uint32_t folded = fold_width(cp);
    if (folded != cp) {
      out += static_cast<char>(folded);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  append_cjk_run(run, out);
  return out;
}

std::vector<QueryTerm> fts_query_terms(std::string_view query) {
  std::vector<QueryTerm> terms;
  auto add_term = [&](std::string term, bool capitalized) {
    if (term.empty() || terms.size() >= kMaxQueryTerms) return;
    auto it = std::find_if(terms.begin(), terms.end(), [&](const QueryTerm& t) { return t.text == term; });
    if (it == terms.end()) {
      terms.push_back({std::move(term), capitalized});
    } else {
      it->capitalized = it->capitalized || capitalized;
    }
  };

  std::string word;
  bool capitalized = false;
  std::vector<uint32_t> run;
  auto flush_word = [&] {
    add_term(std::move(word), capitalized);
    word.clear();
    capitalized = false;
  };
  auto flush_run = [&] {
    if (run.size() == 1) {
      std::string t;
      utf8::append(t, run[0]);
      add_term(std::move(t), false);
    }
    for (size_t k = 0; k + 1 < run.size(); ++k) {
      std::string t;
      utf8::append(t, run[k]);
      utf8::append(t, run[k + 1]);
      add_term(std::move(t), false);
    }
    run.clear();
  };

  size_t i = 0;
  while (i < query.size()) {
    uint32_t cp = fold_width(utf8::decode(query, i));
    if (is_cjk(cp)) {
      flush_word();
      run.push_back(cp);
    } else if (is_word_char(cp)) {
      flush_run();
      // unicode61 folds case anyway; folding here lets "Is" meet the stopword "is" and "The"
      // dedupe with "the". That the user wrote a capital is kept (see QueryTerm).
      if (cp >= 'A' && cp <= 'Z') {
        cp += 'a' - 'A';
        capitalized = true;
      }
      utf8::append(word, cp);
    } else {
      flush_run();
      flush_word();
    }
  }
  flush_run();
  flush_word();
  // Stopwords match most chunks and decide nothing, and their long posting lists are most of a
  // query's cost; they are dropped unless the query has nothing else.
  std::vector<QueryTerm> content;
  for (const auto& t : terms)
    if (!text::is_stopword(t.text)) content.push_back(t);
  if (!content.empty()) terms.swap(content);

  return terms;
}

std::string fts_match(const std::vector<std::string>& terms) {
  // Terms hold only letters, digits and CJK characters, so quoting cannot be broken out of; the
  // doubling of '"' is kept as a guard should is_word_char() ever admit one.
  std::string out;
  for (const std::string& t : terms) {
    if (!out.empty()) out += " OR ";
    out += '"';
    for (char c : t) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace sluice::index
