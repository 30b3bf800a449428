// The chroma index (chroma_index.h says what is stored where and how a replacement stays atomic
// for readers). Every request goes through store::HttpClient; this file builds Chroma's v2 JSON
// bodies and reads its answers, and never lets a JSON exception out.
#include "index/chroma_index.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/base64.h"
#include "base/hash.h"
#include "base/log.h"
#include "index/diversify.h"
#include "store/http_client.h"

namespace sluice::index {
namespace {

using json = nlohmann::json;
using config::Kind;

// The docs collection's record that every pointer change replaces first (see the header).
constexpr const char* kCommitId = "__sluice_commit";
constexpr const char* kDocsSuffix = "__docs";
constexpr int kSchemaVersion = 1;
// A search tried again this often while pointers move under it, pausing a little longer each time
// (a writer's replacement takes a few requests: a short pause lets it finish).
constexpr int kSearchAttempts = 8;
constexpr int kSearchRetryPauseMs = 4;
constexpr int kDefaultPort = 8000;
// Ids per /get page when counting or listing.
constexpr size_t kPageSize = 5000;
// Used when the server does not answer /api/v2/pre-flight-checks (it is older than the v2 API
// this file speaks; whatever else fails will say so).
constexpr size_t kFallbackBatch = 1000;
// A vector neighbour this far away shares next to nothing with the query; the local index drops
// it too (local_index.cc), so both indexes answer alike.
constexpr double kMinVectorSimilarity = 0.05;

const config::Property kChromaProperties[] = {
    {"tenant", Kind::kString, "default_tenant", "Chroma tenant; created when missing"},
    {"database", Kind::kString, "default_database", "Database in the tenant; created when missing"},
    {"tls", Kind::kBool, "false", "Speak https to the server (as `chromas://` does)"},
    {"batch",
     Kind::kInt,
     "0",
     "Chunks per upsert request; 0: the server's `max_batch_size` (from `/api/v2/pre-flight-checks`), "
     "which also caps any larger value",
     {},
     0,
     1'000'000},
    {"timeout_ms",
     Kind::kMillis,
     "120000",
     "Time one request may take (a large batch on a busy server takes seconds); failed or timed-out "
     "requests are retried with backoff",
     {},
     100,
     3'600'000},
};

// JSON text for a request. Invalid UTF-8 (which a JSON string cannot carry) becomes U+FFFD rather
// than an exception; the parsers hand over valid UTF-8, so this is a last resort.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Non-throwing readers of Chroma's answers.
std::string str_of(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}
int64_t int_of(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return 0;
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}
const json& array_of(const json& obj, const char* key) {
  static const json kEmpty = json::array();
  if (!obj.is_object()) return kEmpty;
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

// A stable placeholder in [0, 1) for a docs record's one-dimensional vector (distinct values keep
// Chroma's graph over them well-shaped; nothing searches it).
double placeholder(std::string_view id) {
  const std::string h = hash_hex(id);
  return static_cast<double>(std::stoull(h.substr(0, 8), nullptr, 16)) / 4294967296.0;
}

// {"$and": [{"doc_id": D}, {"version": {OP: V}}]}: one document's chunks of (or not of) a version.
json where_version(std::string_view doc_id, const char* op, std::string_view version) {
  json clauses = json::array();
  clauses.push_back(json::object({{"doc_id", doc_id}}));
  clauses.push_back(json::object({{"version", json::object({{op, version}})}}));
  return json::object({{"$and", std::move(clauses)}});
}

enum class Space { kCosine, kL2, kIp };

class ChromaIndex final : public Index {
 public:
  ChromaIndex(ChromaSettings s, size_t dimension, std::string embedder)
      : s_(std::move(s)), dimension_(dimension), embedder_(std::move(embedder)) {
    std::random_device rd;
    token_prefix_ = std::to_string(rd()) + "-" + std::to_string(rd()) + "-";
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
  std::string db_path() const {
    return "/api/v2/tenants/" + config::percent_encode(s_.tenant) + "/databases/" +
           config::percent_encode(s_.database);
  }
  std::string op_path(const std::string& collection_id, std::string_view op) const {
    return db_path() + "/collections/" + collection_id + "/" + std::string(op);
  }
  std::string where() const { return "chroma collection '" + s_.collection + "' at " + s_.base_url; }

  // Sends and parses the JSON answer (non-2xx answers are the translated Status).
  Result<json> call(const std::string& method, const std::string& path, const json* body = nullptr);
  Status ensure_tenant_and_database();
  Result<json> get_or_create(const std::string& name, const json& metadata);
  Status check_chunks_collection(const json& coll);

  // The document's pointer record (its metadata), or nullopt.
  Result<std::optional<json>> pointer(std::string_view doc_id);
  Result<std::string> read_token();
  // Replaces the commit token and sets the document's pointer to doc.version.
  Status write_commit(const DocumentRecord& doc, std::string_view metadata_json);
  Status write_chunks(const DocumentRecord& doc, std::span<const ChunkRecord> chunks);
  // Removes the document's chunks of every version but `version`.
  Status delete_other_versions(const std::string& doc_id, const std::string& version);
  // The ids of the chunk records matching `where_clause`, page by page.
  Result<std::vector<std::string>> chunk_ids(const json& where_clause);
  double score_of(double distance) const;

  const ChromaSettings s_;
  const size_t dimension_;
  const std::string embedder_;
  std::unique_ptr<store::HttpClient> http_;
  std::string chunks_id_, docs_id_;  // the collections' UUIDs
  size_t batch_ = kFallbackBatch;
  bool base64_ = false;  // the server takes vectors as base64 little-endian float32
  Space space_ = Space::kCosine;
  std::string token_prefix_;  // this process's part of every commit token
  std::atomic<uint64_t> token_seq_{0};
};

Result<json> ChromaIndex::call(const std::string& method, const std::string& path, const json* body) {
  store::HttpRequest req;
  req.method = method;
  req.path = path;
  if (body != nullptr) req.body = dump(*body);
  SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send(req));
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) {
    return Status::invalid_argument("chroma at " + s_.base_url + ": " + method + " " + path +
                                    " answered something that is not JSON: " + resp.body.substr(0, 200) +
                                    " (is this a Chroma 1.x server?)");
  }
  return j;
}

Status ChromaIndex::ensure_tenant_and_database() {
  // GET first: a deployment may allow reading a tenant but not creating one.
  auto exists = [&](const std::string& path) -> Result<bool> {
    store::HttpRequest req;
    req.path = path;
    SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send_any(req));
    if (resp.status >= 200 && resp.status < 300) return true;
    if (resp.status == 404) return false;
    return store::http_status_error(http_->options(), s_.base_url, req, resp);
  };
  auto create = [&](const std::string& path, const std::string& name) -> Status {
    store::HttpRequest req;
    req.method = "POST";
    req.path = path;
    req.body = dump(json{{"name", name}});
    SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send_any(req));
    // 409: another process made it a moment ago.
    if ((resp.status >= 200 && resp.status < 300) || resp.status == 409) return Status::ok();
    return store::http_status_error(http_->options(), s_.base_url, req, resp);
  };
  SLUICE_ASSIGN_OR_RETURN(bool tenant, exists("/api/v2/tenants/" + config::percent_encode(s_.tenant)));
  if (!tenant) SLUICE_RETURN_IF_ERROR(create("/api/v2/tenants", s_.tenant));
  SLUICE_ASSIGN_OR_RETURN(bool database, exists(db_path()));
  if (!database) {
    SLUICE_RETURN_IF_ERROR(
        create("/api/v2/tenants/" + config::percent_encode(s_.tenant) + "/databases", s_.database));
  }
  return Status::ok();
}

