// Tests for approx_tokens, the UTF-8 helpers and chunk_document: a golden file for a document with
// nested headings, a long Chinese section and unbreakable runs; unit tests for the packing rules;
// and a randomised loop over mixed CJK/ASCII/emoji input checking the invariants (valid UTF-8,
// tokens <= target, no text lost, no text from two sections in one chunk, determinism).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "text/text.h"
#include "text/text_fixture.h"
#include "text/utf8.h"

namespace sluice::text {
namespace {

using parse::Block;
using parse::BlockKind;
using parse::ParsedDocument;

// ---- approx_tokens ----

TEST(Tokens, CountsWordsCjkAndSymbols) {
  EXPECT_EQ(approx_tokens(""), 0u);
  EXPECT_EQ(approx_tokens("   \n\t "), 0u);
  EXPECT_EQ(approx_tokens("hello world"), 2u);
  EXPECT_EQ(approx_tokens("hello, world!"), 4u);  // hello , world !
  EXPECT_EQ(approx_tokens("v2 3.14"), 4u);        // v2 3 . 14
  EXPECT_EQ(approx_tokens("中文分词"), 4u);
  EXPECT_EQ(approx_tokens("你好，世界！"), 6u);  // CJK punctuation counts one each
  EXPECT_EQ(approx_tokens("ひらがな カタカナ 한국어"), 11u);
  EXPECT_EQ(approx_tokens("使用Kafka队列"), 5u);  // 使 用 Kafka 队 列
  EXPECT_EQ(approx_tokens("--- ..."), 2u);
  EXPECT_EQ(approx_tokens("naïve café Привет"), 3u);
  EXPECT_EQ(approx_tokens("e\u0301te\u0301"), 1u);          // combining accents stay in the word
  EXPECT_EQ(approx_tokens("\U0001F600\U0001F600 ok"), 2u);  // an emoji run is one symbol run
  EXPECT_EQ(approx_tokens("a\u3000b\u00A0c"), 3u);          // ideographic space and NBSP separate
  EXPECT_EQ(approx_tokens("zero\u200Bwidth"), 1u);
}

TEST(Tokens, NeverGrowsWhenTextIsJoined) {
  // The chunker relies on this: tokens(a + b) <= tokens(a) + tokens(b).
  const char* parts[] = {"abc", "def ", "中", "！", "..", " x", "\u0301", "\U0001F600", "12"};
  for (const char* a : parts) {
    for (const char* b : parts) {
      EXPECT_LE(approx_tokens(std::string(a) + b), approx_tokens(a) + approx_tokens(b)) << a << "|" << b;
    }
  }
}

// ---- UTF-8 helpers ----

TEST(Utf8, DecodesAndRejectsMalformedSequences) {
  const std::string s = "a\u00E9\u4E2D\U0001F600";
  size_t i = 0;
  EXPECT_EQ(utf8::decode(s, i), U'a');
  EXPECT_EQ(utf8::decode(s, i), U'\u00E9');
  EXPECT_EQ(utf8::decode(s, i), U'\u4E2D');
  EXPECT_EQ(utf8::decode(s, i), U'\U0001F600');
  EXPECT_EQ(i, s.size());
  for (const char* bad : {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE4\xB8",
                          "\xF8\x88\x80\x80\x80", "\xFF"}) {
    EXPECT_FALSE(utf8::is_valid(bad)) << ::testing::PrintToString(bad);
    EXPECT_FALSE(test::valid_utf8(bad)) << ::testing::PrintToString(bad);
    const std::string fixed = utf8::sanitize(bad);
    EXPECT_TRUE(utf8::is_valid(fixed));
    EXPECT_TRUE(test::valid_utf8(fixed));
  }
  EXPECT_TRUE(utf8::is_valid(s));
  EXPECT_TRUE(utf8::is_valid("\uFFFD"));
}

TEST(Utf8, AppendRoundTrips) {
  for (char32_t cp : {U'\0', U'A', U'\u07FF', U'\u0800', U'\uFFFD', U'\U00010000', U'\U0010FFFF'}) {
    std::string s;
    utf8::append(s, cp);
    size_t i = 0;
    EXPECT_EQ(utf8::decode(s, i), cp);
    EXPECT_EQ(i, s.size());
  }
  std::string s;
  utf8::append(s, 0xD800);
  EXPECT_EQ(s, "\uFFFD");
}

TEST(Utf8, TruncatesOnlyAtCodePointBoundaries) {
  const std::string s = "ab中\U0001F600";  // 2 + 3 + 4 bytes
  EXPECT_EQ(utf8::truncate(s, 0), "");
  EXPECT_EQ(utf8::truncate(s, 2), "ab");
  EXPECT_EQ(utf8::truncate(s, 3), "ab");
  EXPECT_EQ(utf8::truncate(s, 4), "ab");
  EXPECT_EQ(utf8::truncate(s, 5), "ab中");
  EXPECT_EQ(utf8::truncate(s, 8), "ab中");
  EXPECT_EQ(utf8::truncate(s, 9), s);
  EXPECT_EQ(utf8::truncate(s, 100), s);
  EXPECT_EQ(utf8::last_code_point(s), U'\U0001F600');
  EXPECT_EQ(utf8::last_code_point(""), U'\0');
}

TEST(Utf8, CharacterClasses) {
  for (char32_t cp : {U'中', U'。', U'，', U'あ', U'カ', U'한', U'！', U'\U00020000', U'ｶ'}) {
    EXPECT_TRUE(utf8::is_cjk(cp)) << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {U'a', U'é', U'\u3000', U'\U0001F600', U'—', U'Я'}) {
    EXPECT_FALSE(utf8::is_cjk(cp)) << static_cast<uint32_t>(cp);
  }
  EXPECT_TRUE(utf8::is_space(U'\u3000'));
  EXPECT_TRUE(utf8::is_space(U'\u00A0'));
  EXPECT_FALSE(utf8::is_space(U'\u200B'));
  EXPECT_TRUE(utf8::is_zero_width(U'\u200B'));
  EXPECT_TRUE(utf8::is_cjk_punct(U'。'));
  EXPECT_FALSE(utf8::is_cjk_punct(U'中'));
}

// ---- chunk_document ----

ParsedDocument doc_of(std::vector<Block> blocks) {
  ParsedDocument doc;
  doc.blocks = std::move(blocks);
  return doc;
}
Block heading(int level, std::string text, int page = 0) {
  return {BlockKind::kHeading, level, std::move(text), page};
}
Block para(std::string text, int page = 0) {
  return {BlockKind::kParagraph, 0, std::move(text), page};
}

TEST(Chunk, GoldenManual) {
  const ParsedDocument doc = test::read_fixture_document("tests/fixtures/text/chunk_manual.txt");
  const std::vector<Chunk> chunks = chunk_document(doc, {.target_tokens = 24, .overlap_tokens = 6});
  for (const Chunk& c : chunks) {
    EXPECT_LE(c.tokens, 24u) << c.text;
    EXPECT_TRUE(test::valid_utf8(c.text));
  }
  test::expect_golden("text/chunk_manual.txt", test::render_chunks(chunks));
}

TEST(Chunk, EmptyDocumentsGiveNoChunks) {
  EXPECT_TRUE(chunk_document(ParsedDocument{}, {}).empty());
  EXPECT_TRUE(chunk_document(doc_of({para("  \n ")}), {}).empty());
  EXPECT_TRUE(chunk_document(doc_of({heading(1, "  "), para(" ")}), {}).empty());
}

// A title page or a stub is still found by its words.
TEST(Chunk, ADocumentOfHeadingsOnlyIsOneChunkOfThem) {
  const auto chunks =
      chunk_document(doc_of({heading(1, "Only a heading", 2), heading(2, "第二章", 3)}), {});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "Only a heading\n\n第二章");
  EXPECT_TRUE(chunks[0].heading_path.empty());
  EXPECT_EQ(chunks[0].page, 2);
  // With any body text, headings stay out of the text as before.
  const auto body = chunk_document(doc_of({heading(1, "A"), heading(1, "B"), para("b text")}), {});
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0].text, "b text");
}

