// Env: the one door through which the log touches files and clocks (after LevelDB's Env).
//
// Production code uses Env::posix(); crash and fault tests wrap it (tests/base/fault_env.h) to
// fail a write or an fsync on command, or to tear a write in half. An Env is shared and
// thread-safe; a File is owned by one object and its methods may be called from several threads
// only where noted (positional reads and writes are safe together, as with pread/pwrite).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice {

class File {
 public:
  virtual ~File() = default;
  const std::string& path() const { return path_; }

  // Reads up to n bytes at offset into buf; returns the count (short only at end of file).
  virtual Result<size_t> read_at(uint64_t offset, size_t n, char* buf) = 0;
  // Writes all n bytes at offset.
  virtual Status write_at(uint64_t offset, const void* data, size_t n) = 0;
  // Makes everything written so far durable (fdatasync).
  virtual Status sync() = 0;
  virtual Status truncate(uint64_t size) = 0;
  virtual Result<uint64_t> size() = 0;
  // An advisory whole-file lock shared across processes (flock). With wait=false a lock held by
  // someone else answers Code::kBusy. Locks die with the process that holds them.
  virtual Status lock(bool wait) = 0;
  virtual Status unlock() = 0;

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

struct OpenOptions {
  bool create = false;     // create when missing
  bool read_only = false;  // open for reading only
};

class Env {
 public:
  virtual ~Env() = default;
  static Env* posix();

  virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenOptions opts) = 0;
  // Reads a whole (small) file.
  virtual Result<std::string> read_file(const std::string& path) = 0;
  // Replaces path with data atomically and durably: temp file, fsync, rename, fsync of the dir.
  virtual Status write_file_atomic(const std::string& path, std::string_view data) = 0;
  virtual Status create_dirs(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual Status remove_file(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status sync_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  // Modification time of a file in milliseconds since the epoch.
  virtual Result<int64_t> mtime_ms(const std::string& path) = 0;

  virtual int64_t now_ms() = 0;        // wall clock, for record timestamps
  virtual int64_t monotonic_ns() = 0;  // for intervals and deadlines
};

// Turns errno into a Status that names the operation and the path.
Status errno_status(std::string_view op, const std::string& path, int err);

}  // namespace sluice