Result<json> ChromaIndex::get_or_create(const std::string& name, const json& metadata) {
  const json body = {{"name", name},
                     {"get_or_create", true},
                     {"metadata", metadata},
                     {"configuration", json::object({{"hnsw", json::object({{"space", "cosine"}})}})}};
  store::HttpRequest req;
  req.method = "POST";
  req.path = db_path() + "/collections";
  req.body = dump(body);
  SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send_any(req));
  // 409: another process created it between this one's check and its insert; it exists now.
  if (resp.status == 409) {
    SLUICE_ASSIGN_OR_RETURN(store::HttpResponse again, http_->send_any(req));
    resp = std::move(again);
  }
  if (resp.status < 200 || resp.status >= 300) {
    return store::http_status_error(http_->options(), s_.base_url, req, resp)
        .with_context("opening chroma collection '" + name + "'");
  }
  json coll = json::parse(resp.body, nullptr, false);
  if (coll.is_discarded() || str_of(coll, "id").empty()) {
    return Status::invalid_argument("chroma at " + s_.base_url +
                                    " answered a collection without an id: " + resp.body.substr(0, 200));
  }
  return coll;
}

Status ChromaIndex::check_chunks_collection(const json& coll) {
  const json meta = coll.contains("metadata") ? coll["metadata"] : json();
  const std::string role = str_of(meta, "sluice_role");
  if (role.empty()) {
    return Status::invalid_argument(where() +
                                    " exists but was not made by sluice (its metadata has no sluice_role); "
                                    "name another collection");
  }
  if (role != "chunks") {
    return Status::invalid_argument(where() + " holds sluice's " + role +
                                    " records, not chunks: name the collection without its '" +
                                    std::string(kDocsSuffix) + "' suffix");
  }
  if (int_of(meta, "sluice_schema") != kSchemaVersion) {
    return Status::unsupported(where() + " has sluice schema " +
                               std::to_string(int_of(meta, "sluice_schema")) + "; this build reads " +
                               std::to_string(kSchemaVersion));
  }
  const std::string stored_emb = str_of(meta, "sluice_embedder");
  const int64_t stored_dim = int_of(meta, "sluice_dimension");
  if (stored_emb != embedder_ || stored_dim != static_cast<int64_t>(dimension_)) {
    return Status::invalid_argument(where() + " was built with embedder '" + stored_emb + "' (dimension " +
                                    std::to_string(stored_dim) + "); it cannot be opened with embedder '" +
                                    embedder_ + "' (dimension " + std::to_string(dimension_) +
                                    "): use the same embedder or another collection");
  }
  const json& config = coll.contains("configuration_json") ? coll["configuration_json"] : json();
  std::string space = config.is_object() && config.contains("hnsw") ? str_of(config["hnsw"], "space") : "";
  space_ = space == "l2" ? Space::kL2 : space == "ip" ? Space::kIp : Space::kCosine;
  return Status::ok();
}

