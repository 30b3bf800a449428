// The `s3://bucket[/prefix]` blob store: S3's REST API (AWS S3, Huawei OBS, MinIO, s3rver) over
// libcurl, signed with SigV4 (sigv4.h). A blob is the object "<prefix>/<key>" in the bucket; its URI
// is "s3://bucket/<prefix>/<key>".
//
// The store owns a small pool of curl easy handles (keep-alive connections reused across calls) and
// its immutable configuration; every method is safe from several threads at once. Writers upload
// in parts of 8 MiB (multipart upload) and keep at most one part in memory; fetch() streams to disk.
// Transient failures (5xx, 429, SlowDown, transport errors) are retried with exponential backoff
// and jitter; every error says which operation, object and endpoint it was about.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/blob_store.h"

namespace sluice::store::s3 {

// Opens the store; see open_blob_store() in blob_store.h for the URI and the environment it reads.
[[nodiscard]] Result<std::unique_ptr<BlobStore>> open_s3_store(std::string_view uri);

// What one request came to, before it becomes a Status.
struct Outcome {
  int curl_code = 0;       // CURLcode; 0 when an HTTP answer came back
  std::string curl_error;  // curl's error buffer
  long http_status = 0;
  std::string s3_code;     // <Error><Code> of the body, e.g. "NoSuchKey"
  std::string s3_message;  // <Error><Message>
};

// Whether a request with this outcome is worth sending again (5xx, 429, throttling codes,
// transport errors other than a bad endpoint).
bool retriable(const Outcome& o);

// The one place S3 and curl errors become sluice errors. op is e.g. "get", object "s3://b/k".
[[nodiscard]] Status translate_error(std::string_view op, std::string_view object, std::string_view bucket,
                                     std::string_view endpoint, const Outcome& o);

}  // namespace sluice::store::s3
