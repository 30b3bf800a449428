// The status store's SQLite schema and the rule that keeps a run's status moving forward.
//
// Each status has a rank: queued 1, parsed 2, embedded 3, final (indexed, failed, skipped, review) 9, and
// retrying the rank of the stage that will try again (parse 1, embed 2, index 3). An event changes
// its run's status only when its rank is at least the run's, so a late "queued" never hides
// "indexed", while "retrying" after "parsed" (the embed stage failed) does show.
// The document shows its newest run: the one whose first event is the latest.
#include "server/status_store.h"

#include <array>

#include "index/sqlite_db.h"

namespace sluice::server {
namespace {

using index::sqlite::Db;
using index::sqlite::Txn;

constexpr std::array<DocStatus, 8> kStatuses = {
    DocStatus::kQueued,  DocStatus::kRetrying, DocStatus::kParsed,  DocStatus::kEmbedded,
    DocStatus::kIndexed, DocStatus::kFailed,   DocStatus::kSkipped, DocStatus::kReview};
constexpr int kFinalRank = 9;

int rank_of(const StatusEvent& e) {
  switch (e.status) {
    case DocStatus::kQueued: return 1;
    case DocStatus::kRetrying: return e.stage_rank;
    case DocStatus::kParsed: return 2;
    case DocStatus::kEmbedded: return 3;
    default: return kFinalRank;
  }
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS docs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id TEXT NOT NULL UNIQUE,
  filename TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  task_json TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  current_trace TEXT NOT NULL,
  current_started INTEGER NOT NULL,
  status TEXT NOT NULL,
  final INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS docs_by_status ON docs(status, seq);
CREATE INDEX IF NOT EXISTS docs_by_final ON docs(final, updated_ms);
CREATE TABLE IF NOT EXISTS runs(
  trace_id TEXT PRIMARY KEY,
  doc_id TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  rank INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  chunks INTEGER NOT NULL DEFAULT 0,
  pages INTEGER NOT NULL DEFAULT 0,
  version TEXT NOT NULL DEFAULT '',
  error_class TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_doc ON runs(doc_id);
CREATE TABLE IF NOT EXISTS events(
  trace_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  UNIQUE(trace_id, status, attempt));
)sql";

// The columns every document query reads, joined with its newest run.
constexpr const char* kDocColumns =
    "d.doc_id, d.filename, d.source, d.status, d.current_trace, r.attempts, r.chunks, r.pages, r.version, "
    "r.error_class, r.error_message, r.reason, d.created_ms, d.updated_ms, d.task_json, d.seq, d.final";

DocumentStatus read_doc(const index::sqlite::Stmt& s, int64_t stuck_before_ms) {
  DocumentStatus d;
  d.doc_id = s.col_text(0);
  d.filename = s.col_text(1);
  d.source = s.col_text(2);
  d.status = parse_doc_status(s.col_text(3)).value_or(DocStatus::kQueued);
  d.trace_id = s.col_text(4);
  d.attempts = static_cast<int>(s.col_int(5));
  d.chunks = static_cast<int>(s.col_int(6));
  d.pages = static_cast<int>(s.col_int(7));
  d.version = s.col_text(8);
  d.error_class = s.col_text(9);
  d.error_message = s.col_text(10);
  d.reason = s.col_text(11);
  d.created_ms = s.col_int(12);
  d.updated_ms = s.col_int(13);
  d.task_json = s.col_text(14);
  d.seq = s.col_int(15);
  d.stuck = s.col_int(16) == 0 && d.updated_ms < stuck_before_ms;
  return d;
}

}  // namespace

std::string_view doc_status_name(DocStatus s) {
  switch (s) {
    case DocStatus::kQueued: return "queued";
    case DocStatus::kRetrying: return "retrying";
    case DocStatus::kParsed: return "parsed";
    case DocStatus::kEmbedded: return "embedded";
    case DocStatus::kIndexed: return "indexed";
    case DocStatus::kFailed: return "failed";
    case DocStatus::kSkipped: return "skipped";
    case DocStatus::kReview: return "review";
  }
  return "queued";
}

std::optional<DocStatus> parse_doc_status(std::string_view s) {
  for (DocStatus d : kStatuses) {
    if (doc_status_name(d) == s) return d;
  }
  return std::nullopt;
}

bool is_final(DocStatus s) {
  return s == DocStatus::kIndexed || s == DocStatus::kFailed || s == DocStatus::kSkipped ||
         s == DocStatus::kReview;
}

std::span<const DocStatus> all_doc_statuses() {
  return kStatuses;
}

StatusStore::~StatusStore() = default;

Result<std::unique_ptr<StatusStore>> StatusStore::open(const std::string& path) {
  std::unique_ptr<StatusStore> s(new StatusStore());
  auto w = Db::open(path, true, 5000);
  if (!w.is_ok()) return w.status().with_context("status store " + path);
  s->wdb_ = std::move(*w);
  SLUICE_RETURN_IF_ERROR(s->wdb_->exec("PRAGMA journal_mode=WAL").with_context("status store " + path));
  SLUICE_RETURN_IF_ERROR(s->wdb_->exec(kSchema).with_context("status store " + path));
  auto r = Db::open(path, false, 5000);
  if (!r.is_ok()) return r.status().with_context("status store " + path);
  s->rdb_ = std::move(*r);
  return s;
}

Status StatusStore::apply(std::span<const StatusEvent> events) {
  if (events.empty()) return {};
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_ASSIGN_OR_RETURN(auto txn, Txn::begin(wdb_.get(), true));
  for (const StatusEvent& e : events) SLUICE_RETURN_IF_ERROR(apply_one(e));
  return txn->commit();
}

Status StatusStore::apply_one(const StatusEvent& e) {
  const int rank = rank_of(e);
  const std::string status(doc_status_name(e.status));
  // The run.
  SLUICE_ASSIGN_OR_RETURN(auto find_run, wdb_->prepare("SELECT rank, started_ms FROM runs WHERE trace_id=?"));
  find_run->bind(1, e.trace_id);
  SLUICE_ASSIGN_OR_RETURN(bool run_known, find_run->step());
  int64_t started = e.at_ms;
  if (!run_known) {
    SLUICE_ASSIGN_OR_RETURN(auto ins,
                            wdb_->prepare("INSERT INTO runs(trace_id, doc_id, started_ms, status, rank, "
                                          "updated_ms) VALUES(?, ?, ?, ?, ?, ?)"));
    ins->bind(1, e.trace_id)
        .bind(2, e.doc_id)
        .bind(3, e.at_ms)
        .bind(4, status)
        .bind(5, rank)
        .bind(6, e.at_ms);
    SLUICE_RETURN_IF_ERROR(ins->run());
  } else {
    started = std::min(find_run->col_int(1), e.at_ms);
    if (rank >= find_run->col_int(0)) {
      SLUICE_ASSIGN_OR_RETURN(auto up, wdb_->prepare("UPDATE runs SET status=?, rank=?, started_ms=?, "
                                                     "updated_ms=MAX(updated_ms, ?) WHERE trace_id=?"));
      up->bind(1, status).bind(2, rank).bind(3, started).bind(4, e.at_ms).bind(5, e.trace_id);
      SLUICE_RETURN_IF_ERROR(up->run());
    } else {
      SLUICE_ASSIGN_OR_RETURN(auto up, wdb_->prepare("UPDATE runs SET started_ms=? WHERE trace_id=?"));
      up->bind(1, started).bind(2, e.trace_id);
      SLUICE_RETURN_IF_ERROR(up->run());
    }
  }
  find_run.reset();
  // What this event knows about the run.
  SLUICE_ASSIGN_OR_RETURN(
      auto facts, wdb_->prepare("UPDATE runs SET attempts=MAX(attempts, ?), chunks=COALESCE(?, chunks), "
                                "pages=COALESCE(?, pages), version=CASE WHEN ?='' THEN version ELSE ? END, "
                                "error_class=CASE WHEN ?='' THEN error_class ELSE ? END, "
                                "error_message=CASE WHEN ?='' THEN error_message ELSE ? END, "
                                "reason=CASE WHEN ?='' THEN reason ELSE ? END WHERE trace_id=?"));
  facts->bind(1, e.attempts);
  if (e.chunks) facts->bind(2, *e.chunks);
  if (e.pages) facts->bind(3, *e.pages);
  facts->bind(4, e.version).bind(5, e.version).bind(6, e.error_class).bind(7, e.error_class);
  facts->bind(8, e.error_message).bind(9, e.error_message).bind(10, e.reason).bind(11, e.reason);
  facts->bind(12, e.trace_id);
  SLUICE_RETURN_IF_ERROR(facts->run());
  facts.reset();
  // The timeline (a message delivered twice is recorded once).
  SLUICE_ASSIGN_OR_RETURN(auto ev,
                          wdb_->prepare("INSERT OR IGNORE INTO events(trace_id, status, attempt, at_ms) "
                                        "VALUES(?, ?, ?, ?)"));
  ev->bind(1, e.trace_id).bind(2, status).bind(3, e.attempts).bind(4, e.at_ms);
  SLUICE_RETURN_IF_ERROR(ev->run());
  ev.reset();
  // The document, which shows its newest run.
  SLUICE_ASSIGN_OR_RETURN(auto doc,
                          wdb_->prepare("INSERT INTO docs(doc_id, created_ms, current_trace, "
                                        "current_started, status, updated_ms) VALUES(?, ?, ?, ?, ?, ?) "
                                        "ON CONFLICT(doc_id) DO UPDATE SET "
                                        "current_trace=CASE WHEN excluded.current_started >= "
                                        "current_started THEN excluded.current_trace ELSE current_trace END, "
                                        "current_started=MAX(current_started, excluded.current_started)"));
  doc->bind(1, e.doc_id)
      .bind(2, e.at_ms)
      .bind(3, e.trace_id)
      .bind(4, started)
      .bind(5, status)
      .bind(6, e.at_ms);
  SLUICE_RETURN_IF_ERROR(doc->run());
  doc.reset();
  if (!e.task_json.empty() || !e.filename.empty() || !e.source.empty()) {
    SLUICE_ASSIGN_OR_RETURN(auto task,
                            wdb_->prepare("UPDATE docs SET filename=CASE WHEN ?='' THEN filename ELSE ? "
                                          "END, source=CASE WHEN ?='' THEN source ELSE ? END, "
                                          "task_json=CASE WHEN ?='' THEN task_json ELSE ? END "
                                          "WHERE doc_id=? AND current_trace=?"));
    task->bind(1, e.filename).bind(2, e.filename).bind(3, e.source).bind(4, e.source);
    task->bind(5, e.task_json).bind(6, e.task_json).bind(7, e.doc_id).bind(8, e.trace_id);
    SLUICE_RETURN_IF_ERROR(task->run());
  }
  SLUICE_ASSIGN_OR_RETURN(auto show,
                          wdb_->prepare("UPDATE docs SET status=r.status, final=(r.rank=?), "
                                        "updated_ms=r.updated_ms FROM (SELECT status, rank, updated_ms "
                                        "FROM runs WHERE trace_id=(SELECT current_trace FROM docs WHERE "
                                        "doc_id=?)) AS r WHERE doc_id=?"));
  show->bind(1, kFinalRank).bind(2, e.doc_id).bind(3, e.doc_id);
  return show->run();
}

Result<std::optional<DocumentStatus>> StatusStore::get(std::string_view doc_id, int64_t stuck_before_ms) {
  std::lock_guard<std::mutex> lock(read_mu_);
  static const std::string sql = std::string("SELECT ") + kDocColumns +
                                 " FROM docs d JOIN runs r ON r.trace_id=d.current_trace WHERE d.doc_id=?";
  SLUICE_ASSIGN_OR_RETURN(auto s, rdb_->prepare(sql.c_str()));
  s->bind(1, doc_id);
  SLUICE_ASSIGN_OR_RETURN(bool found, s->step());
  if (!found) return std::optional<DocumentStatus>();
  DocumentStatus d = read_doc(*s, stuck_before_ms);
  s.reset();
  SLUICE_ASSIGN_OR_RETURN(auto t, rdb_->prepare("SELECT status, at_ms, attempt FROM events WHERE trace_id=? "
                                                "ORDER BY at_ms, rowid"));
  t->bind(1, d.trace_id);
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(bool row, t->step());
    if (!row) break;
    d.timeline.push_back({t->col_text(0), t->col_int(1), static_cast<int>(t->col_int(2))});
  }
  return std::optional<DocumentStatus>(std::move(d));
}

Result<ListPage> StatusStore::list(const ListQuery& q) {
  std::lock_guard<std::mutex> lock(read_mu_);
  // The statement text depends only on which filters are set: four cached variants.
  static const std::string base = std::string("SELECT ") + kDocColumns +
                                  " FROM docs d JOIN runs r ON r.trace_id=d.current_trace WHERE d.seq < ?";
  static const std::string by_status = base + " AND d.status=? ORDER BY d.seq DESC LIMIT ?";
  static const std::string stuck = base + " AND d.final=0 AND d.updated_ms < ? ORDER BY d.seq DESC LIMIT ?";
  static const std::string any = base + " ORDER BY d.seq DESC LIMIT ?";
  const std::string& sql = q.stuck ? stuck : q.status ? by_status : any;
  SLUICE_ASSIGN_OR_RETURN(auto s, rdb_->prepare(sql.c_str()));
  int i = 1;
  s->bind(i++, q.before_seq.value_or(INT64_MAX));
  if (q.stuck) {
    s->bind(i++, q.stuck_before_ms);
  } else if (q.status) {
    s->bind(i++, doc_status_name(*q.status));
  }
  s->bind(i++, static_cast<int64_t>(q.limit + 1));
  ListPage page;
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
    if (!row) break;
    page.documents.push_back(read_doc(*s, q.stuck_before_ms));
  }
  if (page.documents.size() > q.limit) {
    page.documents.pop_back();
    page.next_seq = page.documents.back().seq;
  }
  return page;
}

