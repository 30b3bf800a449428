// Envelopes: tasks and result notifications round-trip through JSON in the seeds' shape, and bad
// task JSON is a clear bad-input error.
#include "pipeline/envelope.h"

#include <gtest/gtest.h>

namespace sluice::pipeline {
namespace {

TEST(Envelope, TaskRoundTripAndDefaults) {
  Task t;
  t.source = {"file:///data/报告.pdf", "", "报告.pdf"};
  t.doc_id = doc_id_for(t.source.uri);
  t.size = 2048;
  t.trace_id = random_id();
  t.metadata = {{"team", "检索"}};
  auto back = parse_task(to_json(t));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->doc_id, t.doc_id);
  EXPECT_EQ(back->source.uri, t.source.uri);
  EXPECT_EQ(back->source.key, "报告.pdf");
  EXPECT_EQ(back->size, 2048u);
  EXPECT_EQ(back->metadata["team"], "检索");
  // doc_id defaults to the hash of the source URI, so re-scans find the same document.
  auto derived = parse_task(R"({"source":{"uri":"file:///a.txt"}})");
  ASSERT_TRUE(derived.is_ok());
  EXPECT_EQ(derived->doc_id, doc_id_for("file:///a.txt"));
}

TEST(Envelope, BadTasksAreBadInput) {
  for (const char* bad : {"", "nope", "[1,2]", R"({"doc_id":"x"})", R"({"source":{"uri":""}})",
                          R"({"source":{"uri":"file:///a"},"size":"big"})"}) {
    auto t = parse_task(bad);
    ASSERT_FALSE(t.is_ok()) << bad;
    EXPECT_EQ(t.status().error_class(), ErrorClass::kBadInput) << bad;
  }
}

TEST(Envelope, BucketTasksCarryTheSeedsShapeAndTheSeedsTasksAreAccepted) {
  Task t;
  t.source = {"s3://input-files/data/报告.csv", "input-files", "data/报告.csv", "9b2cf535f27731c974343645a3985328"};
  t.doc_id = doc_id_for(t.source.uri);
  t.size = 1024;
  t.dest_bucket = "processed-files";
  t.dest_key = "processed/报告.csv.json";
  t.last_modified = "2025-08-25T12:00:00Z";
  t.generated_at = "2025-08-25T12:05:00Z";
  auto j = nlohmann::json::parse(to_json(t));
  EXPECT_EQ(j["key"], "data/报告.csv");
  EXPECT_EQ(j["bucket"], "input-files");
  EXPECT_EQ(j["dest_bucket"], "processed-files");
  EXPECT_EQ(j["dest_key"], "processed/报告.csv.json");
  EXPECT_EQ(j["size"], 1024);
  EXPECT_EQ(j["last_modified"], "2025-08-25T12:00:00Z");
  EXPECT_EQ(j["generated_at"], "2025-08-25T12:05:00Z");
  auto back = parse_task(to_json(t));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->source.version, t.source.version);
  EXPECT_EQ(back->last_modified, t.last_modified);

  // The seeds' generator sends only this: it names s3://bucket/key.
  auto seed = parse_task(R"({"key":"data/input.csv","bucket":"source-bucket","dest_bucket":"processed-bucket",
                             "size":1024,"last_modified":"2025-08-25T12:00:00Z","generated_at":"2025-08-25T12:05:00Z"})");
  ASSERT_TRUE(seed.is_ok()) << seed.status().to_string();
  EXPECT_EQ(seed->source.uri, "s3://source-bucket/data/input.csv");
  EXPECT_EQ(seed->source.bucket, "source-bucket");
  EXPECT_EQ(seed->doc_id, doc_id_for("s3://source-bucket/data/input.csv"));
  EXPECT_EQ(seed->dest_bucket, "processed-bucket");
  // Without a bucket it cannot be found: a bad input saying so.
  auto nobucket = parse_task(R"({"key":"data/input.csv"})");
  ASSERT_FALSE(nobucket.is_ok());
  EXPECT_EQ(nobucket.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(nobucket.status().message().find("no bucket"), std::string::npos) << nobucket.status().to_string();
}

TEST(Envelope, ResultNotificationHasTheSeedShape) {
  ResultNotification r;
  r.timestamp = "2026-11-21T12:30:00.000Z";
  r.worker = "host:1";
  r.status = ResultStatus::kFailed;
  r.doc_id = "d";
  r.version = "v";
  r.source = {"s3://input-bucket/data/corrupted.csv", "input-bucket", "data/corrupted.csv"};
  r.input_size = 512;
  r.attempts = 3;
  r.stage_ms = {{"parse", 12.5}};
  r.error = Status::invalid_argument("文件格式不支持");
  r.trace_id = "t";
  auto j = nlohmann::json::parse(to_json(r));
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["source"]["bucket"], "input-bucket");
  EXPECT_EQ(j["source"]["key"], "data/corrupted.csv");
  EXPECT_EQ(j["file_info"]["input_size"], 512);
  EXPECT_EQ(j["file_info"]["input_size_formatted"], "512 B");
  EXPECT_EQ(j["error"]["class"], "bad_input");
  EXPECT_EQ(j["error"]["message"], "文件格式不支持");
  EXPECT_EQ(j["timings_ms"]["parse"], 12.5);
  auto back = parse_result(to_json(r));
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->status, ResultStatus::kFailed);
  EXPECT_EQ(back->error->error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(back->attempts, 3);
}

TEST(Envelope, SizesAndIds) {
  EXPECT_EQ(format_size(1024), "1.0 KB");
  EXPECT_EQ(format_size(2048), "2.0 KB");
  EXPECT_EQ(format_size(5u << 20), "5.0 MB");
  EXPECT_NE(chunk_id_for("d", "v", 1), chunk_id_for("d", "v", 2));
  EXPECT_EQ(chunk_id_for("d", "v", 1), chunk_id_for("d", "v", 1));
  EXPECT_NE(chunk_id_for("d", "v1", 1), chunk_id_for("d", "v", 11));
  EXPECT_NE(random_id(), random_id());
  auto hs = standard_headers("trace", 2);
  ASSERT_EQ(hs.size(), 5u);
  EXPECT_EQ(hs[0], (std::pair<std::string, std::string>{"trace_id", "trace"}));
  EXPECT_EQ(hs[2].second, "2");
}

}  // namespace
}  // namespace sluice::pipeline
