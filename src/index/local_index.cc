// The `local` index and open_index(): SQLite (DIR/index.db, WAL) holds the truth — documents,
// chunks with their vectors, an FTS5 table for BM25 keyword search over CJK-aware derived text
// (fts_text.h) — and an hnswlib graph in memory (vector_store.h) answers vector searches. The
// graph is saved to DIR/vectors.hnsw with a sidecar, DIR/vectors.hnsw.meta, naming the write
// counter (meta.write_counter, bumped by every write transaction) it matches; on open a missing,
// unreadable or stale graph is rebuilt from SQLite.
//
// Consistency: a write prepares its whole SQLite transaction first (readers go on reading the
// previous snapshot meanwhile), then, holding view_mu_ exclusively, commits and applies the same
// change to the graph. A search holds view_mu_ shared for its whole run and reads SQLite in one
// transaction, so the FTS results, the graph and the rows it reads all show the same state: one
// version of each document, never two, never half. Graph labels are resolved through SQLite
// anyway, so a label SQLite does not know is dropped rather than returned.
//
// Ownership: LocalIndex owns the write connection, a pool of read connections and the graph.
// Thread-safety: all methods; writers are serialised by write_mu_, searches run concurrently.
// Other processes may write the same database safely (SQLite locking), but this process's graph
// does not see their writes until it is reopened (the counter then differs and it is rebuilt).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <shared_mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "base/env.h"
#include "base/log.h"
#include "index/chroma_index.h"
#include "index/diversify.h"
#include "index/fts_rank.h"
#include "index/fts_text.h"
#include "index/index.h"
#include "index/sqlite_db.h"
#include "index/vector_store.h"

namespace sluice::index {
namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 10000;
// The graph is saved on close, and also once the vectors changed since the last save reach a
// quarter of the graph (at least this many): after a crash the saved graph is brought up to date
// with what changed since (catch_up_vectors), so that work stays a bounded fraction of a rebuild
// while saving a large graph (100k vectors: ~220 MB) stays rare.
constexpr size_t kPersistMinChanges = 5000;
// Deleted graph elements still cost memory and search time: rebuild when they outnumber the
// live ones (and are numerous enough for it to matter).
constexpr size_t kCompactMinDeleted = 10000;
// Reciprocal-rank fusion constant (Cormack et al. 2009).
constexpr double kRrfK = 60;
// The vector list's weight in the fusion. With the lexical `hash` embedder the vector side mostly
// repeats the keyword side with less precision (no IDF), so it breaks ties and finds near-misses
// rather than leading; measured on bench/ingest/eval.jsonl (see README).
constexpr double kVectorWeight = 0.5;

// A keyword query costs about its terms' posting lists (sluice_bm25 scores every chunk that has
// any term, ~0.3 us each), and the most common terms weigh least in bm25. So terms are taken
// (capitalised first, then) rarest first while their chunk counts add up to at most this budget;
// the first two are always kept. 20k: a p50 under 10 ms at 100k chunks (README, benchmark).
constexpr int64_t kMaxQueryPostings = 20000;
constexpr const char* kTermDocsSql = "SELECT doc FROM chunks_vocab WHERE term = ?1";

// The MATCH expression for the chosen terms (see kMaxQueryPostings). Terms the user capitalised
// come first, whatever their counts: they name what the question is about.
Result<std::string> choose_terms(sqlite::Db& db, std::vector<QueryTerm> terms) {
  std::vector<std::string> kept;
  if (terms.size() > 2) {
    // (not capitalised, chunks with the term, position in the query): capitalised first, then
    // the rarest
    std::vector<std::tuple<bool, int64_t, size_t>> order;
    for (size_t i = 0; i < terms.size(); ++i) {
      SLUICE_ASSIGN_OR_RETURN(auto s, db.prepare(kTermDocsSql));
      s->bind(1, terms[i].text);
      SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
      order.emplace_back(!terms[i].capitalized, row ? s->col_int(0) : 0, i);
    }
    std::sort(order.begin(), order.end());
    std::vector<bool> keep(terms.size(), false);
    int64_t postings = 0;
    for (size_t j = 0; j < order.size(); ++j) {
      const int64_t n = std::get<1>(order[j]);
      if (j >= 2 && postings + n > kMaxQueryPostings) break;
      postings += n;
      keep[std::get<2>(order[j])] = true;
    }
    for (size_t i = 0; i < terms.size(); ++i)
      if (keep[i]) kept.push_back(std::move(terms[i].text));
  } else {
    for (auto& t : terms) kept.push_back(std::move(t.text));
  }
  return fts_match(kept);
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(
  doc_id TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  source TEXT NOT NULL,
  pages INTEGER NOT NULL,
  metadata_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- id is the graph label: AUTOINCREMENT so a deleted chunk's label is never given to another.
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  chunk_id TEXT NOT NULL UNIQUE,
  doc_id TEXT NOT NULL,
  version TEXT NOT NULL,
  seq INTEGER NOT NULL,
  page INTEGER NOT NULL,
  heading TEXT NOT NULL,
  text TEXT NOT NULL,
  vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, version);
-- Contentless: the derived text is not stored twice; rows are deleted by re-deriving it.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, body, content='',
  tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
)sql";

// Column lists shared by the search statements (SearchHit fields, then a score).
constexpr const char* kFtsSearchSql = R"sql(
SELECT c.id, c.chunk_id, c.doc_id, IFNULL(d.source, ''), c.page, c.heading, c.text, f.score
FROM (SELECT rowid AS id, sluice_bm25(chunks_fts, ?2, 0.5, 1.0) AS score FROM chunks_fts
      WHERE chunks_fts MATCH ?1 ORDER BY score LIMIT ?2) AS f
JOIN chunks c ON c.id = f.id LEFT JOIN documents d ON d.doc_id = c.doc_id
ORDER BY f.score)sql";
constexpr const char* kChunkByIdSql = R"sql(
SELECT c.id, c.chunk_id, c.doc_id, IFNULL(d.source, ''), c.page, c.heading, c.text
FROM chunks c LEFT JOIN documents d ON d.doc_id = c.doc_id WHERE c.id = ?1)sql";

