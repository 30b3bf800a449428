// The status store: a run's status only moves forward, the newest run shows, duplicates are
// harmless, paging and the stuck filter, and forgetting a document.
#include "server/status_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace sluice::server {
namespace {

class StatusStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-status-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = StatusStore::open((dir_ / "status.db").string());
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static StatusEvent ev(const std::string& doc, const std::string& trace, DocStatus st, int64_t at) {
    StatusEvent e;
    e.doc_id = doc;
    e.trace_id = trace;
    e.status = st;
    e.at_ms = at;
    e.attempts = 1;
    return e;
  }
  void apply(std::vector<StatusEvent> events) {
    Status st = store_->apply(events);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  DocumentStatus get(const std::string& doc) {
    auto d = store_->get(doc, 0);
    EXPECT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_TRUE(d.is_ok() && d->has_value()) << doc;
    return d.is_ok() && *d ? **d : DocumentStatus{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<StatusStore> store_;
};

TEST_F(StatusStoreTest, RunMovesForwardWithTimeline) {
  auto q = ev("d1", "t1", DocStatus::kQueued, 100);
  q.filename = "报告.txt";
  q.source = "file:///x/报告.txt";
  q.task_json = R"({"doc_id":"d1"})";
  apply({q, ev("d1", "t1", DocStatus::kParsed, 110), ev("d1", "t1", DocStatus::kEmbedded, 120)});
  auto r = ev("d1", "t1", DocStatus::kIndexed, 130);
  r.chunks = 7;
  r.pages = 2;
  r.version = "v1";
  apply({r});
  DocumentStatus d = get("d1");
  EXPECT_EQ(d.status, DocStatus::kIndexed);
  EXPECT_EQ(d.filename, "报告.txt");
  EXPECT_EQ(d.chunks, 7);
  EXPECT_EQ(d.pages, 2);
  EXPECT_EQ(d.version, "v1");
  EXPECT_EQ(d.task_json, R"({"doc_id":"d1"})");
  ASSERT_EQ(d.timeline.size(), 4u);
  EXPECT_EQ(d.timeline[0].status, "queued");
  EXPECT_EQ(d.timeline[3].status, "indexed");
  EXPECT_FALSE(d.stuck);
}

TEST_F(StatusStoreTest, LateAndDuplicateEventsDoNotMoveBack) {
  apply({ev("d1", "t1", DocStatus::kIndexed, 130), ev("d1", "t1", DocStatus::kQueued, 100),
         ev("d1", "t1", DocStatus::kParsed, 110), ev("d1", "t1", DocStatus::kParsed, 110)});
  DocumentStatus d = get("d1");
  EXPECT_EQ(d.status, DocStatus::kIndexed);
  EXPECT_EQ(d.timeline.size(), 3u);  // the duplicate parsed is recorded once
  EXPECT_EQ(d.timeline.front().status, "queued");
}

TEST_F(StatusStoreTest, RetryingShowsAfterParsedAndErrorIsKept) {
  apply({ev("d1", "t1", DocStatus::kQueued, 100), ev("d1", "t1", DocStatus::kParsed, 110)});
  auto retry = ev("d1", "t1", DocStatus::kRetrying, 120);
  retry.stage_rank = 2;  // the embed stage will try again
  retry.attempts = 2;
  retry.error_class = "retriable";
  retry.error_message = "embedder busy";
  apply({retry});
  DocumentStatus d = get("d1");
  EXPECT_EQ(d.status, DocStatus::kRetrying);
  EXPECT_EQ(d.attempts, 2);
  EXPECT_EQ(d.error_message, "embedder busy");
  auto failed = ev("d1", "t1", DocStatus::kFailed, 130);
  failed.attempts = 3;
  failed.error_class = "bad_input";
  failed.error_message = "not a PDF";
  apply({failed});
  d = get("d1");
  EXPECT_EQ(d.status, DocStatus::kFailed);
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.error_class, "bad_input");
  EXPECT_EQ(d.error_message, "not a PDF");
}

TEST_F(StatusStoreTest, NewestRunShowsEvenWhenItsEventsComeFirst) {
  apply({ev("d1", "old", DocStatus::kQueued, 100), ev("d1", "old", DocStatus::kFailed, 150)});
  // The new run's result arrives before its queued event (another topic, read later).
  apply({ev("d1", "new", DocStatus::kIndexed, 300)});
  EXPECT_EQ(get("d1").status, DocStatus::kIndexed);
  apply({ev("d1", "new", DocStatus::kQueued, 200)});
  DocumentStatus d = get("d1");
  EXPECT_EQ(d.status, DocStatus::kIndexed);
  EXPECT_EQ(d.trace_id, "new");
  // A straggler of the old run changes nothing.
  apply({ev("d1", "old", DocStatus::kParsed, 120)});
  EXPECT_EQ(get("d1").trace_id, "new");
}

TEST_F(StatusStoreTest, ListPagesNewestFirstAndFilters) {
  for (int i = 0; i < 5; ++i) {
    apply({ev("d" + std::to_string(i), "t" + std::to_string(i),
              i % 2 ? DocStatus::kFailed : DocStatus::kQueued, 100 + i)});
  }
  ListQuery q;
  q.limit = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto p = store_->list(q);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    for (const auto& d : p->documents) seen.push_back(d.doc_id);
    if (!p->next_seq) break;
    q.before_seq = p->next_seq;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"d4", "d3", "d2", "d1", "d0"}));

  ListQuery failed;
  failed.status = DocStatus::kFailed;
  auto f = store_->list(failed);
  ASSERT_TRUE(f.is_ok());
  ASSERT_EQ(f->documents.size(), 2u);
  EXPECT_EQ(f->documents[0].doc_id, "d3");

  ListQuery stuck;
  stuck.stuck = true;
  stuck.stuck_before_ms = 103;  // d0 (100) and d2 (102) are queued and idle since before it
  auto s = store_->list(stuck);
  ASSERT_TRUE(s.is_ok());
  ASSERT_EQ(s->documents.size(), 2u);
  EXPECT_TRUE(s->documents[0].stuck);

  auto counts = store_->counts(103);
  ASSERT_TRUE(counts.is_ok());
  EXPECT_EQ((*counts)["total"], 5);
  EXPECT_EQ((*counts)["failed"], 2);
  EXPECT_EQ((*counts)["queued"], 3);
  EXPECT_EQ((*counts)["stuck"], 2);
}

TEST_F(StatusStoreTest, RemoveForgetsAndSurvivesReopen) {
  apply({ev("keep", "t1", DocStatus::kIndexed, 100), ev("gone", "t2", DocStatus::kFailed, 100)});
  auto removed = store_->remove("gone");
  ASSERT_TRUE(removed.is_ok());
  EXPECT_TRUE(*removed);
  auto again = store_->remove("gone");
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(*again);
  store_.reset();
  auto s = StatusStore::open((dir_ / "status.db").string());
  ASSERT_TRUE(s.is_ok());
  store_ = std::move(*s);
  EXPECT_EQ(get("keep").status, DocStatus::kIndexed);
  auto g = store_->get("gone", 0);
  ASSERT_TRUE(g.is_ok());
  EXPECT_FALSE(g->has_value());
}

TEST_F(StatusStoreTest, StatusNamesRoundTrip) {
  for (DocStatus s : all_doc_statuses()) EXPECT_EQ(parse_doc_status(doc_status_name(s)), s);
  EXPECT_FALSE(parse_doc_status("stuck").has_value());
  EXPECT_TRUE(is_final(DocStatus::kSkipped));
  EXPECT_FALSE(is_final(DocStatus::kRetrying));
}

}  // namespace
}  // namespace sluice::server
