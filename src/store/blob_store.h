// Blob stores keep payloads too large for a message (the claim-check pattern), the files uploaded
// through the HTTP API, and the objects a task generator scans and a worker fetches and writes
// back. A message then carries the blob's URI and hash instead of the bytes. One interface:
// `file:DIR` (local disk) and `s3://bucket/prefix` (AWS S3, Huawei OBS, MinIO; src/store/s3/).
//
// Blobs are immutable: put() writes under a key chosen by the caller (the pipeline uses
// "<stage>/<doc_id>-<version>"), atomically (file: temp file + rename, fsync; s3: one PUT or a
// completed multipart upload), so a reader never sees a partial blob and a crash leaves either the
// old state or the whole new blob.
// Thread-safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::store {

struct BlobRef {
  std::string uri;   // e.g. "file:/abs/dir/parsed/ab12-cd34", "s3://bucket/prefix/parsed/ab12-cd34"
  std::string hash;  // XXH3-128 of the bytes, 32 hex digits (base/hash.h)
  uint64_t size = 0;
};

// One object as a listing or stat() shows it.
struct ObjectInfo {
  std::string key;  // relative to the store's root (file: DIR; s3: the URI's prefix; an
                    // s3 object stat()ed outside the prefix: its full key)
  std::string uri;  // what get(), fetch(), stat() and remove() take
  uint64_t size = 0;
  std::string version;        // changes whenever the bytes do: S3's ETag without quotes; file:
                              // "<mtime ns>-<size>"
  std::string last_modified;  // RFC 3339 UTC, e.g. "2026-12-06T22:30:00Z"
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // in key order
  std::string next;                 // token for the next page; empty when this was the last
};

// A blob being written piece by piece (an upload streamed from the network); destroying an
// uncommitted writer removes what it wrote. commit() returns once the blob is durable.
// Thread-safety: one thread at a time.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  [[nodiscard]] virtual Status append(std::string_view bytes) = 0;
  // Makes the blob durable and visible; the writer is done afterwards.
  [[nodiscard]] virtual Result<BlobRef> commit() = 0;
  virtual uint64_t size() const = 0;  // bytes appended so far
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores bytes under key (letters, digits, '-', '_', '.', '/'; no "..", no leading '/').
  // A bad key is kBadInput; a full disk kResourceLimit; other I/O errors kRetriable.
  [[nodiscard]] virtual Result<BlobRef> put(std::string_view key, std::string_view bytes) = 0;
  // A writer for a blob under key (same rules and errors as put()). kReplace: like put(), nothing
  // is visible under the key before commit(). kNewKey: for a key nobody knows yet (an upload's
  // random name, handed out only after commit): written in place, cheaper; an existing key is
  // kAlreadyExists (s3: checked with a HEAD at open, since S3-compatible servers differ on
  // conditional writes). S3 writers keep at most one part (8 MiB) in memory.
  enum class NewBlob { kReplace, kNewKey };
  [[nodiscard]] virtual Result<std::unique_ptr<BlobWriter>> open_writer(std::string_view key,
                                                                        NewBlob mode) = 0;
  // The blob's bytes. A missing blob is kNotFound (class kRetriable: it may be written later or
  // have been cleaned up after its consumer finished; the caller decides). An s3 store takes the
  // URI of any object in its bucket; another bucket or scheme is kBadInput. When expected_hash is
  // not empty and the bytes do not match it, kCorruption (class kFatal) naming the blob.
  [[nodiscard]] virtual Result<std::string> get(std::string_view uri,
                                                std::string_view expected_hash = {}) = 0;
  // Streams the blob into the file at path (written to a temp file beside it, renamed over path
  // when whole; nothing is left at path on failure), hashing as it goes; errors as get(). Memory
  // stays bounded whatever the blob's size.
  [[nodiscard]] virtual Result<BlobRef> fetch(std::string_view uri, const std::string& path,
                                              std::string_view expected_hash = {}) = 0;
  // Streams the file at path into the store under key (same rules as put(); S3 uses a multipart
  // upload above its part size). A missing or unreadable file is kBadInput naming it.
  [[nodiscard]] virtual Result<BlobRef> put_file(std::string_view key, const std::string& path) = 0;
  // The object's size, version and time without its bytes; a missing one is kNotFound (kRetriable).
  [[nodiscard]] virtual Result<ObjectInfo> stat(std::string_view uri) = 0;
  // Objects whose key (relative to the store's root) starts with key_prefix, in key order, at
  // most max_keys (1..1000, else kBadInput) per page, continuing from `token` (empty for the first
  // page; otherwise a page's `next`, opaque: file: the last key returned, s3: S3's continuation
  // token). Blobs being written (file: ".sluice-tmp-*" files; s3: multipart uploads) are not listed.
  [[nodiscard]] virtual Result<ListPage> list(std::string_view key_prefix, std::string_view token,
                                              size_t max_keys) = 0;
  // The URI of the blob stored under key (checked as put() checks it).
  [[nodiscard]] virtual Result<std::string> uri_of(std::string_view key) const = 0;
  // Removes a blob; removing a missing blob is OK (cleanup is idempotent).
  [[nodiscard]] virtual Status remove(std::string_view uri) = 0;
  // The URI this store was opened with, e.g. "file:/abs/dir".
  virtual std::string uri() const = 0;
};

// The key rules put() states, shared by every store: kBadInput naming the key and the rule broken.
[[nodiscard]] Status check_blob_key(std::string_view key);

// "file:DIR" (DIR made when missing; relative paths are made absolute) or
// "s3://bucket[/prefix][?endpoint=URL&region=R&path_style=1&retries=N]": endpoint, region and
// credentials default from the environment (AWS_ENDPOINT_URL / OBS_SERVER, AWS_REGION / OBS_REGION,
// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN] / OBS_ACCESS_KEY + OBS_SECRET_KEY).
// Other schemes: kUnsupported naming what is accepted.
[[nodiscard]] Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view uri);

}  // namespace sluice::store
