// The file: blob store: round trips (binary, empty), key checks, error classes, hash checks,
// idempotent removal, URI handling, and puts from several threads at once.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "store/blob_store.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("sluice-blob-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<BlobStore> open() {
    auto s = open_blob_store("file:" + dir_.string());
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }

  // Files whose names start with ".sluice-tmp-" anywhere under the store.
  int temp_files() const {
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      if (e.path().filename().string().rfind(".sluice-tmp-", 0) == 0) ++n;
    }
    return n;
  }

  fs::path dir_;
};

TEST_F(FileStoreTest, BlobRoundTripBinaryAndEmpty) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->uri(), "file:" + dir_.string());

  std::string binary;
  for (int i = 0; i < 3 * 256; ++i) binary.push_back(static_cast<char>(i & 0xff));  // includes NULs
  auto ref = store->put("parsed/ab12-cd34", binary);
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(ref->uri, "file:" + (dir_ / "parsed" / "ab12-cd34").string());
  EXPECT_EQ(ref->hash, hash_hex(binary));
  EXPECT_EQ(ref->size, binary.size());
  auto back = store->get(ref->uri, ref->hash);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, binary);
  // Without an expected hash, and in the file:///abs spelling.
  auto plain = store->get("file://" + (dir_ / "parsed" / "ab12-cd34").string());
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  EXPECT_EQ(*plain, binary);

  auto empty = store->put("empty", "");
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_EQ(empty->size, 0u);
  EXPECT_EQ(empty->hash, hash_hex(""));
  auto eback = store->get(empty->uri, empty->hash);
  ASSERT_TRUE(eback.is_ok()) << eback.status().to_string();
  EXPECT_EQ(*eback, "");

  // A second put of a key replaces it whole; no temp file is left behind.
  auto again = store->put("parsed/ab12-cd34", "v2");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*store->get(again->uri, again->hash), "v2");
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(FileStoreTest, BlobBadKeysAreBadInput) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  for (std::string_view key :
       {"", "..", "../escape", "a/../../b", "a/..", "a..b", "/abs", "a/", "a//b", "./a", "a/./b", "sp ace",
        "semi;colon", "back\\slash", "tab\tkey", "uml\xc3\xa4ut", "star*", "q?"}) {
    auto r = store->put(key, "x");
    ASSERT_FALSE(r.is_ok()) << "key '" << key << "' was accepted";
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << key;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << key;
    EXPECT_NE(r.status().message().find("blob key"), std::string::npos) << r.status().message();
  }
  auto nul = store->put(std::string_view("nul\0x", 5), "x");
  EXPECT_EQ(nul.status().error_class(), ErrorClass::kBadInput);
  EXPECT_FALSE(store->put(std::string(300, 'a'), "x").is_ok());  // longer than NAME_MAX
  // Everything the header allows.
  auto ok = store->put("Stage_1/doc-ID.v2/x.y_Z-9", "x");
  EXPECT_TRUE(ok.is_ok()) << ok.status().to_string();
  // Nothing escaped the store directory.
  EXPECT_FALSE(fs::exists(dir_.parent_path() / "escape"));

  // A key that collides with an existing blob used as a directory is bad input too.
  ASSERT_TRUE(store->put("leaf", "x").is_ok());
  auto collide = store->put("leaf/child", "x");
  ASSERT_FALSE(collide.is_ok());
  EXPECT_EQ(collide.status().error_class(), ErrorClass::kBadInput) << collide.status().to_string();
}

TEST_F(FileStoreTest, BlobGetRefusesUrisOutsideTheStore) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  std::string d = dir_.string();
  for (const std::string& uri :
       std::vector<std::string>{"file:/etc/passwd", "file:" + d + "/../x", "file:" + d + "/a/../../x",
                                "s3://bucket/key", d + "/k", "file:" + d + "-other/k", "file:" + d}) {
    auto r = store->get(uri);
    ASSERT_FALSE(r.is_ok()) << uri;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << uri << ": " << r.status().to_string();
    EXPECT_FALSE(store->remove(uri).is_ok()) << uri;
  }
}

TEST_F(FileStoreTest, BlobMissingIsNotFoundAndRetriable) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  std::string uri = "file:" + (dir_ / "parsed" / "nope").string();
  auto r = store->get(uri);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable);
  EXPECT_NE(r.status().message().find(uri), std::string::npos) << r.status().message();
}

TEST_F(FileStoreTest, BlobHashMismatchIsCorruption) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto ref = store->put("k", "the bytes");
  ASSERT_TRUE(ref.is_ok());
  // Flip the file on disk behind the store's back.
  { std::ofstream(dir_ / "k", std::ios::binary | std::ios::trunc) << "the bytez"; }
  auto r = store->get(ref->uri, ref->hash);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_EQ(r.status().error_class(), ErrorClass::kFatal);
  EXPECT_NE(r.status().message().find(ref->uri), std::string::npos) << r.status().message();
  // Uppercase hex is the same hash; a malformed expected hash is the caller's mistake.
  std::string upper = hash_hex("the bytez");
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(store->get(ref->uri, upper).is_ok());
  auto bad = store->get(ref->uri, "not-a-hash");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().error_class(), ErrorClass::kBadInput);
}

