// `sluice generate` and `sluice ingest s3://...` against a real S3 endpoint on loopback (s3rver):
// the generator's options and task shape, skipping what was processed at the same version, the
// parse stage downloading from the bucket, and the bad cases (wrong credentials, a missing bucket
// or object, a bad URI), each a clear error with the rest of the run unharmed.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "store/blob_store.h"
#include "support/require_server.h"
#include "support/s3rver.h"

namespace sluice::test {
namespace {

using nlohmann::json;

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    auto opened = server_.open_store();
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    bucket_ = std::move(opened).value();
    put("data/a.md", "# Alpha\n\nThe heron flies over the sluice gate at dawn.\n");
    put("data/b.txt", "Bravo: 消息队列把上传和处理分开。\n");
    put("data/sub/c.md", "# Charlie\n\nA third document about weirs.\n");
    put("other/d.md", "# Delta\n\nNot under data/.\n");
  }

  void put(const std::string& key, const std::string& bytes) {
    auto ref = bucket_->put(key, bytes);
    ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  }

  RunResult sluice(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {}) {
    args.insert(args.end(), {"--data", tmp_.path()});
    RunOptions o;
    o.env = server_.sluice_env();
    o.env.emplace_back("SLUICE_LOG_LEVEL", "error");
    for (auto& kv : env) {  // an override replaces the default (getenv takes the first)
      std::erase_if(o.env, [&](const auto& e) { return e.first == kv.first; });
      o.env.push_back(std::move(kv));
    }
    o.kill_after = std::chrono::milliseconds(120000);
    return run_sluice(args, o);
  }

  // The tasks a --dry-run printed.
  static std::vector<json> tasks(const RunResult& r) {
    std::vector<json> out;
    for (const auto& line : split_lines(r.out)) out.push_back(json::parse(line));
    return out;
  }
  static std::vector<std::string> keys(const std::vector<json>& ts) {
    std::vector<std::string> out;
    for (const auto& t : ts) out.push_back(t.value("key", ""));
    return out;
  }

  std::string src() const { return "s3://" + server_.bucket(); }

  sluice::testing::S3rver server_{"src-bucket"};
  std::unique_ptr<store::BlobStore> bucket_;
  TempDir tmp_{"sluice-generate"};
};

