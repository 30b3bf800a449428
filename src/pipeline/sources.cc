#include "pipeline/sources.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "config/property.h"
#include "pipeline/scanner.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

constexpr std::string_view kS3Scheme = "s3://";

// S3's rules (and OBS's): 3-63 characters of lower-case letters, digits, '.' and '-', starting
// and ending with a letter or digit.
bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : b) {
    if (!alnum(c) && c != '.' && c != '-') return false;
  }
  return alnum(b.front()) && alnum(b.back());
}

std::string query_of(const S3Config& s3) {
  std::string q;
  auto add = [&](std::string_view k, const std::string& v) {
    if (v.empty()) return;
    q += q.empty() ? "?" : "&";
    q += k;
    q += "=";
    q += v;
  };
  add("endpoint", s3.endpoint);
  add("region", s3.region);
  return q;
}

}  // namespace

bool is_bucket_uri(std::string_view uri) {
  return uri.substr(0, kS3Scheme.size()) == kS3Scheme;
}

Result<BucketUri> parse_bucket_uri(std::string_view uri) {
  if (!is_bucket_uri(uri)) return Status::invalid_argument("'" + std::string(uri) + "' is not an s3:// URI");
  std::string_view rest = uri.substr(kS3Scheme.size());
  if (rest.find('?') != std::string_view::npos) {
    return Status::invalid_argument("source '" + std::string(uri) +
                                    "' has a query; give the endpoint and region with --s3-endpoint and "
                                    "--s3-region (or OBS_SERVER / OBS_REGION), so the workers use them too");
  }
  BucketUri out;
  size_t slash = rest.find('/');
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.prefix = std::string(rest.substr(slash + 1));
  if (!valid_bucket(out.bucket)) {
    return Status::invalid_argument(
        "'" + out.bucket + "' in '" + std::string(uri) +
        "' is not a bucket name (3-63 of a-z, 0-9, '.', '-'; s3://BUCKET/PREFIX)");
  }
  return out;
}

std::string bucket_store_uri(std::string_view bucket, const S3Config& s3) {
  return std::string(kS3Scheme) + std::string(bucket) + query_of(s3);
}

std::string with_s3_config(std::string_view store_uri, const S3Config& s3) {
  if (!is_bucket_uri(store_uri)) return std::string(store_uri);
  std::string out(store_uri);
  const size_t q = out.find('?');
  const std::string_view query =
      q == std::string::npos ? std::string_view{} : std::string_view(out).substr(q + 1);
  auto has = [&](std::string_view k) {
    for (const auto& p : config::split_query(query)) {
      if (p.name == k) return true;
    }
    return false;
  };
  std::string extra;
  if (!s3.endpoint.empty() && !has("endpoint")) extra += "endpoint=" + s3.endpoint;
  if (!s3.region.empty() && !has("region")) extra += (extra.empty() ? "" : "&") + ("region=" + s3.region);
  if (extra.empty()) return out;
  return out + (q == std::string::npos ? "?" : "&") + extra;
}

Status list_bucket(store::BlobStore& bucket, const BucketUri& uri, const BucketListOptions& opts,
                   const std::function<bool(const ListedObject&)>& on_object, bool* truncated) {
  if (truncated) *truncated = false;
  uint64_t listed = 0;
  const PathFilter filter(opts.include, opts.exclude);
  std::string token;
  do {
    SLUICE_ASSIGN_OR_RETURN(store::ListPage page, bucket.list(uri.prefix, token, opts.page_size));
    for (auto& o : page.objects) {
      if (o.key.empty() || o.key.back() == '/') continue;  // a "folder" marker
      std::string relative = o.key.substr(std::min(uri.prefix.size(), o.key.size()));
      while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
      if (relative.empty()) relative = o.key;
      if (!filter.selects_key(relative)) continue;
      if (opts.max_files != 0 && listed >= opts.max_files) {
        if (truncated) *truncated = true;
        return {};
      }
      ListedObject obj;
      obj.source = {o.uri, uri.bucket, o.key, o.version};
      obj.size = o.size;
      obj.last_modified = o.last_modified;
      obj.relative = std::move(relative);
      ++listed;
      if (!on_object(obj)) return {};
    }
    token = page.next;
  } while (!token.empty());
  return {};
}

LocalCopy& LocalCopy::operator=(LocalCopy&& o) noexcept {
  if (this != &o) {
    if (remove_) ::unlink(path_.c_str());
    path_ = std::move(o.path_);
    remove_ = o.remove_;
    o.remove_ = false;
  }
  return *this;
}

LocalCopy::~LocalCopy() {
  if (remove_) ::unlink(path_.c_str());
}

Result<store::BlobStore*> SourceFetcher::bucket(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = buckets_.find(name); it != buckets_.end()) return it->second.get();
  SLUICE_ASSIGN_OR_RETURN(auto opened, store::open_blob_store(bucket_store_uri(name, s3_)));
  store::BlobStore* out = opened.get();
  buckets_.emplace(std::string(name), std::move(opened));
  return out;
}

Result<LocalCopy> SourceFetcher::fetch(const SourceRef& source) {
  if (!is_bucket_uri(source.uri)) {
    SLUICE_ASSIGN_OR_RETURN(std::string path, local_path_of(source));
    return LocalCopy(std::move(path), false);
  }
  SLUICE_ASSIGN_OR_RETURN(BucketUri where, parse_bucket_uri(source.uri));
  SLUICE_ASSIGN_OR_RETURN(store::BlobStore * b, bucket(where.bucket));
  std::error_code ec;
  std::filesystem::create_directories(tmp_dir_, ec);
  if (ec) {
    return Status::resource_limit("cannot create the download directory " + tmp_dir_ + ": " + ec.message());
  }
  // The object's own name ends the temp name: parsers detect formats by extension too.
  std::string name = where.prefix.substr(where.prefix.find_last_of('/') + 1);
  if (name.size() > 100) name = name.substr(name.size() - 100);
  std::string path = tmp_dir_ + "/" + random_id().substr(0, 16) + "-" + name;
  SLUICE_RETURN_IF_ERROR(b->fetch(source.uri, path).status());
  return LocalCopy(std::move(path), true);
}

}  // namespace sluice::pipeline