Status ChromaIndex::init() {
  store::HttpOptions opts;
  opts.service = "chroma";
  opts.request_timeout = std::chrono::milliseconds(s_.timeout_ms);
  opts.credentials_hint = "set CHROMA_API_KEY (sent as x-chroma-token) to a token this server accepts";
  if (!s_.token.empty()) opts.headers.emplace_back("x-chroma-token", s_.token);
  SLUICE_ASSIGN_OR_RETURN(http_, store::HttpClient::open(s_.base_url, std::move(opts)));

  {
    store::HttpRequest req;
    req.path = "/api/v2/pre-flight-checks";
    SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send_any(req));
    json pre = resp.status == 200 ? json::parse(resp.body, nullptr, false) : json();
    if (resp.status == 200 && pre.is_object() && int_of(pre, "max_batch_size") > 0) {
      const size_t server_max = static_cast<size_t>(int_of(pre, "max_batch_size"));
      batch_ = s_.batch == 0 ? server_max : std::min(s_.batch, server_max);
      base64_ = pre.contains("supports_base64_encoding") && pre["supports_base64_encoding"].is_boolean() &&
                pre["supports_base64_encoding"].get<bool>();
    } else if (resp.status == 404) {
      batch_ = s_.batch == 0 ? kFallbackBatch : s_.batch;
      log::warn("index: the chroma server has no /api/v2/pre-flight-checks; assuming a max batch size",
                {{"url", s_.base_url}, {"batch", batch_}});
    } else {
      return store::http_status_error(http_->options(), s_.base_url, req, resp);
    }
  }
  SLUICE_RETURN_IF_ERROR(ensure_tenant_and_database());
  const json chunks_meta = {{"sluice_role", "chunks"},
                            {"sluice_schema", kSchemaVersion},
                            {"sluice_embedder", embedder_},
                            {"sluice_dimension", static_cast<int64_t>(dimension_)}};
  SLUICE_ASSIGN_OR_RETURN(json chunks, get_or_create(s_.collection, chunks_meta));
  SLUICE_RETURN_IF_ERROR(check_chunks_collection(chunks));
  chunks_id_ = str_of(chunks, "id");
  const json docs_meta = {
      {"sluice_role", "documents"}, {"sluice_schema", kSchemaVersion}, {"sluice_chunks", s_.collection}};
  SLUICE_ASSIGN_OR_RETURN(json docs, get_or_create(s_.collection + kDocsSuffix, docs_meta));
  if (str_of(docs.contains("metadata") ? docs["metadata"] : json(), "sluice_role") != "documents") {
    return Status::invalid_argument("chroma collection '" + s_.collection + kDocsSuffix + "' at " +
                                    s_.base_url +
                                    " exists but does not hold sluice's document records; name another "
                                    "collection");
  }
  docs_id_ = str_of(docs, "id");
  return Status::ok();
}

