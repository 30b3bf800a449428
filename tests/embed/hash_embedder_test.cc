// Tests of the hash embedder: URI parsing, determinism, normalisation, lexical similarity in
// English and Chinese, empty texts, and throughput (printed, not asserted).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "embed/embedder.h"

namespace sluice::embed {
namespace {

std::unique_ptr<Embedder> make(std::string_view uri) {
  auto e = open_embedder(uri);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return std::move(e).value();
}

std::vector<float> embed_one(Embedder& e, std::string_view text) {
  std::vector<float> out;
  std::string_view texts[] = {text};
  Status st = e.embed(texts, &out);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double norm(const std::vector<float>& a) {
  return std::sqrt(dot(a, a));
}

TEST(HashEmbedderTest, UriAndDimension) {
  auto e = make("hash");
  EXPECT_EQ(e->dimension(), 512u);
  EXPECT_EQ(e->name(), "hash:512");
  EXPECT_EQ(make("hash:64")->name(), "hash:64");
  EXPECT_EQ(make("hash:8")->dimension(), 8u);
  EXPECT_EQ(make("hash:65536")->dimension(), 65536u);

  for (std::string_view bad : {"hash:7", "hash:0", "hash:65537", "hash:", "hash:abc", "hash:12x", "hash:-5",
                               "hash:99999999999999999999999", ""}) {
    auto r = open_embedder(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad << ": " << r.status().to_string();
  }
  auto r = open_embedder("ollama:nomic-embed-text");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kUnsupported);
}

TEST(HashEmbedderTest, DeterministicAndNormalised) {
  auto a = make("hash:256");
  auto b = make("hash:256");
  std::string_view texts[] = {"The quick brown fox jumps over the lazy dog.", "数据库连接池的配置方法",
                              "Mixed 混合 text with SQLite数据库 and ＦＵＬＬ-width ＡＳＣＩＩ", "x"};
  std::vector<float> va, vb;
  ASSERT_TRUE(a->embed(texts, &va).is_ok());
  ASSERT_TRUE(b->embed(texts, &vb).is_ok());
  ASSERT_EQ(va.size(), 4u * 256);
  EXPECT_EQ(va, vb);  // bit-identical across instances

  // Embedding one at a time gives the same vectors as a batch (no state leaks between texts).
  for (size_t t = 0; t < 4; ++t) {
    std::vector<float> one = embed_one(*a, texts[t]);
    std::vector<float> slice(va.begin() + t * 256, va.begin() + (t + 1) * 256);
    EXPECT_EQ(one, slice) << t;
    EXPECT_NEAR(norm(one), 1.0, 1e-5) << t;
  }

  // embed() appends.
  std::vector<float> out = {42.0f};
  ASSERT_TRUE(a->embed(std::span<const std::string_view>(texts, 1), &out).is_ok());
  ASSERT_EQ(out.size(), 257u);
  EXPECT_EQ(out[0], 42.0f);
}

TEST(HashEmbedderTest, EmptyAndPunctuationGiveZeros) {
  auto e = make("hash:128");
  for (std::string_view text : {"", "   \n\t", "!!! ... ，。、"}) {
    std::vector<float> v = embed_one(*e, text);
    ASSERT_EQ(v.size(), 128u);
    for (float x : v) {
      EXPECT_FALSE(std::isnan(x));
      EXPECT_EQ(x, 0.0f);
    }
  }
  std::vector<float> out;
  ASSERT_TRUE(e->embed({}, &out).is_ok());
  EXPECT_TRUE(out.empty());
}

TEST(HashEmbedderTest, CaseAndWidthFolding) {
  auto e = make("hash:512");
  EXPECT_NEAR(dot(embed_one(*e, "SQLite Database"), embed_one(*e, "sqlite database")), 1.0, 1e-5);
  EXPECT_NEAR(dot(embed_one(*e, "ＳＱＬｉｔｅ"), embed_one(*e, "sqlite")), 1.0, 1e-5);
  EXPECT_NEAR(dot(embed_one(*e, "Ärger ÉCOLE Москва"), embed_one(*e, "ärger école москва")), 1.0, 1e-5);
}

TEST(HashEmbedderTest, StopwordsAreLeftOut) {
  auto e = make("hash:512");
  // A question's function words do not pull it towards every text that has them.
  EXPECT_NEAR(dot(embed_one(*e, "How do I read a CSV file into the data frame?"),
                  embed_one(*e, "read CSV file data frame")),
              1.0, 1e-5);
  EXPECT_LT(dot(embed_one(*e, "how do I do this with the thing"), embed_one(*e, "how is it done in the unit")), 0.3);
  // Only stopwords: nothing to embed.
  EXPECT_EQ(norm(embed_one(*e, "what is the")), 0.0);
}

TEST(HashEmbedderTest, SimilarTextsAreCloserEnglish) {
  auto e = make("hash:512");
  auto q = embed_one(*e, "How do I configure the database connection pool size?");
  auto near = embed_one(*e, "The connection pool size of the database is configured in pool.toml.");
  auto far = embed_one(*e, "Bananas are rich in potassium and grow in tropical climates.");
  EXPECT_GT(dot(q, near), dot(q, far) + 0.2) << dot(q, near) << " vs " << dot(q, far);
  EXPECT_GT(dot(q, near), 0.3);
  EXPECT_LT(std::abs(dot(q, far)), 0.2);
}

TEST(HashEmbedderTest, SimilarTextsAreCloserChinese) {
  auto e = make("hash:512");
  auto q = embed_one(*e, "如何配置数据库连接池的大小？");
  auto near = embed_one(*e, "数据库连接池的大小在配置文件中设置，默认为十个连接。");
  auto far = embed_one(*e, "香蕉富含钾元素，生长在热带气候地区。");
  EXPECT_GT(dot(q, near), dot(q, far) + 0.2) << dot(q, near) << " vs " << dot(q, far);
  EXPECT_GT(dot(q, near), 0.3);

  // A two-character query finds the text containing it.
  auto two = embed_one(*e, "数据");
  EXPECT_GT(dot(two, near), dot(two, far) + 0.1);
}

TEST(HashEmbedderTest, WordOrderMattersALittle) {
  // Word pairs make "dog bites man" differ from "man bites dog", but not much.
  auto e = make("hash:1024");
  double s = dot(embed_one(*e, "dog bites man"), embed_one(*e, "man bites dog"));
  EXPECT_LT(s, 0.99);
  EXPECT_GT(s, 0.5);
}

TEST(HashEmbedderTest, InvalidUtf8IsHarmless) {
  auto e = make("hash:64");
  std::string junk = "abc\xff\xfe\xc3(\xe4\xb8 \xf0\x9f\x98 数据库\xe6";
  auto v = embed_one(*e, junk);
  ASSERT_EQ(v.size(), 64u);
  EXPECT_NEAR(norm(v), 1.0, 1e-5);
}

TEST(HashEmbedderTest, ConcurrentEmbedIsDeterministic) {
  auto e = make("hash:256");
  std::string_view texts[] = {"alpha beta gamma", "数据库连接池",
                              "some longer text with several words in it"};
  std::vector<float> expected;
  ASSERT_TRUE(e->embed(texts, &expected).is_ok());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        std::vector<float> out;
        if (!e->embed(texts, &out).is_ok() || out != expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(HashEmbedderTest, Throughput) {
  // Printed, not asserted (machines differ); the target is > 50 MB/s on one core.
  auto e = make("hash:512");
  std::string en, zh;
  while (en.size() < (8u << 20))
    en += "The ingestion engine splits documents into chunks, embeds them and indexes them. ";
  while (zh.size() < (8u << 20)) zh += "文档摄取引擎把文档切分成块，计算向量并写入索引，支持中文全文检索。";
  std::vector<std::string_view> en_chunks, zh_chunks;
  for (size_t i = 0; i + 2000 <= en.size(); i += 2000)
    en_chunks.push_back(std::string_view(en).substr(i, 2000));
  for (size_t i = 0; i + 2001 <= zh.size(); i += 2001)
    zh_chunks.push_back(std::string_view(zh).substr(i, 2001));
  for (auto* chunks : {&en_chunks, &zh_chunks}) {
    std::vector<float> out;
    out.reserve(chunks->size() * 512);
    // CPU time too: on a shared machine wall time says more about the neighbours than the code.
    auto start = std::chrono::steady_clock::now();
    double cpu0 = thread_cpu_seconds();
    ASSERT_TRUE(e->embed(*chunks, &out).is_ok());
    double cpu = thread_cpu_seconds() - cpu0;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double mb = chunks->size() * 2000.0 / 1e6;
    std::printf("[ hash:512 ] %s: %.1f MB in %.3f s wall (%.0f MB/s), %.3f s CPU (%.0f MB/s)\n",
                chunks == &en_chunks ? "English" : "Chinese", mb, secs, mb / secs, cpu, mb / cpu);
  }
}

}  // namespace
}  // namespace sluice::embed
