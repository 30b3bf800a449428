// The folder scanner: a depth-first walk over POSIX calls (opendir/readdir, stat/lstat, fnmatch).
//
// Decisions the header leaves open:
// - A directory named as a PATH argument is always entered (globs apply to what is found under
//   it); a file named as a PATH argument goes through the globs like any other, by its name.
// - Arguments are made absolute and lexically normal first, and that path is what is read, so
//   what is reported is what was read.
// - The directories above a PATH argument count as "on the walk" for loop detection: a link to
//   one of them (say to /) would come back round to the argument and is reported, not walked.
// - Dedup by device and inode spans the whole scan: overlapping arguments list a file once, and
//   so do hard links.
// - A file that the globs leave out is never reported, whatever it is (unreadable, a FIFO ...).
//   An entry that cannot be stat'ed (a dangling link) is reported unless an exclude matches it:
//   whether it was meant as a file, for the include globs, is unknown.
// Directory listings are read whole and closed before descending, so one descriptor is open at a
// time however deep the tree.
#include "pipeline/scanner.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "base/path.h"

namespace sluice::pipeline {
namespace {

using FileId = std::pair<dev_t, ino_t>;

std::string quoted(std::string_view s) {
  std::string out = "'";
  out += s;
  out += "'";
  return out;
}

std::string join(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A problem's Status from errno, worded as what happened and what the user can do about it.
Status errno_problem(std::string_view what, const std::string& path, int err) {
  std::string p = quoted(path);
  switch (err) {
    case EACCES:
    case EPERM:
      return Status::invalid_argument("permission denied reading " + std::string(what) + " " + p +
                                      ": check its permissions or --exclude it");
    case ENOENT: return Status::not_found(p + " does not exist: check the path");
    case ENOTDIR:
      return Status::not_found(p + " does not exist (a part of it is not a directory): check the path");
    case ELOOP:
      return Status::invalid_argument(
          p + " is a symbolic link that leads back to itself: fix the link or --exclude it");
    case ENAMETOOLONG:
      return Status::invalid_argument(p + " is too long a path to read: shorten it or --exclude it");
    default:
      return Status::io_error("cannot read " + std::string(what) + " " + p + ": " + std::strerror(err) +
                              "; check the disk or --exclude it");
  }
}

const char* special_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

class Walker {
 public:
  Walker(const ScanOptions& opts, const std::function<void(const ScannedFile&)>& on_file)
      : opts_(opts), on_file_(on_file), filter_(opts.include, opts.exclude) {}

  ScanResult take() { return std::move(result_); }

  // Returns false when the file limit stopped the walk.
  bool scan_argument(const std::string& arg) {
    if (arg.empty()) {
      problem("", Status::invalid_argument("an empty path was given: name a file or directory"));
      return true;
    }
    std::string path = arg;
    if (path.front() != '/') {
      std::string cwd;
      if (!current_dir(&cwd)) {
        int err = errno;
        problem(arg, Status::io_error("cannot make " + quoted(arg) + " absolute: getcwd: " +
                                      std::strerror(err) + "; give an absolute path"));
        return true;
      }
      path = join(cwd, path);
    }
    path = normalize_absolute(path);

    struct stat st;
    if (Status err = stat_entry(path, &st); !err.is_ok()) {
      problem(path, std::move(err));
      return true;
    }
    if (S_ISDIR(st.st_mode)) {
      std::vector<FileId> stack = ancestors(path);
      stack.emplace_back(st.st_dev, st.st_ino);
      return walk_dir(path, "", &stack);
    }
    return visit_non_dir(path, base_name(path), st);
  }

 private:
  static bool current_dir(std::string* out) {
    std::vector<char> buf(4096);
    while (::getcwd(buf.data(), buf.size()) == nullptr) {
      if (errno != ERANGE) return false;
      buf.resize(buf.size() * 2);
    }
    *out = buf.data();
    return true;
  }

  // The directories lexically above path, for loop detection (see the top of the file).
  static std::vector<FileId> ancestors(const std::string& path) {
    std::vector<FileId> out;
    for (size_t slash = 0; slash != std::string::npos && slash < path.size();
         slash = path.find('/', slash + 1)) {
      std::string dir = slash == 0 ? "/" : path.substr(0, slash);
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0) out.emplace_back(st.st_dev, st.st_ino);
    }
    return out;
  }

  void problem(std::string path, Status error) {
    result_.problems.push_back({std::move(path), std::move(error)});
  }

  // stat() following links; on failure, why (telling dangling links from missing paths).
  static Status stat_entry(const std::string& path, struct stat* st) {
    if (::stat(path.c_str(), st) == 0) return {};
    int err = errno;
    struct stat lst;
    if ((err == ENOENT || err == ELOOP) && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      std::string link = quoted(path) + " -> " + quoted(read_link(path));
      if (err == ENOENT) {
        return Status::not_found("dangling symbolic link " + link +
                                 ": its target does not exist; fix or remove the link, or --exclude it");
      }
      return Status::invalid_argument("symbolic link " + link +
                                      " leads back to itself (a link loop): fix the link or --exclude it");
    }
    return errno_problem("path", path, err);
  }

  static std::string read_link(const std::string& path) {
    std::vector<char> buf(256);
    for (;;) {
      ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
      if (n < 0) return "?";
      if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), static_cast<size_t>(n));
      buf.resize(buf.size() * 2);
    }
  }