Result<std::optional<json>> ChromaIndex::pointer(std::string_view doc_id) {
  const json body = {{"ids", json::array({doc_id})}, {"include", json::array({"metadatas"})}};
  SLUICE_ASSIGN_OR_RETURN(json r, call("POST", op_path(docs_id_, "get"), &body));
  const json& metas = array_of(r, "metadatas");
  if (metas.empty() || !metas[0].is_object() || str_of(metas[0], "kind") != "document") {
    return std::optional<json>();
  }
  return std::optional<json>(metas[0]);
}

Result<std::string> ChromaIndex::read_token() {
  const json body = {{"ids", json::array({kCommitId})}, {"include", json::array({"metadatas"})}};
  SLUICE_ASSIGN_OR_RETURN(json r, call("POST", op_path(docs_id_, "get"), &body));
  const json& metas = array_of(r, "metadatas");
  return metas.empty() ? std::string() : str_of(metas[0], "token");
}

// One request, the token first: Chroma writes a request's records as one batch of its log, so the
// new token is visible no later than the pointer (what the search's check needs), and a
// replacement costs one write here rather than two (a write is tens of milliseconds; a read one).
Status ChromaIndex::write_commit(const DocumentRecord& doc, std::string_view metadata_json) {
  const std::string token = token_prefix_ + std::to_string(token_seq_.fetch_add(1));
  const json pointer = {{"kind", "document"},
                        {"version", doc.version},
                        {"source", doc.source},
                        {"pages", doc.pages},
                        {"metadata_json", metadata_json}};
  const json body = {
      {"ids", json::array({kCommitId, doc.doc_id})},
      {"embeddings", json::array({json::array({0.5}), json::array({placeholder(doc.doc_id)})})},
      {"metadatas", json::array({json::object({{"kind", "commit"}, {"token", token}}), pointer})}};
  return call("POST", op_path(docs_id_, "upsert"), &body).status();
}

Status ChromaIndex::write_chunks(const DocumentRecord& doc, std::span<const ChunkRecord> chunks) {
  static_assert(std::endian::native == std::endian::little, "Chroma's base64 vectors are little-endian");
  for (size_t at = 0; at < chunks.size(); at += batch_) {
    const size_t n = std::min(batch_, chunks.size() - at);
    json ids = json::array(), embeddings = json::array(), documents = json::array(), metas = json::array();
    for (const ChunkRecord& c : chunks.subspan(at, n)) {
      ids.push_back(c.chunk_id);
      if (base64_) {
        embeddings.push_back(base64_encode(std::string_view(reinterpret_cast<const char*>(c.vector.data()),
                                                            c.vector.size() * sizeof(float))));
      } else {
        embeddings.push_back(c.vector);
      }
      documents.push_back(c.text);
      metas.push_back({{"doc_id", doc.doc_id},
                       {"version", doc.version},
                       {"source", doc.source},
                       {"page", c.page},
                       {"heading", c.heading},
                       {"seq", c.seq}});
    }
    const json body = {{"ids", std::move(ids)},
                       {"embeddings", std::move(embeddings)},
                       {"documents", std::move(documents)},
                       {"metadatas", std::move(metas)}};
    Status st = call("POST", op_path(chunks_id_, "upsert"), &body).status();
    if (!st.is_ok()) {
      return st.with_context("upsert_document '" + doc.doc_id + "': chunks " + std::to_string(at) + ".." +
                             std::to_string(at + n - 1) + " of " + std::to_string(chunks.size()));
    }
  }
  return Status::ok();
}

