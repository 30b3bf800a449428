// The English stopword list (text.h). Short on purpose: only words that are frequent in every
// kind of text and never the point of a question; "not", "no" and numbers stay.
#include <algorithm>
#include <array>
#include <string_view>

#include "text/text.h"

namespace sluice::text {
namespace {

// Sorted, for binary search.
constexpr std::array<std::string_view, 72> kStopwords = {
    "a",     "about", "after", "all",   "also",  "an",    "and",   "any",   "are",   "as",    "at",    "be",
    "been",  "being", "but",   "by",    "can",   "could", "did",   "do",    "does",  "doing", "for",   "from",
    "had",   "has",   "have",  "how",   "i",     "if",    "in",    "into",  "is",    "it",    "its",   "me",
    "my",    "of",    "on",    "or",    "our",   "should", "so",   "some",  "such",  "than",  "that",  "the",
    "their", "them",  "then",  "there", "these", "they",  "this",  "those", "to",    "us",    "was",   "we",
    "were",  "what",  "when",  "where", "which", "while", "who",   "why",   "will",  "with",  "would", "you",
};
static_assert(std::is_sorted(kStopwords.begin(), kStopwords.end()));

}  // namespace

bool is_stopword(std::string_view word) {
  return word.size() <= 6 && std::binary_search(kStopwords.begin(), kStopwords.end(), word);
}

}  // namespace sluice::text
