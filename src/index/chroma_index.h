// The `chroma` index: a Chroma server (1.0.x, its HTTP v2 API) holds the chunks, their vectors and
// the document records; sluice talks to it through the shared HttpClient (store/http_client.h:
// pooled connections, retries with backoff on connection errors, 429 and 5xx).
//
// URI: chroma://HOST[:PORT]/COLLECTION[?tenant=T&database=D&tls=true&batch=N&timeout_ms=MS]
// (port 8000 by default; chromas:// is https). Tenant and database default to Chroma's
// `default_tenant` / `default_database`; they and both collections are created when missing. An API
// token comes from CHROMA_API_KEY (or CHROMA_TOKEN) and is sent as `x-chroma-token`.
//
// What is stored where (docs/chroma.md has the whole story):
// - collection COLLECTION: one record per chunk, id = chunk_id, the vector, the text as the record's
//   document, metadata {doc_id, version, source, page, heading, seq}. Its own metadata names the
//   embedder and dimension (sluice_embedder, sluice_dimension); opening it with another embedder or
//   dimension is kBadInput naming both. Space: cosine, so score = 1 - distance (cosine similarity,
//   the local index's vector score).
// - collection COLLECTION__docs: one record per document, id = doc_id, metadata {kind: document,
//   version, source, pages, metadata_json}: the document's *current version* pointer. One more
//   record there, id `__sluice_commit`, holds a token that every pointer change replaces first.
//   Its vectors are a 1-dimensional placeholder (Chroma requires one per record).
//
// Replacement without transactions. upsert_document(doc v2):
//   1. writes v2's chunks (new ids: chunk_id hashes the version), in batches of at most the
//      server's max_batch_size (/api/v2/pre-flight-checks); readers ignore them, the pointer says v1;
//   2. in one upsert of the docs collection, replaces the commit token with a fresh one and sets
//      the pointer to v2 (token first; Chroma writes one request's records as one log batch, so
//      the token is visible no later than the pointer);
//   3. deletes the document's chunks whose version is not v2 (`where` doc_id, version $ne v2).
// A search reads the commit token (T0), queries the chunks, reads the pointers of the documents it
// found, reads the token again (T1), and keeps a chunk only if its version is its document's
// pointer: two versions of one document can never both be returned, and a document without a
// pointer (deleted, or a first write in flight) returns nothing. If T0 != T1 some pointer moved
// while the search ran and the query may have run while that version's chunks were still being
// written; the search is tried again after a short pause (kSearchAttempts in all, then the
// filtered answer stands: still one version per document).
// When T0 == T1, every version a pointer names had all its chunks written before the token was
// set (step 1 before step 2), hence before T0 was read and before the query ran: a complete,
// single version of every document. A crash between the steps leaves either unreferenced chunks
// of the new version (invisible; the next upsert or delete of the document removes them) or
// old chunks no pointer names (invisible; removed by the next write of the document, and by the
// idempotent repeat the retry makes).
// Writers of one document are assumed one at a time (the pipeline keys the index stage by doc_id).
//
// Search modes: vector and hybrid both run Chroma's vector query (Chroma 1.0 has no ranked keyword
// search over HTTP, only a `$contains` filter); keyword mode is kUnsupported with a message saying
// so. Hits come out as the local index's (search_hit_json), at most two per document unless fewer
// documents match.
//
// chunk_count(doc) counts the current version's chunks; chunk_count() is the collection's record
// count (chunks of a replacement in flight or of a crashed write included).
//
// Ownership: ChromaIndex owns its HttpClient. Thread-safety: every method may be called from
// several threads at once (the collection ids are fixed at open; HttpClient is thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/property.h"
#include "index/index.h"

namespace sluice::index {

// The URI's query settings (docs/CONFIGURATION.md's "Index chroma://" table).
std::span<const config::Property> chroma_properties();

struct ChromaSettings {
  std::string base_url;  // http(s)://host:port
  std::string collection;
  std::string tenant = "default_tenant";
  std::string database = "default_database";
  size_t batch = 0;  // records per upsert request; 0: the server's max_batch_size
  int64_t timeout_ms = 120000;
  std::string token;  // from the environment; empty: none sent
};

// Parses chroma://... or chromas://...; kBadInput naming what is wrong (no collection, bad port,
// unknown setting, user info in the URI).
[[nodiscard]] Result<ChromaSettings> parse_chroma_uri(std::string_view uri);

// Opens (creating what is missing) the collection the URI names. kRetriable when the server does
// not answer (the message names the URL), kBadInput when it refuses a name or the collection was
// built with another embedder or dimension.
[[nodiscard]] Result<std::unique_ptr<Index>> open_chroma_index(std::string_view uri, size_t dimension,
                                                               std::string_view embedder_name);

}  // namespace sluice::index