Status ChromaIndex::delete_other_versions(const std::string& doc_id, const std::string& version) {
  const json body = {{"where", where_version(doc_id, "$ne", version)}};
  return call("POST", op_path(chunks_id_, "delete"), &body).status();
}

Result<std::vector<std::string>> ChromaIndex::chunk_ids(const json& where_clause) {
  std::vector<std::string> out;
  for (size_t offset = 0;; offset += kPageSize) {
    const json body = {
        {"where", where_clause}, {"include", json::array()}, {"limit", kPageSize}, {"offset", offset}};
    SLUICE_ASSIGN_OR_RETURN(json r, call("POST", op_path(chunks_id_, "get"), &body));
    const json& ids = array_of(r, "ids");
    for (const json& id : ids)
      if (id.is_string()) out.push_back(id.get<std::string>());
    if (ids.size() < kPageSize) break;
  }
  return out;
}

Status ChromaIndex::upsert_document(const DocumentRecord& doc, std::span<const ChunkRecord> chunks) {
  if (doc.doc_id.empty()) return Status::invalid_argument("upsert_document: empty doc_id");
  if (doc.doc_id == kCommitId) {
    return Status::invalid_argument("upsert_document: doc_id '" + doc.doc_id +
                                    "' is reserved by the chroma index");
  }
  std::string_view metadata = doc.metadata_json.empty() ? std::string_view("{}") : doc.metadata_json;
  if (!json::accept(metadata)) {
    return Status::invalid_argument("upsert_document: metadata_json of '" + doc.doc_id +
                                    "' is not valid JSON");
  }
  std::unordered_set<std::string_view> ids;
  for (const ChunkRecord& c : chunks) {
    if (c.chunk_id.empty())
      return Status::invalid_argument("upsert_document: a chunk of '" + doc.doc_id + "' has no id");
    if (c.vector.size() != dimension_) {
      return Status::invalid_argument("upsert_document: chunk '" + c.chunk_id +
                                      "' has a vector of dimension " + std::to_string(c.vector.size()) +
                                      ", the index has dimension " + std::to_string(dimension_));
    }
    if (!ids.insert(c.chunk_id).second) {
      return Status::invalid_argument("upsert_document: chunk id '" + c.chunk_id + "' appears twice in '" +
                                      doc.doc_id + "'");
    }
  }

  SLUICE_ASSIGN_OR_RETURN(std::optional<json> current, pointer(doc.doc_id));
  const bool same_version = current && str_of(*current, "version") == doc.version;
  const json this_version = where_version(doc.doc_id, "$eq", doc.version);
  std::vector<std::string> stored;  // this version's chunks already there (same version only)
  if (same_version) {
    SLUICE_ASSIGN_OR_RETURN(stored, chunk_ids(this_version));
    bool all_there = stored.size() == chunks.size();
    for (size_t i = 0; all_there && i < stored.size(); ++i) all_there = ids.contains(stored[i]);
    // Already there: only finish what a failed earlier attempt may have left (old versions).
    if (all_there) return delete_other_versions(doc.doc_id, doc.version);
  }

  SLUICE_RETURN_IF_ERROR(write_chunks(doc, chunks));
  if (same_version) {
    // The same version with other chunks (chunked differently): the pointer already names this
    // version, so the chunks that are not in the new set go now.
    json stale = json::array();
    for (const std::string& id : stored)
      if (!ids.contains(id)) stale.push_back(id);
    for (size_t at = 0; at < stale.size(); at += batch_) {
      json part = json::array();
      for (size_t i = at; i < std::min(stale.size(), at + batch_); ++i) part.push_back(stale[i]);
      const json body = {{"ids", std::move(part)}};
      SLUICE_RETURN_IF_ERROR(call("POST", op_path(chunks_id_, "delete"), &body).status());
    }
  }
  SLUICE_RETURN_IF_ERROR(write_commit(doc, metadata));
  return delete_other_versions(doc.doc_id, doc.version);
}

