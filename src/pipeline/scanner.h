// The folder scanner behind `sluice ingest PATH...`: walks files and directories, applies include
// and exclude globs and a file limit, and reports what it cannot read instead of stopping.
//
// What a user can rely on:
// - Paths are visited in a stable order (directory entries sorted by name), so --max-files picks
//   the same files each run.
// - Globs (fnmatch(3) with FNM_PATHNAME off, so `*` crosses '/') are matched against the path
//   relative to the PATH argument it was found under, and also against the bare file name:
//   `--include '*.pdf'` matches `a/b/c.pdf`. With no include, every file is included; an exclude
//   wins over an include. A directory matching an exclude is not entered (e.g. `--exclude .git`).
// - Symbolic links are followed; a link that leads back into a directory already on the current
//   walk (a loop) is reported as a problem and not entered; a file reached twice through links is
//   listed once (by device and inode).
// - Unreadable files and directories, dangling links, sockets/FIFOs/devices and paths that do not
//   exist are reported as problems with a reason; the walk goes on.
// Thread-safety: scan() is a pure function of the file system it reads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::pipeline {

// The include/exclude decision, shared by the folder scanner and bucket listings (sources.h) so a
// glob means the same on a folder and on a bucket prefix. A glob matches the relative path or its
// last component; a trailing '/' ("node_modules/") is dropped, as it names a directory.
class PathFilter {
 public:
  PathFilter(const std::vector<std::string>& include, const std::vector<std::string>& exclude);
  // An exclude matches the path (a file or a directory) or its name.
  bool excluded(std::string_view relative) const;
  // A file: no include given or one matches, and no exclude does.
  bool selects_file(std::string_view relative) const;
  // An object key below a prefix: selects_file, and no "folder" above it (a prefix ending at a
  // '/') is excluded, as the scanner would not have entered it.
  bool selects_key(std::string_view relative) const;

 private:
  static bool matches(const std::vector<std::string>& globs, std::string_view relative);
  std::vector<std::string> include_, exclude_;
};

struct ScanOptions {
  std::vector<std::string> include;  // globs; empty: every file
  std::vector<std::string> exclude;  // globs
  uint64_t max_files = 0;            // 0: no limit; past it the walk stops (reported in ScanResult)
};

struct ScannedFile {
  std::string path;      // absolute, lexically normal (no "." or ".."), links not resolved
  std::string relative;  // relative to the PATH argument (the file name when PATH is a file)
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
};

struct ScanProblem {
  std::string path;
  Status error;  // kBadInput for what the user can fix (missing path, loop, unreadable, special file)
};

struct ScanResult {
  std::vector<ScannedFile> files;
  std::vector<ScanProblem> problems;
  bool truncated = false;  // max_files reached; more files were there
};

// Walks paths in order. on_file (optional) is called for every file as it is found, so a caller can
// start work before the walk ends; files are also collected in the result.
[[nodiscard]] ScanResult scan(const std::vector<std::string>& paths, const ScanOptions& opts,
                              const std::function<void(const ScannedFile&)>& on_file = {});

}  // namespace sluice::pipeline
