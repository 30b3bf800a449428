// Custom stages through the real binary: `sluice worker --pipeline FILE` over the embedded log,
// fed by `sluice generate` and `sluice produce`, with a two-stage chain ("csv → summary": stage 1
// a shell pipeline, stage 2 `wc` without a shell) into a folder and into a bucket on a real S3
// endpoint (s3rver), and the bad cases in one run: a command that fails, one that hangs, outputs
// over the limit, a missing input object — each a clear failure notification with its class, the
// other tasks of the run unharmed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "store/blob_store.h"
#include "support/require_server.h"
#include "support/s3rver.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The results on doc_results, by the name of the original file (source key).
std::map<std::string, json> results_by_name(const RunResult& tail) {
  std::map<std::string, json> out;
  for (const auto& line : split_lines(tail.out)) {
    json r = json::parse(json::parse(line)["value"].get<std::string>());
    std::string key = r["source"].value("key", r["source"].value("uri", ""));
    out[fs::path(key).filename().string()] = r;
  }
  return out;
}

// The two stages of the chain; {DEST1} and {DEST2} are replaced by the test.
constexpr const char* kChain = R"(stages:
  - name: cities
    type: exec
    output: cities_done
    shell: true
    command: |
      if grep -q HANG {input}; then sleep 60; fi
      if grep -q FAIL {input}; then echo bad csv: the FAIL marker in {name} >&2; exit 3; fi
      if grep -q BIG {input}; then head -c 5000 /dev/zero > {output_dir}/big.bin; fi
      tail -n +2 {input} | cut -d, -f2 | sort > {output_dir}/{name}.cities
    timeout: 2s
    max_output_bytes: 4KiB
    dest: DEST1
  - name: summary
    type: exec
    command: ["sh", "-c", "wc -l < \"$0\" > \"$1\"", "{input}", "{output_dir}/{name}.count"]
    dest: DEST2
)";

class ExecStageE2E : public ::testing::Test {
 protected:
  std::string pipeline_file(const std::string& dest1, const std::string& dest2) {
    std::string text = kChain;
    text.replace(text.find("DEST1"), 5, dest1);
    text.replace(text.find("DEST2"), 5, dest2);
    const std::string path = tmp_.path() + "/pipeline.yaml";
    write_file(path, text);
    return path;
  }

  std::vector<std::pair<std::string, std::string>> env_ = {{"SLUICE_LOG_LEVEL", "error"}};

  RunResult sluice(std::vector<std::string> args, const std::string& stdin_data = "") {
    args.insert(args.end(), {"--data", data()});
    RunOptions o;
    o.env = env_;
    o.stdin_data = stdin_data;
    o.kill_after = std::chrono::milliseconds(120000);
    return run_sluice(args, o);
  }

  // Runs `sluice worker --pipeline file` until `expect` results are on doc_results.
  RunResult work(const std::string& file, int expect, RunResult* worker_out) {
    RunOptions o;
    o.env = env_;
    o.kill_after = std::chrono::milliseconds(150000);
    BackgroundSluice worker({"worker", "--pipeline", file, "--data", data()}, o);
    RunResult results = sluice(
        {"tail", "doc_results", "--from-beginning", "--max", std::to_string(expect), "--timeout", "60"});
    *worker_out = worker.stop();
    return results;
  }

  std::string data() const { return tmp_.path() + "/data"; }

  TempDir tmp_{"sluice-exec"};
};