TEST(Chunk, SmallBlocksArePackedAndHeadingsAreNotText) {
  const auto chunks =
      chunk_document(doc_of({heading(1, "Intro", 3), para("One two three.", 3), para("Four five.", 4)}),
                     {.target_tokens = 100});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "One two three.\n\nFour five.");
  EXPECT_EQ(chunks[0].heading_path, std::vector<std::string>{"Intro"});
  EXPECT_EQ(chunks[0].page, 3);
  EXPECT_EQ(chunks[0].tokens, 7u);
}

TEST(Chunk, HeadingPathReplacesDeeperAndEqualLevels) {
  const auto chunks = chunk_document(
      doc_of({heading(1, "A"), heading(2, "B"), heading(3, "C"), para("c text"), heading(2, "D"),
              para("d text"), heading(1, "E"), heading(3, "F"), para("f text")}),
      {});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].heading_path, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(chunks[1].heading_path, (std::vector<std::string>{"A", "D"}));
  EXPECT_EQ(chunks[2].heading_path, (std::vector<std::string>{"E", "F"}));
}

TEST(Chunk, NeverMixesSectionsEvenWithTheSameHeading) {
  const auto chunks = chunk_document(
      doc_of({heading(2, "Example"), para("first"), heading(2, "Example"), para("second")}), {});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, "first");
  EXPECT_EQ(chunks[1].text, "second");
}