constexpr const char* kGetMetaSql = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kPutMetaSql = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)";
constexpr const char* kBumpCounterSql =
    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'write_counter' RETURNING value";
constexpr const char* kDocVersionSql = "SELECT version FROM documents WHERE doc_id = ?1";
constexpr const char* kChunkCountDocSql = "SELECT COUNT(*) FROM chunks WHERE doc_id = ?1";
constexpr const char* kChunkCountSql = "SELECT COUNT(*) FROM chunks";
constexpr const char* kDocChunksSql = "SELECT id, heading, text FROM chunks WHERE doc_id = ?1";
constexpr const char* kFtsDeleteSql =
    "INSERT INTO chunks_fts(chunks_fts, rowid, heading, body) VALUES('delete', ?1, ?2, ?3)";
constexpr const char* kFtsInsertSql = "INSERT INTO chunks_fts(rowid, heading, body) VALUES(?1, ?2, ?3)";
constexpr const char* kDeleteChunksSql = "DELETE FROM chunks WHERE doc_id = ?1";
constexpr const char* kInsertChunkSql =
    "INSERT INTO chunks(chunk_id, doc_id, version, seq, page, heading, text, vector) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kUpsertDocSql =
    "INSERT INTO documents(doc_id, version, source, pages, metadata_json, updated_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(doc_id) DO UPDATE SET version = excluded.version, "
    "source = excluded.source, pages = excluded.pages, metadata_json = excluded.metadata_json, "
    "updated_at = excluded.updated_at";
constexpr const char* kDeleteDocSql = "DELETE FROM documents WHERE doc_id = ?1";
constexpr const char* kGetDocSql =
    "SELECT doc_id, version, source, pages, metadata_json FROM documents WHERE doc_id = ?1";
constexpr const char* kListDocsSql =
    "SELECT doc_id, version, source, pages, metadata_json FROM documents ORDER BY doc_id";
constexpr const char* kAllVectorsSql = "SELECT id, vector FROM chunks ORDER BY id";
constexpr const char* kAllChunkIdsSql = "SELECT id FROM chunks ORDER BY id";
constexpr const char* kVectorByIdSql = "SELECT vector FROM chunks WHERE id = ?1";
constexpr const char* kAllChunkTextSql = "SELECT id, heading, text FROM chunks";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

DocumentRecord read_document(const sqlite::Stmt& s) {
  DocumentRecord d;
  d.doc_id = s.col_text(0);
  d.version = s.col_text(1);
  d.source = s.col_text(2);
  d.pages = static_cast<int>(s.col_int(3));
  d.metadata_json = s.col_text(4);
  return d;
}

SearchHit read_hit(const sqlite::Stmt& s) {
  SearchHit h;
  h.chunk_id = s.col_text(1);
  h.doc_id = s.col_text(2);
  h.source = s.col_text(3);
  h.page = static_cast<int>(s.col_int(4));
  h.heading = s.col_text(5);
  h.text = s.col_text(6);
  return h;
}

class LocalIndex final : public Index {
 public:
  LocalIndex(std::string dir, size_t dimension, std::string embedder_name)
      : dir_(std::move(dir)),
        db_path_(dir_ + "/index.db"),
        vectors_path_(dir_ + "/vectors.hnsw"),
        sidecar_path_(dir_ + "/vectors.hnsw.meta"),
        dimension_(dimension),
        embedder_name_(std::move(embedder_name)) {}

  ~LocalIndex() override {
    std::lock_guard lock(write_mu_);
    if (wdb_ && vectors_ && saved_counter_ != counter_) {
      Status st = persist_vectors();
      if (!st.is_ok()) log::warn("index: could not save the vector graph", {{"error", st.to_string()}});
    }
  }

  Status init();

  Status upsert_document(const DocumentRecord& doc, std::span<const ChunkRecord> chunks) override;
  Result<std::optional<DocumentRecord>> get_document(std::string_view doc_id) override;
  Status delete_document(std::string_view doc_id) override;
  Result<std::vector<DocumentRecord>> list_documents() override;
  Result<size_t> chunk_count(std::optional<std::string_view> doc_id) override;
  Result<std::vector<SearchHit>> search(std::string_view query, std::span<const float> vector,
                                        const SearchOptions& opts) override;

 private:
  // A read connection borrowed from the pool and returned on destruction.
  class Lease {
   public:
    Lease(LocalIndex* owner, std::unique_ptr<sqlite::Db> db) : owner_(owner), db_(std::move(db)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (db_) owner_->release(std::move(db_));
    }
    sqlite::Db* operator->() const { return db_.get(); }
    sqlite::Db* get() const { return db_.get(); }

   private:
    LocalIndex* owner_;
    std::unique_ptr<sqlite::Db> db_;
  };

