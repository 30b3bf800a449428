// The conformance suite every BlobStore runs (file:, and s3:// against a real s3rver on loopback):
// round trips, large files through put_file/fetch with bounded memory, streaming writers (multipart
// on S3), abandoned writers, stat, paginated listing, error classes, removal, concurrent puts.
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "store/blob_store.h"
#include "support/require_server.h"
#include "support/s3rver.h"

namespace sluice::store {
namespace {

using testing::ScopedEnv;

namespace fs = std::filesystem;

// Credentials of s3rver's default account, and nothing from the machine's environment.
ScopedEnv* s3rver_env() {
  return new ScopedEnv({{"AWS_ACCESS_KEY_ID", testing::S3rver::kAccessKey},
                        {"AWS_SECRET_ACCESS_KEY", testing::S3rver::kSecretKey},
                        {"AWS_SESSION_TOKEN", nullptr},
                        {"AWS_ENDPOINT_URL", nullptr},
                        {"OBS_SERVER", nullptr}});
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

// A figure of /proc/self/status in KiB: "VmRSS:" now, "VmHWM:" the peak since reset_peak_rss().
long status_kb(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field)) return std::strtol(line.c_str() + field.size(), nullptr, 10);
  }
  return -1;
}
long peak_rss_kb() {
  return status_kb("VmHWM:");
}
long rss_kb() {
  return status_kb("VmRSS:");
}
// Free heap pages go back to the system first, or a large allocation could reuse resident ones
// unseen (glibc raises its mmap threshold after earlier tests free big blocks).
bool reset_peak_rss() {
  ::malloc_trim(0);
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  return static_cast<bool>(out);
}

class BlobStoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    }
    dir_ = fs::temp_directory_path() / ("sluice-conf-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "local");
    if (GetParam() == "file") {
      uri_ = "file:" + (dir_ / "store").string();
    } else {
      if (sluice::testing::skip_for_missing_program(testing::S3rver::installed(), testing::S3rver::program()))
        GTEST_SKIP() << testing::S3rver::program() << " is missing (npm ci)";
      auto server = testing::S3rver::shared();
      ASSERT_TRUE(server.is_ok()) << server.status().to_string();
      env_.reset(s3rver_env());
      uri_ = (*server)->uri("conf/" + name);  // a prefix per test: the bucket is shared
    }
    auto s = open_blob_store(uri_);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    env_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string local(const std::string& name) const { return (dir_ / "local" / name).string(); }

  std::string write_local(const std::string& name, const std::string& bytes) const {
    std::ofstream out(local(name), std::ios::binary);
    out << bytes;
    return local(name);
  }

  std::unique_ptr<ScopedEnv> env_;
  fs::path dir_;
  std::string uri_;
  std::unique_ptr<BlobStore> store_;
};

TEST_P(BlobStoreConformance, RoundTripBinaryAndEmpty) {
  std::string binary;
  for (int i = 0; i < 3 * 256; ++i) binary.push_back(static_cast<char>(i & 0xff));  // NULs, high bytes
  auto ref = store_->put("parsed/ab12-cd34", binary);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(ref->hash, hash_hex(binary));
  EXPECT_EQ(ref->size, binary.size());
  auto uri = store_->uri_of("parsed/ab12-cd34");
  ASSERT_TRUE(uri.is_ok());
  EXPECT_EQ(*uri, ref->uri);
  auto back = store_->get(ref->uri, ref->hash);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, binary);

  auto empty = store_->put("empty", "");
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_EQ(empty->size, 0u);
  EXPECT_EQ(empty->hash, hash_hex(""));
  auto eback = store_->get(empty->uri, empty->hash);
  ASSERT_TRUE(eback.is_ok()) << eback.status().to_string();
  EXPECT_EQ(*eback, "");
  auto fetched = store_->fetch(empty->uri, local("empty"), empty->hash);
  ASSERT_TRUE(fetched.is_ok()) << fetched.status().to_string();
  EXPECT_EQ(fs::file_size(local("empty")), 0u);

  // A second put replaces the blob whole.
  ASSERT_TRUE(store_->put("parsed/ab12-cd34", "v2").is_ok());
  auto v2 = store_->get(ref->uri);
  ASSERT_TRUE(v2.is_ok()) << v2.status().to_string();
  EXPECT_EQ(*v2, "v2");
}