TEST_F(ExecStageE2E, ACsvToSummaryChainIntoAFolder) {
  const std::string docs = tmp_.path() + "/docs";
  write_file(docs + "/a.csv", "id,city\n1,Paris\n2,Beijing\n3,Addis\n");
  write_file(docs + "/b.csv", "id,city\n1,Lima\n2,上海\n");
  const std::string file = pipeline_file("./out/cities", "./out/summary/{doc_id}");

  RunResult gen = sluice({"generate", docs});
  ASSERT_EQ(gen.exit_code, 0) << describe(gen);
  EXPECT_EQ(json::parse(gen.out)["queued"], 2) << gen.out;
  RunResult worker;
  RunResult results = work(file, 2, &worker);
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);
  ASSERT_EQ(results.exit_code, 0) << describe(results);

  auto by = results_by_name(results);
  ASSERT_EQ(by.size(), 2u) << results.out;
  for (const char* name : {"a.csv", "b.csv"}) {
    const json& r = by[name];
    EXPECT_EQ(r["status"], "success") << r;
    EXPECT_EQ(r["source"]["uri"], "file://" + docs + "/" + name) << r;  // the document itself
    EXPECT_EQ(r["file_info"]["input_size"], fs::file_size(docs + "/" + name)) << r;
    EXPECT_EQ(r["file_info"]["output_size"], 2) << r;  // "3\n", "2\n"
    ASSERT_TRUE(r["timings_ms"].contains("cities")) << r;
    ASSERT_TRUE(r["timings_ms"].contains("summary")) << r;
    ASSERT_EQ(r["outputs"].size(), 1u) << r;
    const std::string stem = fs::path(name).stem().string();
    const std::string out =
        tmp_.path() + "/out/summary/" + r["doc_id"].get<std::string>() + "/" + stem + ".count";
    EXPECT_EQ(r["outputs"][0]["uri"], "file://" + out) << r;
    EXPECT_EQ(r["destination"]["uri"], "file://" + out) << r;
    EXPECT_EQ(r["outputs"][0]["hash"].get<std::string>().size(), 32u) << r;
  }
  EXPECT_EQ(read_file(tmp_.path() + "/out/cities/a.cities"), "Addis\nBeijing\nParis\n");
  EXPECT_EQ(read_file(tmp_.path() + "/out/cities/b.cities"), "Lima\n上海\n");
  EXPECT_EQ(read_file(by["a.csv"]["outputs"][0]["uri"].get<std::string>().substr(7)), "3\n");
  EXPECT_EQ(read_file(by["b.csv"]["outputs"][0]["uri"].get<std::string>().substr(7)), "2\n");
  // Temp files are gone after success (CLEANUP_FILES defaults to true).
  EXPECT_TRUE(!fs::exists(data() + "/tmp") || fs::is_empty(data() + "/tmp"));
}

TEST_F(ExecStageE2E, ACustomStageFeedsTheBuiltInStages) {
  // csv → markdown by a command, then the built-in parse, embed and index: the text is searchable.
  const std::string csv = tmp_.path() + "/docs/people.csv";
  write_file(csv, "id,city\n1,Paris\n2,Beijing\n");
  const std::string file = tmp_.path() + "/index.yaml";
  write_file(file, R"(stages:
  - name: tomd
    type: exec
    input: raw_upload
    output: doc_upload
    shell: true
    command: |
      printf '# Cities\n\n' > {output_dir}/{name}.md
      tail -n +2 {input} | cut -d, -f2 | sed 's/^/The heron visits /; s/$/./' >> {output_dir}/{name}.md
    dest: ./converted
  - {name: parse, type: builtin}
  - {name: embed, type: builtin}
  - {name: index, type: builtin}
)");
  // The worker would create these topics; the task is queued and doc_results followed before it starts.
  for (const char* topic : {"raw_upload", "doc_results"}) {
    RunResult made = sluice({"topics", "create", topic, "--partitions", "2"});
    ASSERT_EQ(made.exit_code, 0) << describe(made);
  }
  RunResult p = sluice({"produce", "raw_upload"}, R"({"source":{"uri":"file://)" + csv +
                                                      R"("}})"
                                                      "\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  RunResult worker;
  RunResult results = work(file, 1, &worker);
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);
  ASSERT_EQ(results.exit_code, 0) << describe(results);
  auto by = results_by_name(results);
  ASSERT_EQ(by.count("people.md"), 1u) << results.out;
  EXPECT_EQ(by["people.md"]["status"], "success") << by["people.md"];
  EXPECT_GE(by["people.md"]["chunks"], 1) << by["people.md"];
  RunResult found = sluice({"search", "heron visits Beijing", "--json", "-k", "1"});
  ASSERT_EQ(found.exit_code, 0) << describe(found);
  EXPECT_NE(found.out.find(tmp_.path() + "/converted/people.md"), std::string::npos) << found.out;
  EXPECT_NE(found.out.find("The heron visits Beijing."), std::string::npos) << found.out;
}