  Result<Lease> lease();
  std::shared_lock<std::shared_mutex> view_shared() {
    std::lock_guard gate(view_gate_);
    return std::shared_lock(view_mu_);
  }
  std::unique_lock<std::shared_mutex> view_exclusive() {
    std::lock_guard gate(view_gate_);
    return std::unique_lock(view_mu_);
  }
  void release(std::unique_ptr<sqlite::Db> db);

  Status init_schema();
  Status rebuild_fts();
  Status load_or_rebuild_vectors();
  Result<std::pair<size_t, size_t>> catch_up_vectors(VectorStore& store);
  Result<int64_t> read_counter();
  Status follow_other_writers();
  Status catch_up_if_behind();
  Status rebuild_vectors(std::string_view reason);
  Status persist_vectors();
  Result<int64_t> bump_counter();
  // Commits txn and applies the same change to the graph, atomically for searches.
  Status commit_and_apply(sqlite::Txn* txn, int64_t counter, std::span<const int64_t> removed,
                          std::span<const int64_t> added, std::span<const float> added_vectors);
  // Removes the document's chunks (rows, FTS entries) inside the open transaction; appends the
  // removed rowids.
  Status delete_chunks(std::string_view doc_id, std::vector<int64_t>* removed);

  const std::string dir_, db_path_, vectors_path_, sidecar_path_;
  const size_t dimension_;
  const std::string embedder_name_;

  std::mutex write_mu_;  // serialises writers; guards wdb_, counters below
  std::unique_ptr<sqlite::Db> wdb_;
  int64_t counter_ = 0;  // meta.write_counter that the graph reflects (with behind_)
  // The graph lacks writes of another process (counter_ is theirs). Atomic: search reads it first
  // without write_mu_.
  std::atomic<bool> behind_{false};
  int64_t saved_counter_ = -1;     // the counter of the graph file on disk
  size_t changes_since_save_ = 0;  // vectors added or removed since the graph was saved

  std::shared_mutex view_mu_;  // shared: searches; exclusive: commit + graph change, graph swap
  // Taken briefly before view_mu_ by both sides: glibc's rwlock prefers readers, and without the
  // gate a steady stream of searches could starve a writer forever.
  std::mutex view_gate_;
  std::unique_ptr<VectorStore> vectors_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<sqlite::Db>> pool_;
};

Result<LocalIndex::Lease> LocalIndex::lease() {
  {
    std::lock_guard lock(pool_mu_);
    if (!pool_.empty()) {
      auto db = std::move(pool_.back());
      pool_.pop_back();
      return Lease(this, std::move(db));
    }
  }
  SLUICE_ASSIGN_OR_RETURN(auto db, sqlite::Db::open(db_path_, false, kBusyTimeoutMs));
  SLUICE_RETURN_IF_ERROR(db->exec("PRAGMA query_only=1"));
  SLUICE_RETURN_IF_ERROR(register_fts_rank(db->handle()));
  return Lease(this, std::move(db));
}

void LocalIndex::release(std::unique_ptr<sqlite::Db> db) {
  std::lock_guard lock(pool_mu_);
  pool_.push_back(std::move(db));
}