TEST(Chunk, ABlockThatDoesNotFitStartsTheNextChunk) {
  // 6 + 6 tokens ("a", "b", ".", ...) fit a target of 14; the third block (6) does not, and starts a
  // new chunk that begins with the overlap (the last whole sentence of the previous chunk, 3 tokens).
  const auto chunks =
      chunk_document(doc_of({para("a b. c d.", 1), para("e f. g h.", 2), para("i j. k l.", 3)}),
                     {.target_tokens = 14, .overlap_tokens = 3});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, "a b. c d.\n\ne f. g h.");
  EXPECT_EQ(chunks[1].text, "g h.\n\ni j. k l.");
  EXPECT_EQ(chunks[0].page, 1);
  EXPECT_EQ(chunks[1].page, 2);  // it starts with the overlap from page 2
}

TEST(Chunk, LongChineseParagraphSplitsAtSentenceEnds) {
  const std::string text = "第一句话在这里。第二句话也在这里！第三句话是问题吗？第四句话结束；第五句话。";
  const auto chunks = chunk_document(doc_of({para(text)}), {.target_tokens = 20, .overlap_tokens = 0});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].text, "第一句话在这里。第二句话也在这里！");
  EXPECT_EQ(chunks[1].text, "第三句话是问题吗？第四句话结束；");
  EXPECT_EQ(chunks[2].text, "第五句话。");
}

TEST(Chunk, SentenceEndsNeedSpaceAfterAsciiPunctuation) {
  const auto chunks =
      chunk_document(doc_of({para("Pi is 3.14 exactly. See e.g.this one! \"Quoted.\" Next.")}),
                     {.target_tokens = 9, .overlap_tokens = 0});
  std::vector<std::string> texts;
  for (const auto& c : chunks) texts.push_back(c.text);
  EXPECT_EQ(texts,
            (std::vector<std::string>{"Pi is 3.14 exactly.", "See e.g.this one!", "\"Quoted.\" Next."}));
}

TEST(Chunk, UnbreakableRunsAreCutAtCodePoints) {
  const std::string emoji_run = [] {
    std::string s;
    for (int i = 0; i < 100; ++i) s += "\U0001F600";
    return s;
  }();
  const auto chunks = chunk_document(doc_of({para(emoji_run)}), {.target_tokens = 5, .overlap_tokens = 0});
  // 100 emoji: one symbol run, charged one token per 8 code points, so 40 per chunk.
  ASSERT_EQ(chunks.size(), 3u);
  std::string joined;
  for (const auto& c : chunks) {
    EXPECT_TRUE(test::valid_utf8(c.text));
    EXPECT_LE(c.tokens, 5u);
    joined += c.text;
  }
  EXPECT_EQ(joined, emoji_run);
}

TEST(Chunk, CombiningMarksStayWithTheirBase) {
  std::string s;
  for (int i = 0; i < 30; ++i) s += "e\u0301";
  const auto chunks = chunk_document(doc_of({para(s)}), {.target_tokens = 1, .overlap_tokens = 0});
  ASSERT_GT(chunks.size(), 1u);
  for (const auto& c : chunks) {
    size_t i = 0;
    EXPECT_NE(utf8::decode(c.text, i), U'\u0301') << "chunk starts with a bare combining mark";
  }
}