TEST_F(GenerateTest, DryRunPrintsTheSeedsTaskShapeForEachOption) {
  RunResult r = sluice({"generate", src(), "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto all = tasks(r);
  EXPECT_EQ(keys(all), (std::vector<std::string>{"data/a.md", "data/b.txt", "data/sub/c.md", "other/d.md"}));
  const json& a = all.at(0);
  EXPECT_EQ(a["bucket"], "src-bucket");
  EXPECT_EQ(a["source"]["uri"], "s3://src-bucket/data/a.md");
  EXPECT_EQ(a["size"], 55);
  EXPECT_EQ(a["doc_id"].get<std::string>().size(), 32u) << a;
  EXPECT_EQ(a["trace_id"].get<std::string>().size(), 32u) << a;
  EXPECT_FALSE(a["source"]["version"].get<std::string>().empty()) << a;  // the ETag
  EXPECT_EQ(a["last_modified"].get<std::string>().size(), 20u) << a;     // 2026-12-06T22:30:00Z
  EXPECT_EQ(a["generated_at"].get<std::string>().back(), 'Z') << a;
  EXPECT_NE(all.at(0)["trace_id"], all.at(1)["trace_id"]);

  r = sluice({"generate", src(), "--prefix", "data/", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(keys(tasks(r)), (std::vector<std::string>{"data/a.md", "data/b.txt", "data/sub/c.md"}));
  // The prefix may also be in SOURCE, and FILE_PREFIX (the seeds' name) gives it too.
  r = sluice({"generate", src() + "/data/sub", "--dry-run"});
  EXPECT_EQ(keys(tasks(r)), (std::vector<std::string>{"data/sub/c.md"})) << describe(r);
  r = sluice({"generate", src(), "--dry-run"}, {{"FILE_PREFIX", "other/"}});
  EXPECT_EQ(keys(tasks(r)), (std::vector<std::string>{"other/d.md"})) << describe(r);

  r = sluice({"generate", src(), "--max-files", "2", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(keys(tasks(r)), (std::vector<std::string>{"data/a.md", "data/b.txt"}));
  EXPECT_NE(r.err.find("stopped after --max-files 2"), std::string::npos) << r.err;

  r = sluice({"generate", src(), "--include", "*.md", "--exclude", "sub", "--dry-run"});
  EXPECT_EQ(keys(tasks(r)), (std::vector<std::string>{"data/a.md", "other/d.md"})) << describe(r);

  // A listing's --dest-key is a prefix; each task's key below the source goes after it.
  r = sluice(
      {"generate", src() + "/data/", "--dest-bucket", "out-bucket", "--dest-key", "results", "--dry-run"});
  auto dest = tasks(r);
  ASSERT_EQ(dest.size(), 3u) << describe(r);
  EXPECT_EQ(dest[2]["dest_bucket"], "out-bucket");
  EXPECT_EQ(dest[2]["dest_key"], "results/sub/c.md");

  // One object, with its destination as given.
  r = sluice({"generate", src(), "--single", "data/b.txt", "--dest-bucket", "out-bucket", "--dest-key",
              "processed/b.json", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto one = tasks(r);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["key"], "data/b.txt");
  EXPECT_EQ(one[0]["dest_key"], "processed/b.json");
  EXPECT_EQ(one[0]["size"], std::string("Bravo: 消息队列把上传和处理分开。\n").size());
}

TEST_F(GenerateTest, BadSourcesAndCredentialsAreClearErrors) {
  RunResult r = sluice({"generate", src(), "--single", "data/nope.md", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("s3://src-bucket/data/nope.md does not exist"), std::string::npos) << r.err;

  // s3rver checks the access key (not SigV4 signatures: tests/store/sigv4_test.cc checks ours
  // against AWS's published examples).
  r = sluice({"generate", src(), "--dry-run"}, {{"AWS_ACCESS_KEY_ID", "WRONG"}});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("bad_input"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("InvalidAccessKeyId"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("OBS_ACCESS_KEY"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;

  r = sluice({"generate", "s3://no-such-bucket", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("no-such-bucket"), std::string::npos) << r.err;

  r = sluice({"generate", "s3://Bad_Bucket/x", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("is not a bucket name"), std::string::npos) << r.err;

  r = sluice({"generate", src() + "?endpoint=http://x", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--s3-endpoint"), std::string::npos) << r.err;

  // Nothing listening at the endpoint: retried, then a retriable error naming it (exit 1).
  r = sluice({"generate", src(), "--dry-run", "--s3-endpoint", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(GenerateTest, IngestFromABucketThenGenerateSkipsWhatIsDone) {
  // The parse stage downloads each object; the index finds its text.
  RunResult r = sluice({"ingest", src() + "/data/", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json summary = json::parse(r.out);
  EXPECT_EQ(summary["ok"], 3) << r.out;
  r = sluice({"search", "heron sluice gate", "--json", "-k", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("s3://src-bucket/data/a.md"), std::string::npos) << r.out;
  r = sluice({"search", "消息队列", "--json", "-k", "1"});
  EXPECT_NE(r.out.find("s3://src-bucket/data/b.txt"), std::string::npos) << r.out;
  // Downloads are removed once parsed.
  EXPECT_TRUE(!std::filesystem::exists(tmp_.path() + "/tmp") ||
              std::filesystem::is_empty(tmp_.path() + "/tmp"));

  // Again: unchanged objects (same ETag and size) are skipped without a download.
  r = sluice({"ingest", src() + "/data/", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["skipped"], 3) << r.out;

  // --prune removes the documents of objects gone from the prefix, and only those.
  ASSERT_TRUE(bucket_->remove("s3://src-bucket/data/sub/c.md").is_ok());
  r = sluice({"ingest", src() + "/data/", "--include", "*.txt", "--prune", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["pruned"], 1) << r.out;
  r = sluice({"search", "weirs", "--json"});
  EXPECT_EQ(r.out.find("c.md"), std::string::npos) << r.out;
  r = sluice({"search", "heron", "--json"});
  EXPECT_NE(r.out.find("data/a.md"), std::string::npos) << r.out;  // filtered out, not gone: kept
  put("data/sub/c.md", "# Charlie\n\nA third document about weirs.\n");

  // The generator reads doc_results: the three are done at their versions; a changed one is not.
  put("data/a.md", "# Alpha\n\nThe heron has flown; the gate is shut.\n");
  r = sluice({"generate", src() + "/data/"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  summary = json::parse(r.out);
  EXPECT_EQ(summary["listed"], 3) << r.out;
  EXPECT_EQ(summary["queued"], 1) << r.out;
  EXPECT_EQ(summary["skipped"], 2) << r.out;
  r = sluice({"generate", src() + "/data/", "--force", "--dry-run"});
  EXPECT_EQ(tasks(r).size(), 3u) << describe(r);
}

TEST_F(GenerateTest, WorkersProcessGeneratedTasksAndReportAMissingObject) {
  RunResult r = sluice({"generate", src(), "--prefix", "data/"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json::parse(r.out)["queued"], 3) << r.out;
  // A task in the seeds' own shape (key + bucket), for an object that is gone.
  RunOptions po;
  po.stdin_data = R"({"key":"data/gone.md","bucket":"src-bucket","size":10})"
                  "\n";
  po.env = {{"SLUICE_LOG_LEVEL", "error"}};
  RunResult p = run_sluice({"produce", "doc_upload", "--data", tmp_.path()}, po);
  ASSERT_EQ(p.exit_code, 0) << describe(p);

  // A worker does them; doc_results gets three successes and one failure naming the object.
  RunOptions wo;
  wo.env = server_.sluice_env();
  wo.env.emplace_back("SLUICE_LOG_LEVEL", "error");
  wo.kill_after = std::chrono::milliseconds(120000);
  BackgroundSluice background({"worker", "--data", tmp_.path()}, wo);
  RunResult results = sluice({"tail", "doc_results", "--from-beginning", "--max", "4", "--timeout", "60"});
  const RunResult& worker = background.stop();
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);
  ASSERT_EQ(results.exit_code, 0) << describe(results);
  int ok = 0, failed = 0;
  for (const auto& line : split_lines(results.out)) {
    json res = json::parse(json::parse(line)["value"].get<std::string>());
    if (res["status"] == "success") {
      ++ok;
      EXPECT_EQ(res["source"]["bucket"], "src-bucket") << res;
      EXPECT_FALSE(res["source"]["version"].get<std::string>().empty()) << res;
    } else {
      ++failed;
      EXPECT_EQ(res["status"], "failed") << res;
      EXPECT_EQ(res["source"]["uri"], "s3://src-bucket/data/gone.md") << res;
      EXPECT_EQ(res["error"]["class"], "bad_input") << res;
      EXPECT_NE(res["error"]["message"].get<std::string>().find("no longer exists"), std::string::npos)
          << res;
    }
  }
  EXPECT_EQ(ok, 3) << results.out;
  EXPECT_EQ(failed, 1) << results.out;
}

}  // namespace
}  // namespace sluice::test