Result<std::optional<DocumentRecord>> ChromaIndex::get_document(std::string_view doc_id) {
  if (doc_id == kCommitId) return std::optional<DocumentRecord>();
  SLUICE_ASSIGN_OR_RETURN(std::optional<json> p, pointer(doc_id));
  if (!p) return std::optional<DocumentRecord>();
  DocumentRecord d;
  d.doc_id = std::string(doc_id);
  d.version = str_of(*p, "version");
  d.source = str_of(*p, "source");
  d.pages = static_cast<int>(int_of(*p, "pages"));
  d.metadata_json = str_of(*p, "metadata_json");
  if (d.metadata_json.empty()) d.metadata_json = "{}";
  return std::optional<DocumentRecord>(std::move(d));
}

Status ChromaIndex::delete_document(std::string_view doc_id) {
  if (doc_id.empty() || doc_id == kCommitId) return Status::ok();  // no such document
  // The pointer first: from then on searches drop the document's chunks, whatever is left of them.
  const json ptr = {{"ids", json::array({doc_id})}};
  SLUICE_RETURN_IF_ERROR(call("POST", op_path(docs_id_, "delete"), &ptr).status());
  const json chunks = {{"where", json::object({{"doc_id", doc_id}})}};
  return call("POST", op_path(chunks_id_, "delete"), &chunks).status();
}

Result<std::vector<DocumentRecord>> ChromaIndex::list_documents() {
  std::vector<DocumentRecord> out;
  for (size_t offset = 0;; offset += kPageSize) {
    const json body = {{"where", json::object({{"kind", "document"}})},
                       {"include", json::array({"metadatas"})},
                       {"limit", kPageSize},
                       {"offset", offset}};
    SLUICE_ASSIGN_OR_RETURN(json r, call("POST", op_path(docs_id_, "get"), &body));
    const json& ids = array_of(r, "ids");
    const json& metas = array_of(r, "metadatas");
    for (size_t i = 0; i < ids.size() && i < metas.size(); ++i) {
      if (!ids[i].is_string()) continue;
      DocumentRecord d;
      d.doc_id = ids[i].get<std::string>();
      d.version = str_of(metas[i], "version");
      d.source = str_of(metas[i], "source");
      d.pages = static_cast<int>(int_of(metas[i], "pages"));
      d.metadata_json = str_of(metas[i], "metadata_json");
      if (d.metadata_json.empty()) d.metadata_json = "{}";
      out.push_back(std::move(d));
    }
    if (ids.size() < kPageSize) break;
  }
  std::sort(out.begin(), out.end(),
            [](const DocumentRecord& a, const DocumentRecord& b) { return a.doc_id < b.doc_id; });
  return out;
}

Result<size_t> ChromaIndex::chunk_count(std::optional<std::string_view> doc_id) {
  if (!doc_id) {
    SLUICE_ASSIGN_OR_RETURN(json n, call("GET", op_path(chunks_id_, "count")));
    if (!n.is_number_integer()) {
      return Status::invalid_argument("chroma at " + s_.base_url +
                                      " answered a count that is not a number: " + dump(n).substr(0, 100));
    }
    return static_cast<size_t>(n.get<int64_t>());
  }
  SLUICE_ASSIGN_OR_RETURN(std::optional<json> p, pointer(*doc_id));
  if (!p) return size_t{0};
  const json this_version = where_version(*doc_id, "$eq", str_of(*p, "version"));
  SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> ids, chunk_ids(this_version));
  return ids.size();
}

