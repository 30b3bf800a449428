// A thin RAII layer over the SQLite C API for the local index: a connection (Db) that caches its
// prepared statements, a statement handle (Stmt) that resets itself when it goes out of scope,
// and sqlite_status(), the one place where SQLite result codes become Status values.
//
// Ownership: a Db owns its sqlite3 handle and its cached statements; a Stmt borrows a cached
// statement from its Db for one use. Thread-safety: none — a Db is used by one thread at a time
// (connections are opened with SQLITE_OPEN_NOMUTEX; the index hands them out from a pool).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

namespace sluice::index::sqlite {

// Translates a SQLite result code into a Status: busy/locked → retriable, constraint → bad input,
// corrupt/notadb → corruption, full/nomem → resource limit, I/O and the rest → fatal.
Status sqlite_status(sqlite3* db, int rc, std::string_view what);

class Db;

// One use of a cached prepared statement. Binding indexes start at 1, column indexes at 0.
class Stmt {
 public:
  Stmt(Db* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind_blob(int i, const void* data, size_t n);

  // Steps once: true with a row, false when done; errors carry the statement's SQL.
  Result<bool> step();
  // Steps to completion, expecting no rows.
  Status run();

  int64_t col_int(int i) const { return sqlite3_column_int64(stmt_, i); }
  double col_double(int i) const { return sqlite3_column_double(stmt_, i); }
  std::string col_text(int i) const;
  std::string_view col_blob(int i) const;

 private:
  Db* db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  // Opens (creating if asked) the database at path, with busy_timeout and synchronous=NORMAL.
  static Result<std::unique_ptr<Db>> open(const std::string& path, bool create, int busy_timeout_ms);
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  sqlite3* handle() const { return db_; }
  // Runs one or more statements that return no rows we need.
  Status exec(const char* sql);
  // The statement for sql, prepared once per connection (sql must outlive the Db: use literals).
  Result<std::unique_ptr<Stmt>> prepare(const char* sql);
  Status error(int rc, std::string_view what) const { return sqlite_status(db_, rc, what); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// A transaction on a connection: rolled back on destruction unless committed.
class Txn {
 public:
  // immediate: take the write lock now (writers), else a deferred read transaction (readers).
  static Result<std::unique_ptr<Txn>> begin(Db* db, bool immediate);
  ~Txn();
  Status commit();

 private:
  explicit Txn(Db* db) : db_(db) {}
  Db* db_;
  bool open_ = true;
};

}  // namespace sluice::index::sqlite