Status LocalIndex::init() {
  std::lock_guard lock(write_mu_);
  SLUICE_ASSIGN_OR_RETURN(wdb_, sqlite::Db::open(db_path_, true, kBusyTimeoutMs));
  // Switching to WAL needs the database to itself and does not wait on the busy timeout: when
  // another process is opening it at the same moment (two workers starting), try again.
  for (int attempt = 0;; ++attempt) {
    Status st = wdb_->exec("PRAGMA journal_mode=WAL");
    if (st.is_ok()) break;
    if (st.code() != Code::kBusy || attempt >= 200) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  SLUICE_RETURN_IF_ERROR(init_schema());
  SLUICE_RETURN_IF_ERROR(load_or_rebuild_vectors());
  // One reader ready, its search statements compiled (which reads the schema): the first search
  // then costs what any search costs.
  SLUICE_ASSIGN_OR_RETURN(auto reader, lease());
  for (const char* sql : {kFtsSearchSql, kChunkByIdSql, kTermDocsSql})
    SLUICE_RETURN_IF_ERROR(reader->prepare(sql).status());
  return Status::ok();
}

Status LocalIndex::init_schema() {
  SLUICE_ASSIGN_OR_RETURN(auto txn, sqlite::Txn::begin(wdb_.get(), true));
  SLUICE_RETURN_IF_ERROR(wdb_->exec(kSchema));
  auto get = [&](const char* key) -> Result<std::optional<std::string>> {
    SLUICE_ASSIGN_OR_RETURN(auto s, wdb_->prepare(kGetMetaSql));
    s->bind(1, key);
    SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(s->col_text(0));
  };
  auto put = [&](const char* key, const std::string& value) -> Status {
    SLUICE_ASSIGN_OR_RETURN(auto s, wdb_->prepare(kPutMetaSql));
    return s->bind(1, key).bind(2, value).run();
  };

  SLUICE_ASSIGN_OR_RETURN(auto schema, get("schema_version"));
  if (!schema) {
    SLUICE_RETURN_IF_ERROR(put("schema_version", std::to_string(kSchemaVersion)));
    SLUICE_RETURN_IF_ERROR(put("dimension", std::to_string(dimension_)));
    SLUICE_RETURN_IF_ERROR(put("embedder", embedder_name_));
    SLUICE_RETURN_IF_ERROR(put("fts_text_version", std::to_string(kFtsTextVersion)));
    SLUICE_RETURN_IF_ERROR(put("write_counter", "0"));
    SLUICE_RETURN_IF_ERROR(txn->commit());
    return Status::ok();
  }
  if (*schema != std::to_string(kSchemaVersion)) {
    return Status::unsupported("index " + db_path_ + " has schema version " + *schema +
                               "; this build reads " + std::to_string(kSchemaVersion));
  }
  SLUICE_ASSIGN_OR_RETURN(auto dim, get("dimension"));
  SLUICE_ASSIGN_OR_RETURN(auto emb, get("embedder"));
  std::string stored_dim = dim.value_or("?"), stored_emb = emb.value_or("?");
  if (stored_dim != std::to_string(dimension_) || stored_emb != embedder_name_) {
    return Status::invalid_argument("index " + dir_ + " was built with embedder '" + stored_emb +
                                    "' (dimension " + stored_dim + "); it cannot be opened with embedder '" +
                                    embedder_name_ + "' (dimension " + std::to_string(dimension_) +
                                    "): use the same embedder or a new index directory");
  }
  SLUICE_ASSIGN_OR_RETURN(auto fts_version, get("fts_text_version"));
  if (fts_version.value_or("") != std::to_string(kFtsTextVersion)) {
    SLUICE_RETURN_IF_ERROR(rebuild_fts());
    SLUICE_RETURN_IF_ERROR(put("fts_text_version", std::to_string(kFtsTextVersion)));
  }
  return txn->commit();
}

// Re-derives the whole FTS table (inside init's transaction) when the derivation has changed.
Status LocalIndex::rebuild_fts() {
  log::info("index: rebuilding the keyword index (text derivation changed)", {{"dir", dir_}});
  SLUICE_RETURN_IF_ERROR(wdb_->exec("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')"));
  SLUICE_ASSIGN_OR_RETURN(auto all, wdb_->prepare(kAllChunkTextSql));
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool row, all->step());
    if (!row) break;
    SLUICE_ASSIGN_OR_RETURN(auto ins, wdb_->prepare(kFtsInsertSql));
    SLUICE_RETURN_IF_ERROR(ins->bind(1, all->col_int(0))
                               .bind(2, fts_document_text(all->col_text(1)))
                               .bind(3, fts_document_text(all->col_text(2)))
                               .run());
  }
  return Status::ok();
}

Status LocalIndex::load_or_rebuild_vectors() {
  SLUICE_ASSIGN_OR_RETURN(int64_t counter, read_counter());
  std::string reason;
  Env* env = Env::posix();
  if (!env->exists(vectors_path_) || !env->exists(sidecar_path_)) {
    reason = "vector file missing";
  } else {
    auto text = env->read_file(sidecar_path_);
    nlohmann::json meta = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    std::error_code ec;
    auto bytes = std::filesystem::file_size(vectors_path_, ec);
    if (!meta.is_object() || meta.value("format", 0) != 1 ||
        meta.value("dimension", uint64_t{0}) != dimension_ || ec ||
        meta.value("bytes", uint64_t{0}) != bytes) {
      reason = "vector sidecar unreadable or not matching";
    } else if (meta.value("write_counter", int64_t{-1}) != counter) {
      // Stale (the process stopped before it saved): the saved graph was consistent at its own
      // counter, so it needs only the chunks written and deleted since, which is much cheaper
      // than a rebuild of everything (100k vectors: ~45 s).
      reason = "vector file stale (write counter " +
               std::to_string(meta.value("write_counter", int64_t{-1})) + ", database at " +
               std::to_string(counter) + ")";
      auto loaded = VectorStore::load(vectors_path_, dimension_);
      if (loaded) {
        auto caught_up = catch_up_vectors(*loaded.value());
        if (caught_up.is_ok()) {
          auto view = view_exclusive();
          vectors_ = std::move(loaded).value();
          counter_ = counter;
          saved_counter_ = -1;
          view.unlock();
          log::info("index: brought the saved vector graph up to date", {{"dir", dir_},
                                                                         {"reason", reason},
                                                                         {"added", caught_up->first},
                                                                         {"removed", caught_up->second}});
          return persist_vectors();
        }
        reason += "; catching up failed: " + caught_up.status().to_string();
      } else {
        reason += "; " + loaded.status().to_string();
      }
    } else {
      auto loaded = VectorStore::load(vectors_path_, dimension_);
      if (loaded) {
        auto view = view_exclusive();
        vectors_ = std::move(loaded).value();
        counter_ = saved_counter_ = counter;
        return Status::ok();
      }
      reason = loaded.status().to_string();
    }
  }
  counter_ = counter;
  SLUICE_RETURN_IF_ERROR(rebuild_vectors(reason));
  // Saved at once: a rebuild of a large index is worth not repeating after a crash.
  return persist_vectors();
}

