// Sources: s3:// URIs parsed and checked, S3 settings added to store URIs, bucket listings
// filtered by globs and limits (on the file: store, which lists the same way), and local copies
// removed when done.
#include "pipeline/sources.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::pipeline {
namespace {

TEST(Sources, BucketUris) {
  auto b = parse_bucket_uri("s3://input-files/data/2024/");
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->bucket, "input-files");
  EXPECT_EQ(b->prefix, "data/2024/");
  auto bare = parse_bucket_uri("s3://my.bucket-1");
  ASSERT_TRUE(bare.is_ok());
  EXPECT_EQ(bare->prefix, "");
  for (const char* bad : {"s3://", "s3://ab", "s3://Upper/x", "s3://-dash/x", "s3://under_score", "file:///x",
                          "s3://ok-bucket/x?endpoint=http://h"}) {
    auto r = parse_bucket_uri(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << bad;
  }
  EXPECT_TRUE(is_bucket_uri("s3://b"));
  EXPECT_FALSE(is_bucket_uri("/tmp/s3://b"));
}

TEST(Sources, S3ConfigGoesIntoStoreUrisWhereMissing) {
  S3Config c{"http://127.0.0.1:9000", "cn-north-4"};
  EXPECT_EQ(bucket_store_uri("b1", c), "s3://b1?endpoint=http://127.0.0.1:9000&region=cn-north-4");
  EXPECT_EQ(bucket_store_uri("b1", {}), "s3://b1");
  EXPECT_EQ(with_s3_config("s3://b/p", c), "s3://b/p?endpoint=http://127.0.0.1:9000&region=cn-north-4");
  EXPECT_EQ(with_s3_config("s3://b/p?endpoint=http://other", c),
            "s3://b/p?endpoint=http://other&region=cn-north-4");
  EXPECT_EQ(with_s3_config("s3://b?region=x&endpoint=y", c), "s3://b?region=x&endpoint=y");
  EXPECT_EQ(with_s3_config("file:/tmp/blobs", c), "file:/tmp/blobs");
}

class SourcesListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-sources-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto s = store::open_blob_store("file:" + dir_.string());
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    for (const char* k : {"data/a.md", "data/b.pdf", "data/drafts/c.md", "data/sub/d.md", "other/e.md"}) {
      ASSERT_TRUE(store_->put(k, k).is_ok()) << k;
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> listed(BucketListOptions o, const std::string& prefix = "data/",
                                  bool* truncated = nullptr) {
    std::vector<std::string> out;
    o.page_size = 2;  // several pages
    Status st = list_bucket(
        *store_, {"bucket", prefix}, o,
        [&](const ListedObject& obj) {
          out.push_back(obj.relative);
          EXPECT_EQ(obj.source.bucket, "bucket");
          EXPECT_EQ(obj.source.key, prefix + obj.relative);
          EXPECT_FALSE(obj.source.version.empty());
          return true;
        },
        truncated);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::BlobStore> store_;
};

TEST_F(SourcesListTest, GlobsLimitsAndPages) {
  EXPECT_EQ(listed({}), (std::vector<std::string>{"a.md", "b.pdf", "drafts/c.md", "sub/d.md"}));
  EXPECT_EQ(listed({.include = {"*.md"}}), (std::vector<std::string>{"a.md", "drafts/c.md", "sub/d.md"}));
  // An exclude naming a folder leaves out what is under it, as the folder scanner does.
  EXPECT_EQ(listed({.include = {"*.md"}, .exclude = {"drafts"}}),
            (std::vector<std::string>{"a.md", "sub/d.md"}));
  bool truncated = false;
  EXPECT_EQ(listed({.max_files = 3}, "data/", &truncated),
            (std::vector<std::string>{"a.md", "b.pdf", "drafts/c.md"}));
  EXPECT_TRUE(truncated);
  EXPECT_EQ(listed({.max_files = 4}, "data/", &truncated).size(), 4u);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(listed({}, "").size(), 5u);
}

TEST(Sources, LocalCopiesOfDownloadsAreRemoved) {
  const std::string path =
      std::filesystem::temp_directory_path() / ("sluice-copy-" + std::to_string(::getpid()));
  std::ofstream(path) << "x";
  { LocalCopy kept(path, false); }
  EXPECT_TRUE(std::filesystem::exists(path));
  {
    LocalCopy a(path, true);
    LocalCopy b = std::move(a);  // the moved-from copy removes nothing
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  // A file:// source is read where it is.
  SourceFetcher f({}, "/nonexistent-tmp");
  auto copy = f.fetch({"file:///etc/hostname", "", "/etc/hostname"});
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  EXPECT_EQ(copy->path(), "/etc/hostname");
  EXPECT_FALSE(copy->downloaded());
  auto other = f.fetch({"http://example.com/x", "", ""});
  EXPECT_FALSE(other.is_ok());
}

}  // namespace
}  // namespace sluice::pipeline
