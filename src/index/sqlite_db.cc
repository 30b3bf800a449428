// The SQLite wrapper of the local index (see sqlite_db.h); the one place where SQLite result
// codes are turned into Status values. Thread-safety: as in sqlite_db.h (one thread per Db).
#include "index/sqlite_db.h"

namespace sluice::index::sqlite {

Status sqlite_status(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "sqlite: " + std::string(what) + ": ";
  msg += (db != nullptr && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::busy(std::move(msg));
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return Status::invalid_argument(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::corruption(std::move(msg));
    case SQLITE_FULL:
    case SQLITE_NOMEM: return Status::resource_limit(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL: return Status::io_error(std::move(msg));
    default: return Status::internal(std::move(msg));
  }
}

Stmt::~Stmt() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::bind_blob(int i, const void* data, size_t n) {
  // A zero-length blob must still be a blob, not NULL (data may be null for an empty vector).
  static const char kEmpty = 0;
  sqlite3_bind_blob64(stmt_, i, n ? data : &kEmpty, n, SQLITE_TRANSIENT);
  return *this;
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->error(rc, sqlite3_sql(stmt_));
}

Status Stmt::run() {
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool row, step());
    if (!row) return Status::ok();
  }
}

std::string Stmt::col_text(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
}

std::string_view Stmt::col_blob(int i) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string_view();
}

Result<std::unique_ptr<Db>> Db::open(const std::string& path, bool create, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqlite_status(raw, rc, "open " + path);
    sqlite3_close_v2(raw);
    return st;
  }
  sqlite3_extended_result_codes(raw, 1);
  std::unique_ptr<Db> db(new Db(raw));
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  // NORMAL is durable across application crashes in WAL mode; only a power loss can drop the
  // last transactions, and the index is derived data that the pipeline can re-ingest.
  SLUICE_RETURN_IF_ERROR(db->exec("PRAGMA synchronous=NORMAL"));
  return db;
}

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Db::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return error(rc, sql);
  return Status::ok();
}

Result<std::unique_ptr<Stmt>> Db::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return error(rc, sql);
    it = cache_.emplace(sql, stmt).first;
  }
  return std::make_unique<Stmt>(this, it->second);
}

Result<std::unique_ptr<Txn>> Txn::begin(Db* db, bool immediate) {
  SLUICE_RETURN_IF_ERROR(db->exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  return std::unique_ptr<Txn>(new Txn(db));
}

Txn::~Txn() {
  if (open_) (void)db_->exec("ROLLBACK");
}

Status Txn::commit() {
  Status st = db_->exec("COMMIT");
  // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: the destructor rolls back.
  if (st.is_ok()) open_ = false;
  return st;
}

}  // namespace sluice::index::sqlite