TEST_F(FileStoreTest, BlobRemoveIsIdempotent) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto ref = store->put("stage/doc-1", "x");
  ASSERT_TRUE(ref.is_ok());
  EXPECT_TRUE(store->remove(ref->uri).is_ok());
  EXPECT_FALSE(fs::exists(dir_ / "stage" / "doc-1"));
  EXPECT_TRUE(store->remove(ref->uri).is_ok());
  EXPECT_TRUE(store->remove("file:" + (dir_ / "never" / "there").string()).is_ok());
  EXPECT_EQ(store->get(ref->uri).status().code(), Code::kNotFound);
  // A directory is not a blob.
  auto dir_rm = store->remove("file:" + (dir_ / "stage").string());
  EXPECT_EQ(dir_rm.error_class(), ErrorClass::kBadInput) << dir_rm.to_string();
}

TEST_F(FileStoreTest, BlobUnsupportedScheme) {
  for (std::string_view uri : {"http://x/y", "/plain/path", "relative", ""}) {
    auto s = open_blob_store(uri);
    ASSERT_FALSE(s.is_ok()) << uri;
    EXPECT_EQ(s.status().code(), Code::kUnsupported) << uri;
    EXPECT_NE(s.status().message().find("file:DIR"), std::string::npos) << s.status().message();
  }
  auto host = open_blob_store("file://host/dir");
  EXPECT_EQ(host.status().code(), Code::kUnsupported);
  auto none = open_blob_store("file:");
  EXPECT_EQ(none.status().error_class(), ErrorClass::kBadInput);
}

TEST_F(FileStoreTest, BlobRelativeDirMadeAbsolute) {
  fs::create_directories(dir_);
  std::error_code ec;
  fs::path old = fs::current_path();
  fs::current_path(dir_);
  auto s = open_blob_store("file:./sub/../blobs/");
  fs::current_path(old, ec);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto store = std::move(s).value();
  EXPECT_EQ(store->uri(), "file:" + (dir_ / "blobs").string());
  EXPECT_TRUE(fs::is_directory(dir_ / "blobs"));
  // The cwd no longer matters.
  auto ref = store->put("k", "v");
  ASSERT_TRUE(ref.is_ok());
  EXPECT_EQ(ref->uri, "file:" + (dir_ / "blobs" / "k").string());
  EXPECT_TRUE(fs::exists(dir_ / "blobs" / "k"));

  // The file:///abs spelling opens the same store; a file in the way is bad input.
  auto same = open_blob_store("file://" + (dir_ / "blobs").string());
  ASSERT_TRUE(same.is_ok());
  EXPECT_EQ((*same)->uri(), store->uri());
  { std::ofstream(dir_ / "afile") << "x"; }
  auto blocked = open_blob_store("file:" + (dir_ / "afile").string());
  ASSERT_FALSE(blocked.is_ok());
  EXPECT_EQ(blocked.status().error_class(), ErrorClass::kBadInput) << blocked.status().to_string();
}

TEST_F(FileStoreTest, BlobUnwritableDirIsClassedAndNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes through permissions";
  auto store = open();
  ASSERT_NE(store, nullptr);
  fs::create_directories(dir_ / "ro");
  ::chmod((dir_ / "ro").c_str(), 0555);
  auto r = store->put("ro/k", "x");
  ::chmod((dir_ / "ro").c_str(), 0755);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable);
  EXPECT_NE(r.status().message().find((dir_ / "ro").string()), std::string::npos) << r.status().message();
}

TEST_F(FileStoreTest, BlobConcurrentPuts) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 8, kPuts = 40;
  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        // Each thread's own keys, in shared and fresh directories, plus one key every thread writes.
        std::string bytes =
            "thread " + std::to_string(t) + " blob " + std::to_string(i) + std::string(i * 97, 'x');
        auto own = store->put(
            "d" + std::to_string(i % 5) + "/t" + std::to_string(t) + "-" + std::to_string(i), bytes);
        auto shared = store->put("shared/same", "the same bytes from everyone");
        if (!own.is_ok()) failures[t] = own.status().to_string();
        if (!shared.is_ok()) failures[t] = shared.status().to_string();
        if (own.is_ok()) {
          auto back = store->get(own->uri, own->hash);
          if (!back.is_ok() || *back != bytes) failures[t] = "read back failed: " + back.status().to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  int blobs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) blobs += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(blobs, kThreads * kPuts + 1);
  EXPECT_EQ(temp_files(), 0);
  auto shared =
      store->get("file:" + (dir_ / "shared" / "same").string(), hash_hex("the same bytes from everyone"));
  EXPECT_TRUE(shared.is_ok()) << shared.status().to_string();
}

}  // namespace
}  // namespace sluice::store