double ChromaIndex::score_of(double distance) const {
  switch (space_) {
    case Space::kCosine:                     // distance = 1 - cosine similarity
    case Space::kIp: return 1.0 - distance;  // distance = 1 - dot product
    case Space::kL2: return 1.0 / (1.0 + distance);
  }
  return -distance;
}

Result<std::vector<SearchHit>> ChromaIndex::search(std::string_view query, std::span<const float> vector,
                                                   const SearchOptions& opts) {
  using Mode = SearchOptions::Mode;
  if (opts.mode == Mode::kKeyword) {
    return Status::unsupported(
        "search: the chroma index has no keyword search (Chroma 1.0 has no ranked full-text search over "
        "HTTP); use the vector or hybrid mode (both are vector search on chroma), or a local: index");
  }
  if (vector.empty()) return Status::invalid_argument("search: the chroma index needs a query vector");
  if (vector.size() != dimension_) {
    return Status::invalid_argument("search: query vector of dimension " + std::to_string(vector.size()) +
                                    ", the index has dimension " + std::to_string(dimension_));
  }
  std::vector<SearchHit> out;
  if (opts.k == 0) return out;
  // Deeper than k: diversity needs more candidates, and other versions' chunks are filtered out.
  const size_t depth = std::max<size_t>(opts.k * 4, 20);
  const json query_body = {
      {"query_embeddings", json::array({std::vector<float>(vector.begin(), vector.end())})},
      {"n_results", depth},
      {"include", json::array({"documents", "metadatas", "distances"})}};
  for (int attempt = 1;; ++attempt) {
    out.clear();
    SLUICE_ASSIGN_OR_RETURN(std::string token_before, read_token());
    SLUICE_ASSIGN_OR_RETURN(json r, call("POST", op_path(chunks_id_, "query"), &query_body));
    const json& ids = array_of(r, "ids");
    const json& docs = array_of(r, "documents");
    const json& metas = array_of(r, "metadatas");
    const json& dists = array_of(r, "distances");
    if (ids.empty()) return out;
    const json& id0 = ids[0];
    const json& doc0 = docs.empty() ? json::array() : docs[0];
    const json& meta0 = metas.empty() ? json::array() : metas[0];
    const json& dist0 = dists.empty() ? json::array() : dists[0];
    std::vector<std::pair<SearchHit, std::string>> candidates;  // with each chunk's version
    std::set<std::string> doc_ids;
    for (size_t i = 0; i < id0.size() && i < meta0.size() && i < dist0.size(); ++i) {
      if (!id0[i].is_string() || !dist0[i].is_number()) continue;
      SearchHit h;
      h.chunk_id = id0[i].get<std::string>();
      h.score = score_of(dist0[i].get<double>());
      if (space_ != Space::kL2 && h.score < kMinVectorSimilarity) break;  // ranked: the rest are worse
      h.doc_id = str_of(meta0[i], "doc_id");
      h.source = str_of(meta0[i], "source");
      h.page = static_cast<int>(int_of(meta0[i], "page"));
      h.heading = str_of(meta0[i], "heading");
      if (i < doc0.size() && doc0[i].is_string()) h.text = doc0[i].get<std::string>();
      doc_ids.insert(h.doc_id);
      candidates.emplace_back(std::move(h), str_of(meta0[i], "version"));
    }
    std::unordered_map<std::string, std::string> current;  // doc_id -> the version its pointer names
    if (!doc_ids.empty()) {
      const json body = {{"ids", doc_ids}, {"include", json::array({"metadatas"})}};
      SLUICE_ASSIGN_OR_RETURN(json p, call("POST", op_path(docs_id_, "get"), &body));
      const json& pids = array_of(p, "ids");
      const json& pmetas = array_of(p, "metadatas");
      for (size_t i = 0; i < pids.size() && i < pmetas.size(); ++i) {
        if (pids[i].is_string() && str_of(pmetas[i], "kind") == "document")
          current[pids[i].get<std::string>()] = str_of(pmetas[i], "version");
      }
    }
    SLUICE_ASSIGN_OR_RETURN(std::string token_after, read_token());
    for (auto& [h, version] : candidates) {
      auto it = current.find(h.doc_id);
      if (it != current.end() && it->second == version) out.push_back(std::move(h));
    }
    if (token_before == token_after) break;
    if (attempt >= kSearchAttempts) {
      // Still one version per document; only a document replaced during every attempt may show
      // fewer of its new chunks than a quiet moment would.
      log::info("index: chroma search overlapped document replacements on every attempt",
                {{"collection", s_.collection}, {"attempts", attempt}});
      break;
    }
    thread_local std::mt19937 rng(std::random_device{}());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(1, kSearchRetryPauseMs * attempt)(rng)));
  }
  diversify_hits(out, opts.k);
  return out;
}

}  // namespace

