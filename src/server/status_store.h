// The status store: what `sluice serve` knows about each document — its status, a timeline of
// what happened to it, attempts, error, chunk and page counts — kept in SQLite (<data>/status.db)
// and fed by the topics (StatusFollower), so it is right after a restart and when the stages run in
// other processes.
//
// A document may be processed more than once (an upload of a new version, a retry); each run has
// its own trace_id. The store keeps one row per run (trace) and shows the document as its newest
// run: a run's status only moves forward (queued → parsed → embedded → indexed|failed|skipped), so
// events that arrive out of order across topics, or twice (at-least-once delivery), cannot move a
// document back.
//
// Ownership: the store owns its SQLite connections. Thread-safety: every method may be called from
// several threads; writes are serialised, reads use their own connection (WAL).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::index::sqlite {
class Db;
}

namespace sluice::server {

// A document's status. kRetrying: a stage failed with a retriable error and will try again.
// kReview: held by the quality gate (final until `sluice review release`, whose indexed result,
// final too, then replaces it in the same run).
enum class DocStatus { kQueued, kRetrying, kParsed, kEmbedded, kIndexed, kFailed, kSkipped, kReview };
std::string_view doc_status_name(DocStatus s);
std::optional<DocStatus> parse_doc_status(std::string_view s);
bool is_final(DocStatus s);
// Every status name, in pipeline order (for counts and the API's documentation).
std::span<const DocStatus> all_doc_statuses();

// One thing that happened to a document, as a topic showed it.
struct StatusEvent {
  std::string doc_id;
  std::string trace_id;
  DocStatus status = DocStatus::kQueued;
  int stage_rank = 1;  // 1 parse, 2 embed, 3 index: where a kRetrying event is (see the .cc)
  int64_t at_ms = 0;   // when it happened (the message's timestamp)
  int attempts = 0;    // 0: not known from this event
  std::optional<int> chunks, pages;
  std::string version;
  std::string filename, source, task_json;  // from the task (queued events)
  std::string error_class, error_message, reason;
};

struct TimelineEntry {
  std::string status;
  int64_t at_ms = 0;
  int attempt = 0;
};

struct DocumentStatus {
  std::string doc_id;
  std::string filename;
  std::string source;
  DocStatus status = DocStatus::kQueued;
  bool stuck = false;
  std::string trace_id;
  int attempts = 0;
  int chunks = 0, pages = 0;
  std::string version;
  std::string error_class, error_message, reason;
  int64_t created_ms = 0, updated_ms = 0;
  std::string task_json;                // the task of the newest run (what a retry sends again)
  std::vector<TimelineEntry> timeline;  // of the newest run, oldest first (get() only)
  int64_t seq = 0;                      // creation order (the list's cursor)
};

struct ListQuery {
  std::optional<DocStatus> status;  // nullopt: any
  bool stuck = false;               // only documents not final and idle since stuck_before_ms
  int64_t stuck_before_ms = 0;
  size_t limit = 50;
  std::optional<int64_t> before_seq;  // the cursor: documents created before this one
};

struct ListPage {
  std::vector<DocumentStatus> documents;
  std::optional<int64_t> next_seq;  // set when there are more
};

class StatusStore {
 public:
  // Opens (creating) the database at path.
  [[nodiscard]] static Result<std::unique_ptr<StatusStore>> open(const std::string& path);
  ~StatusStore();

  // Applies events in one transaction.
  [[nodiscard]] Status apply(std::span<const StatusEvent> events);
  // The document, its stuck flag computed against stuck_before_ms; nullopt when unknown.
  [[nodiscard]] Result<std::optional<DocumentStatus>> get(std::string_view doc_id, int64_t stuck_before_ms);
  [[nodiscard]] Result<ListPage> list(const ListQuery& q);
  // Documents by status name, plus "stuck" and "total".
  [[nodiscard]] Result<std::map<std::string, int64_t>> counts(int64_t stuck_before_ms);
  // Forgets a document; false when it was unknown.
  [[nodiscard]] Result<bool> remove(std::string_view doc_id);

 private:
  StatusStore() = default;
  Status apply_one(const StatusEvent& e);

  std::mutex write_mu_, read_mu_;
  std::unique_ptr<index::sqlite::Db> wdb_;  // guarded by write_mu_
  std::unique_ptr<index::sqlite::Db> rdb_;  // guarded by read_mu_
};

}  // namespace sluice::server