  // Returns false when the file limit stopped the walk.
  bool walk_dir(const std::string& dir, const std::string& rel, std::vector<FileId>* stack) {
    // Without read and search permission a listing fails or every entry's stat does: report once.
    if (::faccessat(AT_FDCWD, dir.c_str(), R_OK | X_OK, AT_EACCESS) != 0) {
      problem(dir, errno_problem("directory", dir, errno));
      return true;
    }
    std::vector<std::string> names;
    if (!list(dir, &names)) return true;
    std::sort(names.begin(), names.end());

    for (const auto& name : names) {
      std::string path = join(dir, name);
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (Status err = stat_entry(path, &st); !err.is_ok()) {
        // Not knowing whether it was meant as a file or a directory, only an exclude silences it.
        if (!filter_.excluded(child_rel)) problem(path, std::move(err));
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        if (filter_.excluded(child_rel)) continue;
        FileId id{st.st_dev, st.st_ino};
        if (std::find(stack->begin(), stack->end(), id) != stack->end()) {
          struct stat lst;
          std::string what = ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)
                                 ? "symbolic link " + quoted(path) + " -> " + quoted(read_link(path))
                                 : quoted(path);
          problem(path, Status::invalid_argument("symbolic link loop: " + what +
                                                 " leads back to a directory already being walked; it is not "
                                                 "followed (fix the link or --exclude it)"));
          continue;
        }
        stack->push_back(id);
        bool go_on = walk_dir(path, child_rel, stack);
        stack->pop_back();
        if (!go_on) return false;
        continue;
      }
      if (!visit_non_dir(path, child_rel, st)) return false;
    }
    return true;
  }

  bool list(const std::string& dir, std::vector<std::string>* names) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      problem(dir, errno_problem("directory", dir, errno));
      return false;
    }
    for (;;) {
      errno = 0;
      dirent* e = ::readdir(d);
      if (e == nullptr) {
        if (errno != 0) {
          // Keep what was read: the entries before the error are still worth ingesting.
          problem(dir, errno_problem("directory", dir, errno));
        }
        break;
      }
      std::string_view n(e->d_name);
      if (n == "." || n == "..") continue;
      names->emplace_back(n);
    }
    ::closedir(d);
    return true;
  }

  // A file, link to a file, or special file. Returns false when the file limit stops the walk.
  bool visit_non_dir(const std::string& path, const std::string& rel, const struct stat& st) {
    if (!filter_.selects_file(rel)) return true;
    if (!S_ISREG(st.st_mode)) {
      problem(path, Status::invalid_argument(quoted(path) + " is " + special_kind(st.st_mode) +
                                             ", not a regular file; skipped (--exclude it to silence this)"));
      return true;
    }
    if (::faccessat(AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) != 0) {
      problem(path, errno_problem("file", path, errno));
      return true;
    }
    if (!seen_.insert({st.st_dev, st.st_ino}).second) return true;
    if (opts_.max_files != 0 && result_.files.size() >= opts_.max_files) {
      result_.truncated = true;
      return false;
    }
    ScannedFile f;
    f.path = path;
    f.relative = rel;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    result_.files.push_back(std::move(f));
    if (on_file_) on_file_(result_.files.back());
    return true;
  }

  const ScanOptions& opts_;
  const std::function<void(const ScannedFile&)>& on_file_;
  const PathFilter filter_;
  std::set<FileId> seen_;  // files listed so far, across all arguments
  ScanResult result_;
};

}  // namespace

PathFilter::PathFilter(const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  for (const auto* list : {&include, &exclude}) {
    auto& out = list == &include ? include_ : exclude_;
    for (std::string g : *list) {
      // "node_modules/" means the directory; fnmatch would need the slash in the name.
      while (g.size() > 1 && g.back() == '/') g.pop_back();
      if (!g.empty()) out.push_back(std::move(g));
    }
  }
}

bool PathFilter::matches(const std::vector<std::string>& globs, std::string_view relative) {
  const std::string rel(relative);
  const size_t slash = rel.find_last_of('/');
  const std::string name = slash == std::string::npos ? std::string() : rel.substr(slash + 1);
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), rel.c_str(), 0) == 0) return true;
    if (!name.empty() && ::fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

bool PathFilter::excluded(std::string_view relative) const {
  return matches(exclude_, relative);
}

bool PathFilter::selects_file(std::string_view relative) const {
  if (!include_.empty() && !matches(include_, relative)) return false;
  return !matches(exclude_, relative);
}

bool PathFilter::selects_key(std::string_view relative) const {
  for (size_t slash = relative.find('/'); slash != std::string_view::npos;
       slash = relative.find('/', slash + 1)) {
    if (matches(exclude_, relative.substr(0, slash))) return false;
  }
  return selects_file(relative);
}

ScanResult scan(const std::vector<std::string>& paths, const ScanOptions& opts,
                const std::function<void(const ScannedFile&)>& on_file) {
  Walker w(opts, on_file);
  for (const auto& p : paths) {
    if (!w.scan_argument(p)) break;
  }
  return w.take();
}

}  // namespace sluice::pipeline