// Applies to `store` (a graph saved at an earlier counter) what SQLite changed since: vectors of
// chunks it lacks are added, labels of chunks that are gone are marked deleted. Chunk ids are never
// reused (AUTOINCREMENT), so the two id sets tell the whole difference. Returns (added, removed).
Result<std::pair<size_t, size_t>> LocalIndex::catch_up_vectors(VectorStore& store) {
  std::vector<int64_t> in_graph = store.live_labels();
  std::sort(in_graph.begin(), in_graph.end());
  std::vector<int64_t> in_db;
  {
    SLUICE_ASSIGN_OR_RETURN(auto ids, wdb_->prepare(kAllChunkIdsSql));
    while (true) {
      SLUICE_ASSIGN_OR_RETURN(bool row, ids->step());
      if (!row) break;
      in_db.push_back(ids->col_int(0));
    }
  }
  std::vector<int64_t> added, removed;
  std::set_difference(in_db.begin(), in_db.end(), in_graph.begin(), in_graph.end(),
                      std::back_inserter(added));
  std::set_difference(in_graph.begin(), in_graph.end(), in_db.begin(), in_db.end(),
                      std::back_inserter(removed));
  // Past this, the deleted elements would cost more than the rebuild saves.
  if (store.deleted() + removed.size() > in_db.size() / 2 + kCompactMinDeleted) {
    return Status::internal("too many deletions since the graph was saved");
  }
  std::vector<float> vectors;
  vectors.reserve(added.size() * dimension_);
  for (int64_t id : added) {
    SLUICE_ASSIGN_OR_RETURN(auto get, wdb_->prepare(kVectorByIdSql));
    get->bind(1, id);
    SLUICE_ASSIGN_OR_RETURN(bool row, get->step());
    std::string_view blob = row ? get->col_blob(0) : std::string_view();
    if (blob.size() != dimension_ * sizeof(float)) {
      return Status::corruption("index " + db_path_ + ": chunk " + std::to_string(id) + " has a " +
                                std::to_string(blob.size()) + "-byte vector");
    }
    size_t at = vectors.size();
    vectors.resize(at + dimension_);
    std::memcpy(vectors.data() + at, blob.data(), blob.size());
  }
  SLUICE_RETURN_IF_ERROR(store.remove(removed));
  SLUICE_RETURN_IF_ERROR(store.add(added, vectors));
  return std::make_pair(added.size(), removed.size());
}

Result<int64_t> LocalIndex::read_counter() {
  SLUICE_ASSIGN_OR_RETURN(auto s, wdb_->prepare(kGetMetaSql));
  s->bind(1, "write_counter");
  SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
  if (!row) return Status::corruption("index " + db_path_ + ": meta.write_counter is missing");
  return s->col_int(0);
}

// Called at the start of a write transaction (which holds SQLite's write lock): when the database's
// counter is not the one this process last wrote or read, another process (a second `sluice worker`
// on the same index) wrote in between. The graph lacks those writes until the next search takes
// them in (catch_up_if_behind): writers, which do not search, never pay for it, and a save
// meanwhile is marked stale so that a loader takes them in.
Status LocalIndex::follow_other_writers() {
  SLUICE_ASSIGN_OR_RETURN(int64_t counter, read_counter());
  if (counter != counter_) {
    behind_ = true;
    counter_ = counter;
  }
  return Status::ok();
}

Status LocalIndex::catch_up_if_behind() {
  if (!behind_) return Status::ok();
  std::lock_guard lock(write_mu_);
  if (!behind_) return Status::ok();
  // One snapshot for the counter, the ids and the vectors.
  SLUICE_ASSIGN_OR_RETURN(auto txn, sqlite::Txn::begin(wdb_.get(), false));
  SLUICE_ASSIGN_OR_RETURN(int64_t counter, read_counter());
  {
    auto view = view_exclusive();
    auto caught_up = catch_up_vectors(*vectors_);
    if (!caught_up.is_ok()) {
      view.unlock();
      log::warn("index: could not take in another process's writes; rebuilding",
                {{"dir", dir_}, {"error", caught_up.status().to_string()}});
      SLUICE_RETURN_IF_ERROR(rebuild_vectors("another process wrote"));
    }
  }
  counter_ = counter;
  saved_counter_ = -1;  // the graph is now ahead of its file
  behind_ = false;
  return txn->commit();
}

// Builds a new graph from SQLite (writers are held off by write_mu_, so it matches counter_)
// and swaps it in; searches go on with the old graph meanwhile.
Status LocalIndex::rebuild_vectors(std::string_view reason) {
  auto start = std::chrono::steady_clock::now();
  SLUICE_ASSIGN_OR_RETURN(auto count_stmt, wdb_->prepare(kChunkCountSql));
  SLUICE_ASSIGN_OR_RETURN(bool row, count_stmt->step());
  size_t count = row ? static_cast<size_t>(count_stmt->col_int(0)) : 0;
  count_stmt.reset();

  SLUICE_ASSIGN_OR_RETURN(auto store,
                          VectorStore::create(dimension_, std::max<size_t>(1024, count + count / 4)));
  std::vector<int64_t> labels;
  std::vector<float> vectors;
  labels.reserve(count);
  vectors.reserve(count * dimension_);
  SLUICE_ASSIGN_OR_RETURN(auto all, wdb_->prepare(kAllVectorsSql));
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool more, all->step());
    if (!more) break;
    std::string_view blob = all->col_blob(1);
    if (blob.size() != dimension_ * sizeof(float)) {
      return Status::corruption("index " + db_path_ + ": chunk " + std::to_string(all->col_int(0)) +
                                " has a " + std::to_string(blob.size()) + "-byte vector, expected " +
                                std::to_string(dimension_ * sizeof(float)));
    }
    labels.push_back(all->col_int(0));
    size_t at = vectors.size();
    vectors.resize(at + dimension_);
    std::memcpy(vectors.data() + at, blob.data(), blob.size());
  }
  all.reset();
  SLUICE_RETURN_IF_ERROR(store->add(labels, vectors));
  {
    auto view = view_exclusive();
    vectors_ = std::move(store);
  }
  saved_counter_ = -1;
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  if (labels.empty()) return Status::ok();  // a new or empty index: nothing worth a log line
  log::info("index: rebuilt the vector graph from SQLite",
            {{"dir", dir_}, {"reason", reason}, {"vectors", labels.size()}, {"ms", ms}});
  return Status::ok();
}