TEST_F(ExecStageE2E, ABadPipelineFileOrStageIsAClearStartupError) {
  write_file(tmp_.path() + "/bad.yaml",
             "stages:\n  - name: x\n    type: exec\n    command: [cat, '{file}']\n    dest: /o\n");
  RunResult r = sluice({"worker", "--pipeline", tmp_.path() + "/bad.yaml"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("bad.yaml:4: stage 'x': command: unknown placeholder {file}"), std::string::npos)
      << r.err;

  write_file(tmp_.path() + "/plugin.yaml",
             "stages:\n  - {name: p, type: plugin, library: ./nope.so, dest: /o}\n");
  r = sluice({"worker", "--pipeline", tmp_.path() + "/plugin.yaml"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("cannot load the plugin library " + tmp_.path() + "/nope.so"), std::string::npos)
      << r.err;

  r = sluice({"worker", "--pipeline", pipeline_file("/o1", "/o2"), "--stages", "cities,nope"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("has no stage 'nope' (stages: cities, summary)"), std::string::npos) << r.err;
}

class ExecStageS3E2E : public ExecStageE2E {
 protected:
  void SetUp() override {
    Status st = server_.start();
    if (sluice::testing::skip_for_missing_server(st)) GTEST_SKIP() << st.to_string();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    auto opened = server_.open_store();
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    bucket_ = std::move(opened).value();
    env_ = server_.sluice_env();
    env_.emplace_back("SLUICE_LOG_LEVEL", "error");
  }
  void put(const std::string& key, const std::string& bytes) {
    auto ref = bucket_->put(key, bytes);
    ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  }
  std::string get(const std::string& key) {
    auto uri = bucket_->uri_of(key);
    if (!uri.is_ok()) return "<" + uri.status().to_string() + ">";
    auto got = bucket_->get(*uri);
    return got.is_ok() ? *got : "<" + got.status().to_string() + ">";
  }

  sluice::testing::S3rver server_{"exec-bucket"};
  std::unique_ptr<store::BlobStore> bucket_;
};

TEST_F(ExecStageS3E2E, TheChainFromAndIntoABucketWithTheBadCasesInOneRun) {
  put("in/a.csv", "id,city\n1,Paris\n2,Beijing\n3,Addis\n");
  put("in/b.csv", "id,city\n1,Lima\n");
  put("in/fail.csv", "id,city\nFAIL,x\n");
  put("in/hang.csv", "id,city\nHANG,x\n");
  put("in/big.csv", "id,city\nBIG,x\n");
  const std::string file = pipeline_file("s3://exec-bucket/processed/{name}/", "s3://exec-bucket/summary");

  RunResult gen = sluice({"generate", "s3://exec-bucket/in/"});
  ASSERT_EQ(gen.exit_code, 0) << describe(gen);
  EXPECT_EQ(json::parse(gen.out)["queued"], 5) << gen.out;
  // A task in the seeds' shape for an object that is not there.
  RunResult p = sluice({"produce", "doc_upload"}, R"({"key":"in/gone.csv","bucket":"exec-bucket","size":10})"
                                                  "\n");
  ASSERT_EQ(p.exit_code, 0) << describe(p);

  RunResult worker;
  const auto t0 = std::chrono::steady_clock::now();
  RunResult results = work(file, 6, &worker);
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);
  ASSERT_EQ(results.exit_code, 0) << describe(results);
  auto by = results_by_name(results);
  ASSERT_EQ(by.size(), 6u) << results.out;

  for (const char* name : {"a.csv", "b.csv"}) {
    const json& r = by[name];
    EXPECT_EQ(r["status"], "success") << r;
    EXPECT_EQ(r["source"]["bucket"], "exec-bucket") << r;
    EXPECT_EQ(r["source"]["key"], std::string("in/") + name) << r;
    const std::string stem = fs::path(name).stem().string();
    ASSERT_EQ(r["outputs"].size(), 1u) << r;
    EXPECT_EQ(r["outputs"][0]["uri"], "s3://exec-bucket/summary/" + stem + ".count") << r;
    EXPECT_EQ(r["destination"]["bucket"], "exec-bucket") << r;
    EXPECT_EQ(r["destination"]["key"], "summary/" + stem + ".count") << r;
  }
  EXPECT_EQ(get("processed/a/a.cities"), "Addis\nBeijing\nParis\n");
  EXPECT_EQ(get("summary/a.count"), "3\n");
  EXPECT_EQ(get("summary/b.count"), "1\n");

  auto expect_failed = [&](const std::string& name, const std::string& cls, const std::string& text) {
    const json& r = by[name];
    EXPECT_EQ(r["status"], "failed") << name << ": " << r;
    EXPECT_EQ(r["error"]["class"], cls) << name << ": " << r;
    EXPECT_NE(r["error"]["message"].get<std::string>().find(text), std::string::npos) << name << ": " << r;
  };
  expect_failed(
      "fail.csv", "bad_input",
      "the cities command (if grep -q HANG {input}; then sleep 60; fi …, timeout 2s) exited with status 3; "
      "stderr: bad csv: the FAIL marker in fail");
  expect_failed("hang.csv", "resource_limit", "did not finish within its timeout");
  expect_failed("big.csv", "resource_limit", "over the stage's max_output_bytes of 4.0 KB");
  expect_failed("gone.csv", "bad_input", "no longer exists");
  // CLEANUP_ON_ERROR is off by default: a failure says where its files are, and they are there.
  const std::string msg = by["fail.csv"]["error"]["message"];
  const size_t at = msg.find("temp files kept in ");
  ASSERT_NE(at, std::string::npos) << msg;
  EXPECT_TRUE(fs::exists(msg.substr(at + 19, msg.size() - at - 20) + "/in/fail.csv")) << msg;
  // Nothing of the failed ones reached the bucket.
  EXPECT_EQ(get("processed/big/big.bin").substr(0, 1), "<");
  // The hang cost its 2 s timeout, not the 60 s it asked for.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 50.0);
}

}  // namespace
}  // namespace sluice::test
