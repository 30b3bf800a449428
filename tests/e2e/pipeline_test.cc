// The pipeline's stages through the Pipeline API, where a test needs to act between the steps a
// CLI run does back to back: a file deleted after its task was queued, payloads claim-checked to the
// blob store and removed once the document is indexed, and a retriable failure retried with
// backoff and then dead-lettered with its failure notification, and a task delivered again after
// its document was indexed.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "e2e/sluice_runner.h"
#include "pipeline/envelope.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using sluice::test::TempDir;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto q = queue::open_queue("log:" + tmp_.path() + "/queue", {.create_if_missing = true});
    ASSERT_TRUE(q.is_ok()) << q.status().to_string();
    q_ = std::move(q).value();
    opts_.settings.store = "file:" + tmp_.path() + "/blobs";
    opts_.settings.index = "local:" + tmp_.path() + "/index";
    opts_.settings.embedder = "hash:512";
    opts_.settings.pool = 1;
    opts_.settings.partitions = 2;
    opts_.parse_worker_program = SLUICE_BINARY;
#if defined(__SANITIZE_ADDRESS__)
    opts_.settings.parse_memory = 0;
#endif
    for (const char* t : {kTopicUpload, kTopicParsed, kTopicEmbedded, kTopicIngested, kTopicResults}) {
      ASSERT_TRUE(q_->admin().create_topic(t, {.partitions = 2}).is_ok());
    }
    queue::ConsumerOptions c;
    c.group = "test-results";
    c.topics = {kTopicResults};
    auto consumer = q_->make_consumer(c);
    ASSERT_TRUE(consumer.is_ok());
    results_ = std::move(consumer).value();
    auto producer = q_->make_producer({});
    ASSERT_TRUE(producer.is_ok());
    producer_ = std::move(producer).value();
  }

  void send(const char* topic, const std::string& key, const std::string& value, int attempt = 1) {
    auto hs = standard_headers("trace-" + key, attempt);
    std::vector<queue::Header> headers;
    for (const auto& [k, v] : hs) headers.push_back({k, v});
    queue::OutMessage m;
    m.topic = topic;
    m.key = key;
    m.value = value;
    m.headers = headers;
    ASSERT_TRUE(producer_->send(m).is_ok());
    ASSERT_TRUE(producer_->flush(queue::Millis(10000)).is_ok());
  }

  Task task_for(const std::string& path) {
    Task t;
    t.source = file_source(path);
    t.doc_id = doc_id_for(t.source.uri);
    t.trace_id = "trace-" + t.doc_id;
    return t;
  }

  // Results by source path, until n have arrived (or 60 s pass).
  std::map<std::string, ResultNotification> wait_results(size_t n) {
    std::map<std::string, ResultNotification> out;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::vector<queue::Message> batch;
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
      batch.clear();
      EXPECT_TRUE(results_->poll(batch, 100, queue::Millis(100)).is_ok());
      for (const auto& m : batch) {
        auto r = parse_result(m.value);
        EXPECT_TRUE(r.is_ok());
        if (r.is_ok()) out[r->source.key.empty() ? r->source.uri : r->source.key] = *r;
        EXPECT_TRUE(results_->ack(m).is_ok());
      }
    }
    return out;
  }

  size_t count(const std::string& topic) {
    auto info = q_->admin().describe_topic(topic);
    EXPECT_TRUE(info.is_ok());
    size_t n = 0;
    for (const auto& p : info->partition_info) n += static_cast<size_t>((p.end - p.start));
    return n;
  }

  TempDir tmp_{"sluice-pipeline"};
  std::unique_ptr<queue::Queue> q_;
  std::unique_ptr<queue::Consumer> results_;
  std::unique_ptr<queue::Producer> producer_;
  PipelineOptions opts_;
};