// 20 MiB: more than two of S3's 8 MiB parts. Neither direction may hold the file in memory.
TEST_P(BlobStoreConformance, LargeFilePutFileAndFetchBoundedMemory) {
  const size_t n = 20u << 20;
  const std::string src = write_local("big.bin", random_bytes(n, 7));
  auto want = hash_file(src);
  ASSERT_TRUE(want.is_ok());

  const bool measured = reset_peak_rss();
  const long before = rss_kb();
  auto ref = store_->put_file("big/blob.bin", src);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(ref->hash, *want);
  EXPECT_EQ(ref->size, n);
  const std::string dst = local("fetched.bin");
  auto got = store_->fetch(ref->uri, dst, ref->hash);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  const long peak = peak_rss_kb();
  EXPECT_EQ(got->hash, *want);
  EXPECT_EQ(got->size, n);
  auto on_disk = hash_file(dst);
  ASSERT_TRUE(on_disk.is_ok());
  EXPECT_EQ(*on_disk, *want);
  if (measured && before > 0 && peak > 0) {
    // A copy of the file in memory would add 20 MiB; streaming adds buffers of a few hundred KiB.
    EXPECT_LT(peak - before, 12 * 1024) << "peak RSS grew by " << (peak - before) << " KiB";
    RecordProperty("stream_peak_rss_growth_kib", std::to_string(peak - before));
    // The control: get() holds the blob in memory, and the measurement sees it.
    ASSERT_TRUE(reset_peak_rss());
    const long before_get = rss_kb();
    auto whole = store_->get(ref->uri, ref->hash);
    ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
    const long get_growth = peak_rss_kb() - before_get;
    EXPECT_GT(get_growth, 16 * 1024) << "the RSS measurement does not see a 20 MiB get()";
    RecordProperty("get_peak_rss_growth_kib", std::to_string(get_growth));
  }
  auto info = store_->stat(ref->uri);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->size, n);
  // No temp file is left beside the fetched one.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "local")) entries += e.path().filename() != "" ? 1 : 0;
  EXPECT_EQ(entries, 2);  // big.bin and fetched.bin
}

TEST_P(BlobStoreConformance, WriterStreamsManyPieces) {
  auto w = store_->open_writer("stream/out.bin", BlobStore::NewBlob::kReplace);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  Hasher h;
  std::string all;
  for (int i = 0; i < 19; ++i) {  // 19 MiB in uneven pieces: parts cut across appends
    std::string piece = random_bytes((1u << 20) + (i % 3) * 4099, 100 + i);
    ASSERT_TRUE((*w)->append(piece).is_ok());
    h.update(piece);
    all += piece;
  }
  EXPECT_EQ((*w)->size(), all.size());
  auto ref = (*w)->commit();
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(ref->hash, h.hex());
  EXPECT_EQ(ref->size, all.size());
  auto back = store_->get(ref->uri, ref->hash);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(*back == all);

  // A small writer (below one part) and a kNewKey writer.
  auto small = store_->open_writer("stream/small", BlobStore::NewBlob::kNewKey);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  ASSERT_TRUE((*small)->append("abc").is_ok());
  ASSERT_TRUE((*small)->append("def").is_ok());
  auto sref = (*small)->commit();
  ASSERT_TRUE(sref.is_ok()) << sref.status().to_string();
  EXPECT_EQ(*store_->get(sref->uri, hash_hex("abcdef")), "abcdef");
  auto again = store_->open_writer("stream/small", BlobStore::NewBlob::kNewKey);
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists) << again.status().to_string();
}

