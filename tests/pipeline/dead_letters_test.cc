// Dead letters on the log queue: two on doc_upload.dlq are listed oldest first with the stage
// runner's headers; replaying one sends it back to doc_upload (attempt 1, same trace_id, a
// replayed_from header), records it in the ledger, and a second listing marks it and only it.
#include "pipeline/dead_letters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/read_to_end.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

std::vector<queue::Message> read_topic(queue::Queue& q, const std::string& topic) {
  auto info = q.admin().describe_topic(topic);
  EXPECT_TRUE(info.is_ok()) << info.status().to_string();
  if (!info.is_ok()) return {};
  auto messages = read_to_end(q, {*info});
  EXPECT_TRUE(messages.is_ok()) << messages.status().to_string();
  return messages.is_ok() ? std::move(messages).value() : std::vector<queue::Message>{};
}

class DeadLettersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice-dead-letters-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    auto qr = queue::open_queue("log:" + dir_.string());
    ASSERT_TRUE(qr.is_ok()) << qr.status().to_string();
    q_ = std::move(qr).value();
  }
  void TearDown() override {
    q_.reset();
    fs::remove_all(dir_);
  }

  // A dead letter as the parse stage's runner writes it.
  void put_dead_letter(queue::Producer& p, const std::string& doc, const std::string& trace) {
    const std::string error = "not a document: " + doc;
    const std::vector<queue::Header> hs = {{kHeaderOriginalTopic, kTopicUpload}, {kHeaderAttempt, "3"},
                                           {kHeaderErrorClass, "bad_input"},     {kHeaderErrorMessage, error},
                                           {kHeaderFailedStage, "parse"},        {"trace_id", trace}};
    const std::string value = "task of " + doc;
    ASSERT_TRUE(p.send({.topic = "doc_upload.dlq", .key = doc, .value = value, .headers = hs}).is_ok());
  }

  fs::path dir_;
  std::unique_ptr<queue::Queue> q_;
};