TEST_F(PipelineTest, FileDeletedAfterItWasQueuedFailsCleanlyAndBlobsAreRemovedAfterIndexing) {
  const std::string good = tmp_.path() + "/good.md", gone = tmp_.path() + "/gone.md";
  std::string body = "# Long\n\n";
  for (int i = 0; i < 400; ++i) body += "Sentence number " + std::to_string(i) + " about claim checks. ";
  std::ofstream(good) << body;
  std::ofstream(gone) << "# Soon gone\n\nThis file is deleted after its task is queued.\n";
  send(kTopicUpload, task_for(good).doc_id, to_json(task_for(good)));
  send(kTopicUpload, task_for(gone).doc_id, to_json(task_for(gone)));
  fs::remove(gone);  // between the scan (the task) and the parse

  opts_.settings.claim_check_bytes = 1024;  // every payload of good.md goes through the blob store
  auto p = Pipeline::open(*q_, opts_);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  (*p)->start();
  auto results = wait_results(2);
  (*p)->stop();
  ASSERT_TRUE((*p)->wait().is_ok());

  ASSERT_EQ(results.size(), 2u);
  const ResultNotification& ok = results[good];
  EXPECT_EQ(ok.status, ResultStatus::kSuccess);
  EXPECT_GT(ok.chunks, 1);
  EXPECT_EQ(ok.trace_id, "trace-" + ok.doc_id);
  std::vector<std::string> stages;
  for (const auto& [stage, ms] : ok.stage_ms) stages.push_back(stage);
  EXPECT_EQ(stages, (std::vector<std::string>{"parse", "clean", "embed", "index"}));

  const ResultNotification& bad = results[gone];
  EXPECT_EQ(bad.status, ResultStatus::kFailed);
  ASSERT_TRUE(bad.error.has_value());
  EXPECT_EQ(bad.error->error_class(), ErrorClass::kBadInput);
  EXPECT_NE(bad.error->message().find("no longer exists"), std::string::npos) << bad.error->message();
  EXPECT_EQ(count("doc_upload.dlq"), 1u);

  // The claim-check blobs of the indexed document are gone once it was acknowledged.
  size_t blobs = 0;
  for (const auto& e : fs::recursive_directory_iterator(tmp_.path() + "/blobs")) blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 0u);
}

TEST_F(PipelineTest, RetriableFailureIsRetriedWithBackoffThenDeadLettered) {
  // A doc_parsed message whose claim-check blob is missing and whose document is not indexed: the
  // embed stage calls that retriable (the blob may still be on its way).
  Work w;
  w.task = task_for(tmp_.path() + "/phantom.md");
  w.version = "v1";
  w.payload_blob = "file:" + tmp_.path() + "/blobs/parsed/missing";
  send(kTopicParsed, w.task.doc_id, encode_work(w, ""));

  opts_.stages = {"embed"};
  opts_.settings.max_attempts = 3;
  opts_.settings.retry_backoff = std::chrono::milliseconds(50);
  auto p = Pipeline::open(*q_, opts_);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  auto t0 = std::chrono::steady_clock::now();
  (*p)->start();
  auto results = wait_results(1);
  const double waited_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  (*p)->stop();
  ASSERT_TRUE((*p)->wait().is_ok());

  ASSERT_EQ(results.size(), 1u);
  const ResultNotification& r = results.begin()->second;
  EXPECT_EQ(r.status, ResultStatus::kFailed);
  EXPECT_EQ(r.attempts, 3);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->error_class(), ErrorClass::kRetriable);
  EXPECT_NE(r.error->message().find("missing"), std::string::npos);
  EXPECT_EQ(count("doc_parsed.retry"), 2u);  // attempts 2 and 3
  EXPECT_EQ(count("doc_parsed.dlq"), 1u);
  EXPECT_GE(waited_ms, 50 + 100);  // backoff 50 ms, then 100 ms
}

TEST_F(PipelineTest, RedeliveredTaskOfAnIndexedDocumentReportsItsSuccessAgain) {
  // A worker that dies after indexing but before committing leaves the task to be delivered again.
  // That copy is the same task (same trace_id), already done: its result is the success again, so
  // that whoever waits on the trace_id is told the truth. A new task for the unchanged file is
  // skipped.
  const std::string file = tmp_.path() + "/doc.md";
  std::ofstream(file) << "# Delivered twice\n\nThe same task may arrive after its document was indexed.\n";
  const Task task = task_for(file);
  auto p = Pipeline::open(*q_, opts_);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  (*p)->start();
  auto result_of = [&](const Task& t) {
    send(kTopicUpload, t.doc_id, to_json(t));
    auto r = wait_results(1);
    return r.empty() ? ResultNotification{} : r.begin()->second;
  };
  const ResultNotification first = result_of(task);
  const ResultNotification again = result_of(task);
  Task fresh = task;
  fresh.trace_id = "another-trace";
  const ResultNotification other = result_of(fresh);
  (*p)->stop();
  ASSERT_TRUE((*p)->wait().is_ok());

  EXPECT_EQ(first.status, ResultStatus::kSuccess);
  EXPECT_GT(first.chunks, 0);
  EXPECT_EQ(again.status, ResultStatus::kSuccess);
  EXPECT_EQ(again.trace_id, task.trace_id);
  EXPECT_EQ(again.chunks, first.chunks);
  EXPECT_TRUE(again.reason.empty()) << again.reason;
  EXPECT_EQ(other.status, ResultStatus::kSkipped);
  EXPECT_EQ(other.trace_id, "another-trace");
  EXPECT_EQ(other.chunks, first.chunks);
  EXPECT_NE(other.reason.find("unchanged"), std::string::npos) << other.reason;
}

}  // namespace
}  // namespace sluice::pipeline