TEST_P(BlobStoreConformance, AbandonedWriterLeavesNothingVisible) {
  {
    auto w = store_->open_writer("gone/big", BlobStore::NewBlob::kReplace);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    ASSERT_TRUE((*w)->append(random_bytes(9u << 20, 3)).is_ok());  // past one part: multipart on S3
  }
  {
    auto w = store_->open_writer("gone/small", BlobStore::NewBlob::kReplace);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    ASSERT_TRUE((*w)->append("partial").is_ok());
  }
  for (const char* key : {"gone/big", "gone/small"}) {
    auto st = store_->stat(*store_->uri_of(key));
    ASSERT_FALSE(st.is_ok()) << key;
    EXPECT_EQ(st.status().code(), Code::kNotFound) << st.status().to_string();
  }
  auto page = store_->list("gone/", "", 100);
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  EXPECT_TRUE(page->objects.empty()) << page->objects.front().key;
}

TEST_P(BlobStoreConformance, StatFields) {
  auto ref = store_->put("a/b.txt", "hello");
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  auto info = store_->stat(ref->uri);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->key, "a/b.txt");
  EXPECT_EQ(info->uri, ref->uri);
  EXPECT_EQ(info->size, 5u);
  EXPECT_FALSE(info->version.empty());
  EXPECT_EQ(info->version.find('"'), std::string::npos);
  ASSERT_TRUE(std::regex_match(info->last_modified, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << info->last_modified;
  std::tm tm{};
  ASSERT_NE(::strptime(info->last_modified.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr);
  const long long age = static_cast<long long>(std::time(nullptr)) - static_cast<long long>(::timegm(&tm));
  EXPECT_LT(std::llabs(age), 600) << info->last_modified;

  ASSERT_TRUE(store_->put("a/b.txt", "hello, world").is_ok());
  auto changed = store_->stat(ref->uri);
  ASSERT_TRUE(changed.is_ok());
  EXPECT_EQ(changed->size, 12u);
  EXPECT_NE(changed->version, info->version);
}

TEST_P(BlobStoreConformance, ListPrefixAndPagination) {
  for (int i = 5; i >= 1; --i) {  // written out of order; listed in key order
    ASSERT_TRUE(store_->put("list/k" + std::to_string(i), std::string(static_cast<size_t>(i), 'x')).is_ok());
  }
  ASSERT_TRUE(store_->put("listing", "not under list/").is_ok());
  ASSERT_TRUE(store_->put("other/x", "x").is_ok());

  std::vector<std::string> keys;
  std::vector<size_t> pages;
  std::string token;
  for (int round = 0; round < 10; ++round) {
    auto page = store_->list("list/", token, 2);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    pages.push_back(page->objects.size());
    for (const auto& o : page->objects) {
      keys.push_back(o.key);
      EXPECT_EQ(o.size, static_cast<uint64_t>(o.key.back() - '0')) << o.key;
      EXPECT_EQ(o.uri, *store_->uri_of(o.key));
      EXPECT_FALSE(o.version.empty());
      EXPECT_FALSE(o.last_modified.empty());
    }
    token = page->next;
    if (token.empty()) break;
  }
  EXPECT_EQ(pages, (std::vector<size_t>{2, 2, 1}));
  EXPECT_EQ(keys, (std::vector<std::string>{"list/k1", "list/k2", "list/k3", "list/k4", "list/k5"}));

  auto all = store_->list("", "", 1000);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->objects.size(), 7u);
  EXPECT_TRUE(all->next.empty());
  auto none = store_->list("nothing/", "", 10);
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(store_->list("list/", "", 0).is_ok());
  EXPECT_FALSE(store_->list("list/", "", 1001).is_ok());
}

TEST_P(BlobStoreConformance, MissingBlobIsNotFoundAndRetriable) {
  auto uri = store_->uri_of("never/written");
  ASSERT_TRUE(uri.is_ok());
  auto g = store_->get(*uri);
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().code(), Code::kNotFound) << g.status().to_string();
  EXPECT_EQ(g.status().error_class(), ErrorClass::kRetriable);
  EXPECT_NE(g.status().message().find("never/written"), std::string::npos) << g.status().message();
  auto s = store_->stat(*uri);
  EXPECT_EQ(s.status().code(), Code::kNotFound) << s.status().to_string();
  auto f = store_->fetch(*uri, local("out"));
  EXPECT_EQ(f.status().code(), Code::kNotFound) << f.status().to_string();
  EXPECT_EQ(f.status().error_class(), ErrorClass::kRetriable);
  EXPECT_FALSE(fs::exists(local("out")));
  EXPECT_TRUE(fs::is_empty(dir_ / "local"));  // no temp file left either
}

