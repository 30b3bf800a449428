// The POSIX Env: plain file descriptors, pread/pwrite, fdatasync and flock.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/env.h"
#include "base/path.h"

namespace sluice {

Status errno_status(std::string_view op, const std::string& path, int err) {
  std::string msg(op);
  msg += " '";
  msg += path;
  msg += "': ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT: return Status::not_found(std::move(msg));
    case EEXIST: return Status::already_exists(std::move(msg));
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE: return Status::resource_limit(std::move(msg));
    case EACCES:
    case EPERM:
    case ENOTDIR:
    case EISDIR: return Status(ErrorClass::kBadInput, Code::kInvalidArgument, std::move(msg));
    case EWOULDBLOCK: return Status::busy(std::move(msg));
    default: return Status::io_error(std::move(msg));
  }
}

namespace {

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : File(std::move(path)), fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }

  Result<size_t> read_at(uint64_t offset, size_t n, char* buf) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno_status("read", path(), errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Status write_at(uint64_t offset, const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pwrite(fd_, p + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno_status("write", path(), errno);
      }
      done += static_cast<size_t>(r);
    }
    return {};
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status("fsync", path(), errno);
    return {};
  }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return errno_status("truncate", path(), errno);
    return {};
  }

  Result<uint64_t> size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return errno_status("stat", path(), errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status lock(bool wait) override {
    for (;;) {
      if (::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) == 0) return {};
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) return Status::busy("'" + path() + "' is locked by another process");
      return errno_status("lock", path(), errno);
    }
  }

  Status unlock() override {
    if (::flock(fd_, LOCK_UN) != 0) return errno_status("unlock", path(), errno);
    return {};
  }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, OpenOptions opts) override {
    int flags = O_CLOEXEC | (opts.read_only ? O_RDONLY : O_RDWR);
    if (opts.create) flags |= O_CREAT;
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_status("open", path, errno);
    return std::unique_ptr<File>(new PosixFile(path, fd));
  }

  Result<std::string> read_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("open", path, errno);
    std::string out;
    char buf[8192];
    for (;;) {
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        return errno_status("read", path, e);
      }
      if (r == 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    ::close(fd);
    return out;
  }

  Status write_file_atomic(const std::string& path, std::string_view data) override {
    std::string tmp = unique_temp_path(path);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("create", tmp, errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t r = ::write(fd, data.data() + done, data.size() - done);
      if (r < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        return errno_status("write", tmp, e);
      }
      done += static_cast<size_t>(r);
    }
    if (::fdatasync(fd) != 0) {
      int e = errno;
      ::close(fd);
      return errno_status("fsync", tmp, e);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return errno_status("rename", tmp, e);
    }
    auto slash = path.find_last_of('/');
    return sync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
  }

  Status create_dirs(const std::string& path) override {
    if (path.empty()) return {};
    std::string cur;
    size_t i = 0;
    while (i <= path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      cur = path.substr(0, j);
      if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
        return errno_status("mkdir", cur, errno);
      }
      i = j + 1;
    }
    if (!is_dir(path)) return Status::invalid_argument("'" + path + "' exists and is not a directory");
    return {};
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (!d) return errno_status("list", path, errno);
    std::vector<std::string> out;
    while (dirent* e = ::readdir(d)) {
      std::string_view n(e->d_name);
      if (n == "." || n == "..") continue;
      out.emplace_back(n);
    }
    ::closedir(d);
    return out;
  }

  Status remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_status("remove", path, errno);
    return {};
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_status("rename", from, errno);
    return {};
  }

  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open dir", path, errno);
    int r = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (r != 0) return errno_status("fsync dir", path, e);
    return {};
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  bool is_dir(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Result<int64_t> mtime_ms(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return errno_status("stat", path, errno);
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  }

  int64_t now_ms() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  int64_t monotonic_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Env* Env::posix() {
  static PosixEnv env;
  return &env;
}

}  // namespace sluice
