// FaultEnv: an Env that passes everything to the POSIX Env except the faults a test asks for —
// failing fsyncs (EIO) and writes (ENOSPC) on files whose path contains a pattern. Tests use it to
// show that a failed write or sync is reported, taken back, and loses nothing else.
// Thread-safety: the fault switches are atomics; set them from the test thread at any time.
#pragma once

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <string>

#include "base/env.h"

namespace sluice::test {

class FaultEnv final : public Env {
 public:
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_write{false};
  std::atomic<bool> fail_list{false};  // list_dir answers EACCES, as for an unreadable directory
  std::atomic<int> syncs_failed{0};
  std::atomic<int> writes_failed{0};
  std::string pattern = ".log";  // only files whose path contains this fail

  Result<std::unique_ptr<File>> open(const std::string& path, OpenOptions opts) override {
    SLUICE_ASSIGN_OR_RETURN(auto f, base_->open(path, opts));
    return std::unique_ptr<File>(new FaultFile(this, path, std::move(f)));
  }
  Result<std::string> read_file(const std::string& p) override { return base_->read_file(p); }
  Status write_file_atomic(const std::string& p, std::string_view d) override {
    return base_->write_file_atomic(p, d);
  }
  Status create_dirs(const std::string& p) override { return base_->create_dirs(p); }
  Result<std::vector<std::string>> list_dir(const std::string& p) override {
    if (fail_list) return errno_status("list", p, EACCES);
    return base_->list_dir(p);
  }
  Status remove_file(const std::string& p) override { return base_->remove_file(p); }
  Status rename(const std::string& a, const std::string& b) override { return base_->rename(a, b); }
  Status sync_dir(const std::string& p) override { return base_->sync_dir(p); }
  bool exists(const std::string& p) override { return base_->exists(p); }
  bool is_dir(const std::string& p) override { return base_->is_dir(p); }
  Result<int64_t> mtime_ms(const std::string& p) override { return base_->mtime_ms(p); }
  int64_t now_ms() override { return base_->now_ms(); }
  int64_t monotonic_ns() override { return base_->monotonic_ns(); }

 private:
  class FaultFile final : public File {
   public:
    FaultFile(FaultEnv* env, const std::string& path, std::unique_ptr<File> f)
        : File(path), env_(env), f_(std::move(f)), faulty_(path.find(env->pattern) != std::string::npos) {}
    Result<size_t> read_at(uint64_t o, size_t n, char* b) override { return f_->read_at(o, n, b); }
    Status write_at(uint64_t o, const void* d, size_t n) override {
      if (faulty_ && env_->fail_write) {
        ++env_->writes_failed;
        return errno_status("write", path(), ENOSPC);
      }
      return f_->write_at(o, d, n);
    }
    Status sync() override {
      if (faulty_ && env_->fail_sync) {
        ++env_->syncs_failed;
        return errno_status("fsync", path(), EIO);
      }
      return f_->sync();
    }
    Status truncate(uint64_t s) override { return f_->truncate(s); }
    Result<uint64_t> size() override { return f_->size(); }
    Status lock(bool wait) override { return f_->lock(wait); }
    Status unlock() override { return f_->unlock(); }

   private:
    FaultEnv* env_;
    std::unique_ptr<File> f_;
    bool faulty_;
  };

  Env* base_ = Env::posix();
};

}  // namespace sluice::test