TEST_F(DeadLettersTest, ListsReplaysOneAndMarksItInTheLedger) {
  queue::Queue& q = *q_;
  ASSERT_TRUE(q.admin().create_topic(kTopicUpload, {}).is_ok());
  ASSERT_TRUE(q.admin().create_topic("doc_upload.dlq", {}).is_ok());
  {
    auto p = q.make_producer({});
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    put_dead_letter(**p, "doc-a", "trace-a");
    put_dead_letter(**p, "doc-b", "trace-b");
    ASSERT_TRUE((*p)->flush(queue::Millis(5000)).is_ok());
  }

  auto letters = load_dead_letters(q);
  ASSERT_TRUE(letters.is_ok()) << letters.status().to_string();
  ASSERT_EQ(letters->size(), 2u);
  const DeadLetter& a = (*letters)[0];
  const DeadLetter& b = (*letters)[1];
  EXPECT_EQ(a.key, "doc-a");
  EXPECT_EQ(b.key, "doc-b");
  EXPECT_EQ(a.at, (Coordinates{"doc_upload.dlq", 0, 0}));
  EXPECT_EQ(a.value, "task of doc-a");
  EXPECT_EQ(a.original_topic(), kTopicUpload);
  EXPECT_EQ(a.attempts(), 3);
  EXPECT_EQ(a.header(kHeaderFailedStage), "parse");
  EXPECT_EQ(a.header("trace_id"), "trace-a");
  EXPECT_FALSE(a.replayed_at.has_value());
  EXPECT_FALSE(b.replayed_at.has_value());
  // Scoped to one topic, given as T or T.dlq, the same two.
  auto scoped = load_dead_letters(q, kTopicUpload);
  ASSERT_TRUE(scoped.is_ok()) << scoped.status().to_string();
  EXPECT_EQ(scoped->size(), 2u);

  const DeadLetter* chosen[] = {&a};
  auto replay = replay_dead_letters(q, chosen);
  ASSERT_TRUE(replay.is_ok()) << replay.status().to_string();
  EXPECT_TRUE(replay->send_error.is_ok()) << replay->send_error.to_string();
  EXPECT_TRUE(replay->ledger_error.is_ok()) << replay->ledger_error.to_string();
  ASSERT_EQ(replay->replayed.size(), 1u);
  EXPECT_EQ(replay->recorded(), 1u);
  const Replayed& r = replay->replayed[0];
  EXPECT_EQ(r.letter, &a);
  EXPECT_TRUE(r.recorded);
  EXPECT_EQ(r.to.topic, kTopicUpload);
  EXPECT_EQ(r.to.offset, 0);

  // It arrived on doc_upload: same key, value and trace, attempt 1, no error headers.
  auto upload = read_topic(q, kTopicUpload);
  ASSERT_EQ(upload.size(), 1u);
  const queue::Message& m = upload[0];
  EXPECT_EQ(m.key, "doc-a");
  EXPECT_EQ(m.value, "task of doc-a");
  EXPECT_EQ(m.header(kHeaderReplayedFrom), "doc_upload.dlq/0/0");
  EXPECT_EQ(m.header("trace_id"), "trace-a");
  EXPECT_EQ(m.header(kHeaderAttempt), "1");
  EXPECT_FALSE(m.header(kHeaderErrorClass).has_value());
  EXPECT_FALSE(m.header(kHeaderOriginalTopic).has_value());
  EXPECT_EQ(m.partition.value(), r.to.partition);
  EXPECT_EQ(m.offset.value(), r.to.offset);

  // The ledger names it, and where it went.
  auto ledger = read_topic(q, kTopicDlqLedger);
  ASSERT_EQ(ledger.size(), 1u);
  auto j = nlohmann::json::parse(ledger[0].value);
  EXPECT_EQ(j["dlq_topic"], "doc_upload.dlq");
  EXPECT_EQ(j["partition"], 0);
  EXPECT_EQ(j["offset"], 0);
  EXPECT_EQ(j["dead_letter_timestamp"], a.timestamp_ms);
  EXPECT_EQ(j["doc_id"], "doc-a");
  EXPECT_EQ(j["replayed_to"]["topic"], kTopicUpload);
  EXPECT_EQ(j["trace_id"], "trace-a");
  EXPECT_TRUE(j["replayed_at"].is_string());

  // Loaded again: the replayed one is marked, the other is not.
  auto again = load_dead_letters(q);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].key, "doc-a");
  ASSERT_TRUE((*again)[0].replayed_at.has_value());
  EXPECT_EQ(*(*again)[0].replayed_at, j["replayed_at"].get<std::string>());
  EXPECT_EQ((*again)[1].key, "doc-b");
  EXPECT_FALSE((*again)[1].replayed_at.has_value());
}

TEST_F(DeadLettersTest, ReplayToAMissingTopicSendsNothing) {
  queue::Queue& q = *q_;
  ASSERT_TRUE(q.admin().create_topic("doc_upload.dlq", {}).is_ok());  // no doc_upload
  {
    auto p = q.make_producer({});
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    put_dead_letter(**p, "doc-a", "trace-a");
    ASSERT_TRUE((*p)->flush(queue::Millis(5000)).is_ok());
  }
  auto letters = load_dead_letters(q);
  ASSERT_TRUE(letters.is_ok()) << letters.status().to_string();
  ASSERT_EQ(letters->size(), 1u);
  const DeadLetter* chosen[] = {&(*letters)[0]};
  auto replay = replay_dead_letters(q, chosen);
  ASSERT_FALSE(replay.is_ok());
  EXPECT_EQ(replay.status().code(), Code::kNotFound) << replay.status().to_string();
  EXPECT_EQ(q.admin().describe_topic(kTopicDlqLedger).status().code(), Code::kNotFound);
}

TEST(DeadLetters, DlqTopicName) {
  EXPECT_EQ(dlq_topic_name("doc_upload"), "doc_upload.dlq");
  EXPECT_EQ(dlq_topic_name("doc_upload.dlq"), "doc_upload.dlq");
}

}  // namespace
}  // namespace sluice::pipeline
