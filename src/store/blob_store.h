// Blob stores keep payloads too large for a message (the claim-check pattern) and, later, the
// files uploaded through the HTTP API. A message then carries the blob's URI and hash instead of
// the bytes. One interface; `file:DIR` (local disk) now, `s3://bucket/prefix` later.
//
// Blobs are immutable: put() writes under a key chosen by the caller (the pipeline uses
// "<stage>/<doc_id>-<version>"), atomically (temp file + rename, fsync), so a reader never sees a
// partial blob and a crash leaves either the old state or the whole new blob.
// Thread-safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice::store {

struct BlobRef {
  std::string uri;   // e.g. "file:/abs/dir/parsed/ab12-cd34"; what get() and remove() take
  std::string hash;  // XXH3-128 of the bytes, 32 hex digits (base/hash.h)
  uint64_t size = 0;
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
  // kAlreadyExists.
  enum class NewBlob { kReplace, kNewKey };
  [[nodiscard]] virtual Result<std::unique_ptr<BlobWriter>> open_writer(std::string_view key,
                                                                        NewBlob mode) = 0;
  // The blob's bytes. A missing blob is kNotFound (class kRetriable: it may be written later or
  // have been cleaned up after its consumer finished; the caller decides). When expected_hash is
  // not empty and the bytes do not match it, kCorruption (class kFatal) naming the blob.
  [[nodiscard]] virtual Result<std::string> get(std::string_view uri,
                                                std::string_view expected_hash = {}) = 0;
  // Removes a blob; removing a missing blob is OK (cleanup is idempotent).
  [[nodiscard]] virtual Status remove(std::string_view uri) = 0;
  // The URI this store was opened with, e.g. "file:/abs/dir".
  virtual std::string uri() const = 0;
};

// "file:DIR" (DIR made when missing; relative paths are made absolute). Other schemes:
// kUnsupported naming what is accepted.
[[nodiscard]] Result<std::unique_ptr<BlobStore>> open_blob_store(std::string_view uri);

}  // namespace sluice::store
