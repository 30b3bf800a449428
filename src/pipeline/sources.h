// Sources: where documents come from. A source is a local path (a file or a folder, walked by
// the scanner) or an object-store prefix (`s3://bucket/prefix`, listed page by page). `sluice
// ingest` and `sluice generate` list them into tasks; the parse stage asks a SourceFetcher for a
// local copy of a task's document (the file itself, or a download into a temp file that the
// returned LocalCopy removes).
//
// S3 endpoints, regions and credentials are configuration, not part of a source URI: the
// endpoint and region come from the s3_endpoint / s3_region settings (or the store's own
// environment defaults, see store/blob_store.h), so the workers that fetch the objects reach the
// same endpoint the generator listed.
//
// Ownership: a SourceFetcher owns the bucket stores it opened; they live as long as it does.
// Thread-safety: list_bucket() is a function of what it lists; SourceFetcher's methods may be
// called from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "pipeline/envelope.h"
#include "store/blob_store.h"

namespace sluice::pipeline {

// s3://bucket[/prefix], parsed. A query, an empty bucket or a bad bucket name is kBadInput.
struct BucketUri {
  std::string bucket;
  std::string prefix;  // may be empty
};
[[nodiscard]] bool is_bucket_uri(std::string_view uri);
[[nodiscard]] Result<BucketUri> parse_bucket_uri(std::string_view uri);

// Where an S3 client connects: empty fields leave the store's environment defaults in place.
struct S3Config {
  std::string endpoint;  // e.g. http://127.0.0.1:4568 or https://obs.cn-north-4.myhuaweicloud.com
  std::string region;
};
// "s3://bucket?endpoint=...&region=..." for open_blob_store().
std::string bucket_store_uri(std::string_view bucket, const S3Config& s3);
// A store URI as given (e.g. --store s3://b/p), with the endpoint and region added where it has none.
std::string with_s3_config(std::string_view store_uri, const S3Config& s3);

// One object of a bucket listing.
struct ListedObject {
  SourceRef source;  // uri s3://bucket/key, bucket, key, version (the ETag)
  uint64_t size = 0;
  std::string last_modified;
  std::string relative;  // the key below the listed prefix
};

struct BucketListOptions {
  std::vector<std::string> include, exclude;  // globs on the key below the prefix and on its name
  uint64_t max_files = 0;                     // 0: no limit
  size_t page_size = 1000;
};

// Lists the objects under uri.prefix in key order, page by page, calling on_object for each one
// that passes the globs (keys ending in '/', folder markers, are left out). Stops after max_files
// (sets *truncated when more were there) or when on_object returns false.
[[nodiscard]] Status list_bucket(store::BlobStore& bucket, const BucketUri& uri,
                                 const BucketListOptions& opts,
                                 const std::function<bool(const ListedObject&)>& on_object,
                                 bool* truncated = nullptr);

// A document's bytes on the local disk for as long as this lives.
class LocalCopy {
 public:
  LocalCopy() = default;
  LocalCopy(std::string path, bool remove_after) : path_(std::move(path)), remove_(remove_after) {}
  LocalCopy(LocalCopy&& o) noexcept : path_(std::move(o.path_)), remove_(o.remove_) { o.remove_ = false; }
  LocalCopy& operator=(LocalCopy&& o) noexcept;
  LocalCopy(const LocalCopy&) = delete;
  LocalCopy& operator=(const LocalCopy&) = delete;
  ~LocalCopy();
  const std::string& path() const { return path_; }
  bool downloaded() const { return remove_; }

 private:
  std::string path_;
  bool remove_ = false;
};

class SourceFetcher {
 public:
  // Downloads go to temp files in tmp_dir (made when missing).
  SourceFetcher(S3Config s3, std::string tmp_dir) : s3_(std::move(s3)), tmp_dir_(std::move(tmp_dir)) {}

  // file:///abs/path: the file itself. s3://bucket/key: a fresh download into tmp_dir (a missing
  // object is kNotFound; other errors as the store gives them). Other schemes: kUnsupported.
  [[nodiscard]] Result<LocalCopy> fetch(const SourceRef& source);
  // The store of a bucket, opened on first use and kept.
  [[nodiscard]] Result<store::BlobStore*> bucket(std::string_view name);
  const S3Config& s3() const { return s3_; }

 private:
  const S3Config s3_;
  const std::string tmp_dir_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<store::BlobStore>, std::less<>> buckets_;  // guarded by mu_
};

}  // namespace sluice::pipeline