TEST_P(BlobStoreConformance, HashMismatchIsCorruption) {
  auto ref = store_->put("h/blob", "payload");
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  const std::string wrong = hash_hex("other");
  auto g = store_->get(ref->uri, wrong);
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().code(), Code::kCorruption);
  EXPECT_EQ(g.status().error_class(), ErrorClass::kFatal);
  EXPECT_NE(g.status().message().find(ref->uri), std::string::npos) << g.status().message();
  auto f = store_->fetch(ref->uri, local("out"), wrong);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), Code::kCorruption) << f.status().to_string();
  EXPECT_FALSE(fs::exists(local("out")));
  EXPECT_TRUE(fs::is_empty(dir_ / "local"));
  // Upper-case hex is the same hash.
  std::string upper = ref->hash;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(store_->get(ref->uri, upper).is_ok());
  EXPECT_EQ(store_->get(ref->uri, "xyz").status().error_class(), ErrorClass::kBadInput);
}

TEST_P(BlobStoreConformance, RemoveIsIdempotent) {
  auto ref = store_->put("r/blob", "bytes");
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  Status first = store_->remove(ref->uri);
  EXPECT_TRUE(first.is_ok()) << first.to_string();
  Status second = store_->remove(ref->uri);
  EXPECT_TRUE(second.is_ok()) << second.to_string();
  EXPECT_EQ(store_->get(ref->uri).status().code(), Code::kNotFound);
}

TEST_P(BlobStoreConformance, ConcurrentPutsFromThreads) {
  constexpr int kThreads = 8, kEach = 10;
  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "c/t" + std::to_string(t) + "-" + std::to_string(i);
        const std::string bytes = random_bytes(1000 + static_cast<size_t>(t * 100 + i), t * 1000 + i);
        auto ref = store_->put(key, bytes);
        if (!ref.is_ok()) {
          failures[t] = ref.status().to_string();
          return;
        }
        auto back = store_->get(ref->uri, hash_hex(bytes));
        if (!back.is_ok() || *back != bytes) {
          failures[t] = "read back " + key + ": " + back.status().to_string();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  auto page = store_->list("c/", "", 1000);
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  EXPECT_EQ(page->objects.size(), static_cast<size_t>(kThreads * kEach));
}

TEST_P(BlobStoreConformance, BadKeysAreBadInput) {
  for (std::string_view key : {"", "../x", "/abs", "a//b", "a b", "a/", "a/./b", "x\n"}) {
    auto p = store_->put(key, "x");
    ASSERT_FALSE(p.is_ok()) << key;
    EXPECT_EQ(p.status().error_class(), ErrorClass::kBadInput) << key << ": " << p.status().to_string();
    EXPECT_EQ(store_->uri_of(key).status().error_class(), ErrorClass::kBadInput) << key;
    EXPECT_EQ(store_->open_writer(key, BlobStore::NewBlob::kReplace).status().error_class(),
              ErrorClass::kBadInput)
        << key;
  }
  auto missing = store_->put_file("k", local("no-such-file"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(missing.status().message().find("no-such-file"), std::string::npos) << missing.status().message();
  // A URI of another kind of store is refused, not read.
  const std::string foreign = GetParam() == "file" ? "s3://bucket/key" : "file:/etc/passwd";
  EXPECT_EQ(store_->get(foreign).status().error_class(), ErrorClass::kBadInput);
}

INSTANTIATE_TEST_SUITE_P(Stores, BlobStoreConformance, ::testing::Values("file", "s3"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace sluice::store