// Saves the graph, then the sidecar naming the counter it matches. A crash in between leaves a
// sidecar that does not match the file (size) or the database (counter): the next open rebuilds.
Status LocalIndex::persist_vectors() {
  // A graph that lacks another process's writes is saved as stale: a loader takes them in.
  int64_t counter = behind_ ? -1 : counter_;
  {
    auto view = view_shared();  // save() only reads the graph; searches may continue
    SLUICE_RETURN_IF_ERROR(vectors_->save(vectors_path_));
  }
  std::error_code ec;
  auto bytes = std::filesystem::file_size(vectors_path_, ec);
  if (ec) return Status::io_error("index: cannot stat " + vectors_path_ + ": " + ec.message());
  nlohmann::json meta = {
      {"format", 1}, {"dimension", dimension_}, {"write_counter", counter}, {"bytes", bytes}};
  SLUICE_RETURN_IF_ERROR(Env::posix()->write_file_atomic(sidecar_path_, meta.dump()));
  saved_counter_ = counter_;
  changes_since_save_ = 0;
  return Status::ok();
}

Result<int64_t> LocalIndex::bump_counter() {
  SLUICE_ASSIGN_OR_RETURN(auto s, wdb_->prepare(kBumpCounterSql));
  SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
  if (!row) return Status::corruption("index " + db_path_ + ": meta.write_counter is missing");
  int64_t v = s->col_int(0);
  SLUICE_RETURN_IF_ERROR(s->run());
  return v;
}

Status LocalIndex::commit_and_apply(sqlite::Txn* txn, int64_t counter, std::span<const int64_t> removed,
                                    std::span<const int64_t> added, std::span<const float> added_vectors) {
  Status graph_status;
  {
    auto view = view_exclusive();
    SLUICE_RETURN_IF_ERROR(txn->commit());
    counter_ = counter;
    graph_status = vectors_->remove(removed);
    if (graph_status.is_ok()) graph_status = vectors_->add(added, added_vectors);
  }
  changes_since_save_ += added.size() + removed.size();
  if (!graph_status.is_ok()) {
    // SQLite has the change; the graph must not lag behind it.
    log::warn("index: vector graph update failed; rebuilding", {{"error", graph_status.to_string()}});
    return rebuild_vectors("graph update failed");
  }
  if (vectors_->deleted() >= kCompactMinDeleted && vectors_->deleted() > vectors_->size() / 2) {
    SLUICE_RETURN_IF_ERROR(rebuild_vectors("compaction of deleted vectors"));
  }
  if (changes_since_save_ >= std::max(kPersistMinChanges, vectors_->size() / 4)) {
    Status st = persist_vectors();
    // The write itself succeeded; a failed save only costs a rebuild on the next open.
    if (!st.is_ok()) log::warn("index: could not save the vector graph", {{"error", st.to_string()}});
  }
  return Status::ok();
}

Status LocalIndex::delete_chunks(std::string_view doc_id, std::vector<int64_t>* removed) {
  SLUICE_ASSIGN_OR_RETURN(auto old, wdb_->prepare(kDocChunksSql));
  old->bind(1, doc_id);
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool row, old->step());
    if (!row) break;
    int64_t id = old->col_int(0);
    // A contentless FTS5 row is deleted by giving back exactly the values it was indexed with.
    SLUICE_ASSIGN_OR_RETURN(auto del, wdb_->prepare(kFtsDeleteSql));
    SLUICE_RETURN_IF_ERROR(del->bind(1, id)
                               .bind(2, fts_document_text(old->col_text(1)))
                               .bind(3, fts_document_text(old->col_text(2)))
                               .run());
    removed->push_back(id);
  }
  old.reset();
  SLUICE_ASSIGN_OR_RETURN(auto del_chunks, wdb_->prepare(kDeleteChunksSql));
  return del_chunks->bind(1, doc_id).run();
}