Result<std::map<std::string, int64_t>> StatusStore::counts(int64_t stuck_before_ms) {
  std::lock_guard<std::mutex> lock(read_mu_);
  std::map<std::string, int64_t> out;
  int64_t total = 0;
  for (DocStatus d : kStatuses) out[std::string(doc_status_name(d))] = 0;
  SLUICE_ASSIGN_OR_RETURN(auto s, rdb_->prepare("SELECT status, COUNT(*) FROM docs GROUP BY status"));
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
    if (!row) break;
    out[s->col_text(0)] = s->col_int(1);
    total += s->col_int(1);
  }
  s.reset();
  SLUICE_ASSIGN_OR_RETURN(auto st,
                          rdb_->prepare("SELECT COUNT(*) FROM docs WHERE final=0 AND updated_ms < ?"));
  st->bind(1, stuck_before_ms);
  SLUICE_ASSIGN_OR_RETURN(bool row, st->step());
  out["stuck"] = row ? st->col_int(0) : 0;
  out["total"] = total;
  return out;
}

Result<bool> StatusStore::remove(std::string_view doc_id) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_ASSIGN_OR_RETURN(auto txn, Txn::begin(wdb_.get(), true));
  SLUICE_ASSIGN_OR_RETURN(auto ev,
                          wdb_->prepare("DELETE FROM events WHERE trace_id IN (SELECT trace_id FROM runs "
                                        "WHERE doc_id=?)"));
  ev->bind(1, doc_id);
  SLUICE_RETURN_IF_ERROR(ev->run());
  ev.reset();
  SLUICE_ASSIGN_OR_RETURN(auto runs, wdb_->prepare("DELETE FROM runs WHERE doc_id=?"));
  runs->bind(1, doc_id);
  SLUICE_RETURN_IF_ERROR(runs->run());
  runs.reset();
  SLUICE_ASSIGN_OR_RETURN(auto docs, wdb_->prepare("DELETE FROM docs WHERE doc_id=?"));
  docs->bind(1, doc_id);
  SLUICE_RETURN_IF_ERROR(docs->run());
  const bool existed = sqlite3_changes(wdb_->handle()) > 0;
  docs.reset();
  SLUICE_RETURN_IF_ERROR(txn->commit());
  return existed;
}

}  // namespace sluice::server
