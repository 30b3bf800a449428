// `sluice gc` on both blob stores (file: and s3:// on a real s3rver): orphans older than the TTL
// go, blobs a dead letter or an unconsumed task names stay, young blobs stay, --dry-run removes
// nothing, and a bad --older-than is a usage error.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/sluice_runner.h"
#include "store/blob_store.h"
#include "support/require_server.h"
#include "support/s3rver.h"

namespace sluice::test {
namespace {

using nlohmann::json;

class GcTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "s3") {
      Status st = s3_.start();
      if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      store_uri_ = "s3://" + s3_.bucket() + "/blobs";
      env_ = s3_.sluice_env();
    } else {
      store_uri_ = "file:" + tmp_.path() + "/blobs";
    }
    env_.emplace_back("SLUICE_STORE", store_uri_);
    env_.emplace_back("SLUICE_LOG_LEVEL", "error");
    auto opened = GetParam() == "s3" ? s3_.open_store("blobs") : store::open_blob_store(store_uri_);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(opened).value();
  }

  RunResult sluice(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.end(), {"--data", tmp_.path()});
    RunOptions o;
    o.env = env_;
    o.stdin_data = input;
    return run_sluice(args, o);
  }

  bool exists(const std::string& key) {
    auto uri = store_->uri_of(key);
    if (!uri.is_ok()) return false;
    return store_->stat(*uri).is_ok();
  }

  TempDir tmp_{"sluice-gc"};
  sluice::testing::S3rver s3_{"gc-bucket"};
  std::string store_uri_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::unique_ptr<store::BlobStore> store_;
};

TEST_P(GcTest, RemovesOnlyOldOrphans) {
  for (const char* key :
       {"parsed/orphan-1", "embedded/orphan-2", "parsed/dead-1", "embedded/live-1", "uploads/d/ab/u-1"}) {
    ASSERT_TRUE(store_->put(key, std::string("payload of ") + key).is_ok()) << key;
  }
  ASSERT_TRUE(store_->put("other/not-ours", "x").is_ok());
  // The pipeline's topics exist once something ran; a dead letter names dead-1, an unconsumed
  // embed task names live-1 (its stage group never committed), a queued upload names u-1.
  RunResult r = sluice({"produce", "doc_parsed.dlq", "--create", "--partitions", "1"},
                       R"({"payload_blob":{"uri":"STORE/parsed/dead-1","hash":"00"}})"
                       "\n");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = sluice({"produce", "doc_parsed", "--create", "--partitions", "1"},
             R"({"payload_blob":{"uri":"STORE/embedded/live-1"}})"
             "\n");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = sluice({"produce", "doc_upload", "--create", "--partitions", "1"},
             R"({"source":{"uri":"file:///x/uploads/d/ab/u-1"}})"
             "\n");
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  // Everything is younger than an hour: nothing goes.
  r = sluice({"gc", "--older-than", "1h"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json j = json::parse(r.out);
  EXPECT_EQ(j["listed"], 5) << r.out;
  EXPECT_EQ(j["kept_young"], 5) << r.out;
  EXPECT_EQ(j["removed"], 0) << r.out;

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // last_modified has 1 s steps
  r = sluice({"gc", "--older-than", "0s", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  j = json::parse(r.out);
  EXPECT_EQ(j["would_remove"], 2) << r.out;
  EXPECT_EQ(j["kept_referenced"], 3) << r.out;
  EXPECT_EQ(j["uris"].size(), 2u) << r.out;
  EXPECT_TRUE(exists("parsed/orphan-1"));  // a dry run removes nothing

  r = sluice({"gc", "--older-than", "0s"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  j = json::parse(r.out);
  EXPECT_EQ(j["removed"], 2) << r.out;
  EXPECT_FALSE(exists("parsed/orphan-1"));
  EXPECT_FALSE(exists("embedded/orphan-2"));
  for (const char* key : {"parsed/dead-1", "embedded/live-1", "uploads/d/ab/u-1", "other/not-ours"}) {
    EXPECT_TRUE(exists(key)) << key;
  }
}

TEST_P(GcTest, BadDurationIsAUsageError) {
  RunResult r = sluice({"gc", "--older-than", "soon"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--older-than 'soon'"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Stores, GcTest, ::testing::Values("file", "s3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sluice::test