Status LocalIndex::upsert_document(const DocumentRecord& doc, std::span<const ChunkRecord> chunks) {
  if (doc.doc_id.empty()) return Status::invalid_argument("upsert_document: empty doc_id");
  std::string_view metadata = doc.metadata_json.empty() ? std::string_view("{}") : doc.metadata_json;
  if (!nlohmann::json::accept(metadata)) {
    return Status::invalid_argument("upsert_document: metadata_json of '" + doc.doc_id +
                                    "' is not valid JSON");
  }
  for (const ChunkRecord& c : chunks) {
    if (c.chunk_id.empty())
      return Status::invalid_argument("upsert_document: a chunk of '" + doc.doc_id + "' has no id");
    if (c.vector.size() != dimension_) {
      return Status::invalid_argument("upsert_document: chunk '" + c.chunk_id +
                                      "' has a vector of dimension " + std::to_string(c.vector.size()) +
                                      ", the index has dimension " + std::to_string(dimension_));
    }
  }

  std::lock_guard lock(write_mu_);
  SLUICE_ASSIGN_OR_RETURN(auto txn, sqlite::Txn::begin(wdb_.get(), true));
  SLUICE_RETURN_IF_ERROR(follow_other_writers());
  {
    SLUICE_ASSIGN_OR_RETURN(auto s, wdb_->prepare(kDocVersionSql));
    s->bind(1, doc.doc_id);
    SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
    if (row && s->col_text(0) == doc.version) {
      s.reset();
      SLUICE_ASSIGN_OR_RETURN(auto n, wdb_->prepare(kChunkCountDocSql));
      n->bind(1, doc.doc_id);
      SLUICE_ASSIGN_OR_RETURN(bool has, n->step());
      if (has && static_cast<size_t>(n->col_int(0)) == chunks.size()) return Status::ok();  // already there
    }
  }

  std::vector<int64_t> removed;
  SLUICE_RETURN_IF_ERROR(delete_chunks(doc.doc_id, &removed));

  std::vector<int64_t> added;
  std::vector<float> added_vectors;
  added.reserve(chunks.size());
  added_vectors.reserve(chunks.size() * dimension_);
  for (const ChunkRecord& c : chunks) {
    {
      SLUICE_ASSIGN_OR_RETURN(auto ins, wdb_->prepare(kInsertChunkSql));
      ins->bind(1, c.chunk_id)
          .bind(2, doc.doc_id)
          .bind(3, doc.version)
          .bind(4, int64_t{c.seq})
          .bind(5, int64_t{c.page})
          .bind(6, c.heading)
          .bind(7, c.text)
          .bind_blob(8, c.vector.data(), c.vector.size() * sizeof(float));
      Status st = ins->run();
      if (!st.is_ok())
        return st.with_context("upsert_document '" + doc.doc_id + "', chunk '" + c.chunk_id + "'");
    }
    int64_t id = sqlite3_last_insert_rowid(wdb_->handle());
    SLUICE_ASSIGN_OR_RETURN(auto fts, wdb_->prepare(kFtsInsertSql));
    SLUICE_RETURN_IF_ERROR(
        fts->bind(1, id).bind(2, fts_document_text(c.heading)).bind(3, fts_document_text(c.text)).run());
    added.push_back(id);
    added_vectors.insert(added_vectors.end(), c.vector.begin(), c.vector.end());
  }
  {
    SLUICE_ASSIGN_OR_RETURN(auto up, wdb_->prepare(kUpsertDocSql));
    SLUICE_RETURN_IF_ERROR(up->bind(1, doc.doc_id)
                               .bind(2, doc.version)
                               .bind(3, doc.source)
                               .bind(4, int64_t{doc.pages})
                               .bind(5, metadata)
                               .bind(6, now_ms())
                               .run());
  }
  SLUICE_ASSIGN_OR_RETURN(int64_t counter, bump_counter());
  return commit_and_apply(txn.get(), counter, removed, added, added_vectors);
}

Status LocalIndex::delete_document(std::string_view doc_id) {
  std::lock_guard lock(write_mu_);
  SLUICE_ASSIGN_OR_RETURN(auto txn, sqlite::Txn::begin(wdb_.get(), true));
  SLUICE_RETURN_IF_ERROR(follow_other_writers());
  std::vector<int64_t> removed;
  SLUICE_RETURN_IF_ERROR(delete_chunks(doc_id, &removed));
  {
    SLUICE_ASSIGN_OR_RETURN(auto del, wdb_->prepare(kDeleteDocSql));
    SLUICE_RETURN_IF_ERROR(del->bind(1, doc_id).run());
  }
  if (sqlite3_changes(wdb_->handle()) == 0 && removed.empty()) return Status::ok();  // nothing there
  SLUICE_ASSIGN_OR_RETURN(int64_t counter, bump_counter());
  return commit_and_apply(txn.get(), counter, removed, {}, {});
}

Result<std::optional<DocumentRecord>> LocalIndex::get_document(std::string_view doc_id) {
  SLUICE_ASSIGN_OR_RETURN(auto db, lease());
  SLUICE_ASSIGN_OR_RETURN(auto s, db->prepare(kGetDocSql));
  s->bind(1, doc_id);
  SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
  if (!row) return std::optional<DocumentRecord>();
  return std::optional<DocumentRecord>(read_document(*s));
}

Result<std::vector<DocumentRecord>> LocalIndex::list_documents() {
  SLUICE_ASSIGN_OR_RETURN(auto db, lease());
  SLUICE_ASSIGN_OR_RETURN(auto s, db->prepare(kListDocsSql));
  std::vector<DocumentRecord> docs;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
    if (!row) break;
    docs.push_back(read_document(*s));
  }
  return docs;
}

Result<size_t> LocalIndex::chunk_count(std::optional<std::string_view> doc_id) {
  SLUICE_ASSIGN_OR_RETURN(auto db, lease());
  SLUICE_ASSIGN_OR_RETURN(auto s, db->prepare(doc_id ? kChunkCountDocSql : kChunkCountSql));
  if (doc_id) s->bind(1, *doc_id);
  SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
  return row ? static_cast<size_t>(s->col_int(0)) : size_t{0};
}