TEST(Chunk, TargetZeroIsTreatedAsOne) {
  const auto chunks = chunk_document(doc_of({para("中文")}), {.target_tokens = 0, .overlap_tokens = 10});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, "中");
  EXPECT_EQ(chunks[1].text, "文");
}

TEST(Chunk, CodeBlocksKeepIndentation) {
  const auto chunks = chunk_document(doc_of({Block{BlockKind::kCode, 0, "  a = 1\n  b = 2\n  c = 3\n", 0}}),
                                     {.target_tokens = 6, .overlap_tokens = 0});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, "  a = 1\n  b = 2");
  EXPECT_EQ(chunks[1].text, "  c = 3");
}

// ---- randomised invariants ----

std::string strip_spaces(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    if (!utf8::is_space(utf8::decode(s, i))) out.append(s.substr(start, i - start));
  }
  return out;
}

TEST(Chunk, RandomMixedInputKeepsInvariants) {
  std::mt19937 rng(20240601);
  const std::vector<std::string> pieces = {
      "hello",
      "world",
      "Kafka",
      "x",
      "1234",
      " ",
      " ",
      "  ",
      "\n",
      "。",
      "！",
      "？",
      "；",
      "…",
      ".",
      "!",
      "?",
      ", ",
      "中",
      "文",
      "字",
      "あ",
      "한",
      "\U0001F600",
      "\U0001F468\u200D\U0001F469",
      "e\u0301",
      "\u3000",
      "“",
      "”",
      "(",
      ")",
      "supercalifragilisticexpialidocious",
      "\u00A0",
      "é",
      "—",
  };
  auto rand_text = [&](size_t max_pieces) {
    std::string s;
    const size_t n = std::uniform_int_distribution<size_t>(1, max_pieces)(rng);
    for (size_t i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    return s;
  };
  for (int round = 0; round < 400; ++round) {
    ParsedDocument doc;
    const int nblocks = std::uniform_int_distribution<int>(0, 8)(rng);
    for (int b = 0; b < nblocks; ++b) {
      const int r = rng() % 10;
      if (r == 0) {
        doc.blocks.push_back(heading(1 + rng() % 3, rand_text(3), 1 + b / 3));
      } else {
        Block blk = para(rand_text(r == 1 ? 400 : 60), 1 + b / 3);
        if (r == 2) blk.kind = BlockKind::kCode;
        doc.blocks.push_back(blk);
      }
    }
    const size_t target = std::uniform_int_distribution<size_t>(1, 60)(rng);
    const size_t overlap = std::uniform_int_distribution<size_t>(0, target)(rng);
    const auto chunks = chunk_document(doc, {.target_tokens = target, .overlap_tokens = overlap});
    const auto again = chunk_document(doc, {.target_tokens = target, .overlap_tokens = overlap});
    ASSERT_EQ(test::render_chunks(chunks), test::render_chunks(again)) << "not deterministic";

    // Expected content per section, without white space.
    std::vector<std::string> sections(1);
    for (const Block& b : doc.blocks) {
      if (b.kind == BlockKind::kHeading) {
        sections.emplace_back();
      } else {
        sections.back() += strip_spaces(b.text);
      }
    }
    std::string all_text;
    for (const std::string& s : sections) all_text += s;
    if (all_text.empty()) {  // headings only: they are the text, as one section
      sections.assign(1, "");
      for (const Block& b : doc.blocks) sections[0] += strip_spaces(b.text);
      all_text = sections[0];
    }

    std::string joined;
    for (const Chunk& c : chunks) {
      ASSERT_TRUE(test::valid_utf8(c.text)) << "round " << round;
      ASSERT_FALSE(c.text.empty());
      ASSERT_LE(c.tokens, target) << "round " << round << ": " << c.text;
      ASSERT_EQ(c.tokens, approx_tokens(c.text));
      const std::string stripped = strip_spaces(c.text);
      bool inside_one_section = false;
      for (const std::string& s : sections) inside_one_section |= s.find(stripped) != std::string::npos;
      ASSERT_TRUE(inside_one_section) << "round " << round << ": chunk not from a single section: " << c.text;
      joined += stripped;
    }
    if (overlap == 0 || target == 1) {
      // Without overlap, the chunks are the document's text, in order, nothing lost or repeated.
      ASSERT_EQ(joined, all_text) << "round " << round;
    } else {
      ASSERT_GE(joined.size(), all_text.size()) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace sluice::text