std::span<const config::Property> chroma_properties() {
  return kChromaProperties;
}

Result<ChromaSettings> parse_chroma_uri(std::string_view uri) {
  const bool tls_scheme = uri.starts_with("chromas://");
  SLUICE_ASSIGN_OR_RETURN(config::ServerUri u,
                          config::split_server_uri(uri, tls_scheme ? "chromas" : "chroma", "chroma index"));
  const std::string shown(uri);
  if (u.user) {
    return Status::invalid_argument("chroma index URI '" + shown +
                                    "': no user or token in the URI; set CHROMA_API_KEY instead");
  }
  if (u.host.empty()) return Status::invalid_argument("chroma index URI '" + shown + "' names no host");
  std::string_view path = u.path.value_or(std::string_view());
  while (path.ends_with('/')) path.remove_suffix(1);
  if (path.empty()) {
    return Status::invalid_argument("chroma index URI '" + shown +
                                    "' names no collection (chroma://HOST:PORT/COLLECTION)");
  }
  if (path.find('/') != std::string_view::npos) {
    return Status::invalid_argument("chroma index URI '" + shown + "': collection '" + std::string(path) +
                                    "' has a '/' (tenant and database go in ?tenant=&database=)");
  }
  ChromaSettings s;
  s.collection = std::string(path);
  const auto table = chroma_properties();
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::parse_query(u.query, table, "chroma index"));
  SLUICE_ASSIGN_OR_RETURN(s.tenant, config::get_string(v, table, "tenant"));
  SLUICE_ASSIGN_OR_RETURN(s.database, config::get_string(v, table, "database"));
  if (s.tenant.empty() || s.database.empty()) {
    return Status::invalid_argument("chroma index URI '" + shown + "': tenant and database may not be empty");
  }
  SLUICE_ASSIGN_OR_RETURN(bool tls, config::get_bool(v, table, "tls"));
  SLUICE_ASSIGN_OR_RETURN(int64_t batch, config::get_int(v, table, "batch"));
  s.batch = static_cast<size_t>(batch);
  SLUICE_ASSIGN_OR_RETURN(s.timeout_ms, config::get_int(v, table, "timeout_ms"));
  std::string host(u.host);
  if (host.find(':') != std::string::npos && !host.starts_with('[')) host = "[" + host + "]";  // IPv6
  s.base_url = std::string(tls || tls_scheme ? "https://" : "http://") + host + ":" +
               std::to_string(u.port.value_or(kDefaultPort));
  for (const char* var : {"CHROMA_API_KEY", "CHROMA_TOKEN"}) {
    const char* t = std::getenv(var);
    if (t != nullptr && *t != '\0') {
      s.token = t;
      break;
    }
  }
  return s;
}

Result<std::unique_ptr<Index>> open_chroma_index(std::string_view uri, size_t dimension,
                                                 std::string_view embedder_name) {
  if (dimension == 0) return Status::invalid_argument("index: dimension must be positive");
  if (embedder_name.empty()) return Status::invalid_argument("index: embedder name is empty");
  SLUICE_ASSIGN_OR_RETURN(ChromaSettings s, parse_chroma_uri(uri));
  auto index = std::make_unique<ChromaIndex>(std::move(s), dimension, std::string(embedder_name));
  SLUICE_RETURN_IF_ERROR(index->init());
  return std::unique_ptr<Index>(std::move(index));
}

}  // namespace sluice::index