Result<std::vector<SearchHit>> LocalIndex::search(std::string_view query, std::span<const float> vector,
                                                  const SearchOptions& opts) {
  using Mode = SearchOptions::Mode;
  if (!vector.empty() && vector.size() != dimension_) {
    return Status::invalid_argument("search: query vector of dimension " + std::to_string(vector.size()) +
                                    ", the index has dimension " + std::to_string(dimension_));
  }
  if (opts.mode == Mode::kVector && vector.empty()) {
    return Status::invalid_argument("search: vector mode needs a query vector");
  }
  std::vector<SearchHit> out;
  if (opts.k == 0) return out;
  if (opts.mode != Mode::kKeyword) SLUICE_RETURN_IF_ERROR(catch_up_if_behind());
  constexpr double kMinVectorSimilarity = 0.05;
  const size_t k = opts.k;
  // Each side of a hybrid search contributes a deeper list than k so that fusion can promote a
  // chunk that is second-tier on both sides.
  const size_t depth = std::max<size_t>(k * 4, 20);  // fusion and diversity both need a deeper list
  const bool use_fts = opts.mode != Mode::kVector;
  const bool use_vectors = opts.mode != Mode::kKeyword && !vector.empty();
  std::vector<QueryTerm> terms = use_fts ? fts_query_terms(query) : std::vector<QueryTerm>();

  std::vector<SearchHit> fts_hits, vec_hits;
  {
    SLUICE_ASSIGN_OR_RETURN(auto db, lease());
    auto view = view_shared();
    // One read transaction: the FTS hits and the rows behind the graph's labels come from the
    // same snapshot, which view_mu_ makes the one the graph shows.
    SLUICE_ASSIGN_OR_RETURN(auto txn, sqlite::Txn::begin(db.get(), false));
    SLUICE_ASSIGN_OR_RETURN(std::string match, choose_terms(*db.get(), std::move(terms)));
    if (!match.empty()) {
      SLUICE_ASSIGN_OR_RETURN(auto s, db->prepare(kFtsSearchSql));
      s->bind(1, match).bind(2, static_cast<int64_t>(depth));
      while (true) {
        SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
        if (!row) break;
        SearchHit h = read_hit(*s);
        h.score = -s->col_double(7);  // bm25() is lower-is-better
        fts_hits.push_back(std::move(h));
      }
    }
    if (use_vectors) {
      SLUICE_ASSIGN_OR_RETURN(auto near,
                              vectors_->search(vector, std::max({depth, k * 4, VectorStore::kMinEf})));
      for (const VectorStore::Hit& v : near) {
        if (vec_hits.size() >= depth) break;
        // A neighbour this far away shares next to nothing with the query (with the hash embedder:
        // no word or bigram); ranking it would only add noise to the fusion.
        if (v.similarity < kMinVectorSimilarity) break;
        SLUICE_ASSIGN_OR_RETURN(auto s, db->prepare(kChunkByIdSql));
        s->bind(1, v.label);
        SLUICE_ASSIGN_OR_RETURN(bool row, s->step());
        if (!row) continue;  // not in this snapshot
        SearchHit h = read_hit(*s);
        h.score = v.similarity;
        vec_hits.push_back(std::move(h));
      }
    }
    SLUICE_RETURN_IF_ERROR(txn->commit());
  }

  if (opts.mode == Mode::kKeyword) {
    out = std::move(fts_hits);
  } else if (opts.mode == Mode::kVector) {
    out = std::move(vec_hits);
  } else {
    // Reciprocal-rank fusion: score = sum over lists of weight / (60 + rank), ranks from 1.
    std::unordered_map<std::string, size_t> at;  // chunk_id -> index in out
    auto fuse = [&](std::vector<SearchHit>& list, double weight) {
      for (size_t r = 0; r < list.size(); ++r) {
        double s = weight / (kRrfK + static_cast<double>(r + 1));
        auto [it, fresh] = at.emplace(list[r].chunk_id, out.size());
        if (fresh) {
          out.push_back(std::move(list[r]));
          out.back().score = s;
        } else {
          out[it->second].score += s;
        }
      }
    };
    fuse(fts_hits, 1.0);
    fuse(vec_hits, kVectorWeight);
    std::stable_sort(out.begin(), out.end(),
                     [](const SearchHit& a, const SearchHit& b) { return a.score > b.score; });
  }
  diversify_hits(out, k);
  return out;
}

}  // namespace

Result<std::unique_ptr<Index>> open_index(std::string_view uri, size_t dimension,
                                          std::string_view embedder_name) {
  size_t colon = uri.find(':');
  std::string_view scheme = uri.substr(0, colon);
  if (scheme == "chroma" || scheme == "chromas") return open_chroma_index(uri, dimension, embedder_name);
  if (scheme != "local") {
    if (colon == std::string_view::npos || scheme.empty()) {
      return Status::invalid_argument("index: bad URI '" + std::string(uri) +
                                      "' (expected local:DIR or chroma://HOST:PORT/COLLECTION)");
    }
    return Status::unsupported("index: unsupported scheme '" + std::string(scheme) +
                               "' (supported: local, chroma, chromas)");
  }
  std::string dir(colon == std::string_view::npos ? std::string_view() : uri.substr(colon + 1));
  if (dir.empty()) return Status::invalid_argument("index: '" + std::string(uri) + "' names no directory");
  if (dimension == 0) return Status::invalid_argument("index: dimension must be positive");
  if (embedder_name.empty()) return Status::invalid_argument("index: embedder name is empty");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SLUICE_RETURN_IF_ERROR(Env::posix()->create_dirs(dir));
  auto index = std::make_unique<LocalIndex>(std::move(dir), dimension, std::string(embedder_name));
  SLUICE_RETURN_IF_ERROR(index->init());
  return std::unique_ptr<Index>(std::move(index));
}

}  // namespace sluice::index
