// How the local index makes FTS5 work for Chinese. FTS5's unicode61 tokenizer splits on spaces and
// punctuation, so a run of Han text ("数据库连接池") would be one giant token that no query matches.
// The index therefore stores a derived text in which every CJK run is spelled out as its
// character bigrams and single characters ("数据 据库 库连 ... 数 据 库 ..."), while other text is
// left for unicode61; queries are derived the same way. The trigram tokenizer was rejected: it
// cannot match two-character terms, and most Chinese words are two characters.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::index {

// Bumped whenever fts_document_text() changes: the index rebuilds its FTS table when the stored
// version differs (old rows could not be deleted otherwise — the FTS table is contentless).
inline constexpr int kFtsTextVersion = 1;

// The text to index for s (deterministic: deleting a row re-derives it).
std::string fts_document_text(std::string_view s);

// A user's query becomes an FTS5 MATCH expression in two steps, so that the index can choose
// among the terms (by how many chunks each matches) before it builds the expression. Every Latin
// word and every CJK bigram (or lone CJK character) becomes a quoted term, joined with OR and
// ranked by bm25. Quoting makes any input safe: quotes, colons, parentheses, AND/OR/NOT, '*', '^'
// are matched as text or dropped. No terms (only punctuation, say): nothing to search for.

// A term of a query, lower-cased. `capitalized`: the user wrote it with a capital letter ("R",
// "CSV", "SPSS", "Python"), which in a question mostly marks the name of the thing asked about; the
// index takes such terms first even when they are common (a question about R in a corpus about R).
struct QueryTerm {
  std::string text;
  bool capitalized = false;
};

// The query's terms, deduplicated, stopwords left out unless nothing else is there; and the MATCH
// expression for a list of terms.
std::vector<QueryTerm> fts_query_terms(std::string_view query);
std::string fts_match(const std::vector<std::string>& terms);

}  // namespace sluice::index
