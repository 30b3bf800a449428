// Runs the built `sluice` binary (SLUICE_BINARY) as a user would, for the end-to-end tests: feeds
// stdin, collects stdout and stderr, kills a child that hangs. Also a temporary directory that
// SLUICE_KEEP_TEST_DIRS=1 keeps for a look after a failure.
// Thread-safety: run_sluice may be called from several threads (each call forks its own child).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace sluice::test {

using Clock = std::chrono::steady_clock;

struct RunOptions {
  std::string stdin_data;
  std::vector<std::pair<std::string, std::string>> env;  // set in the child (after SLUICE_* are cleared)
  bool keep_stdin_open = false;                          // as a terminal would, until the child ends
  std::atomic<bool>* terminate = nullptr;                // set: send terminate_signal to the child
  int terminate_signal = SIGTERM;
  std::chrono::milliseconds kill_after{60000};  // a hung child is killed and the test fails
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool killed_for_timeout = false;
  std::string out;
  std::string err;
  double seconds = 0;
};

// Runs SLUICE_BINARY with args, feeding stdin_data and collecting stdout and stderr. The child's
// environment is the test's without SLUICE_* variables, plus opts.env.
inline RunResult run_sluice(const std::vector<std::string>& args, const RunOptions& opts = {}) {
  RunResult r;
  // Everything the child needs is built before fork(): after it only async-signal-safe calls.
  std::vector<std::string> argv_s = {SLUICE_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "SLUICE_", 7) != 0) env_s.emplace_back(*e);
  }
  for (const auto& [k, v] : opts.env) env_s.push_back(k + "=" + v);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer reserves far more address space than any parser budget (RLIMIT_AS) allows.
  env_s.push_back("SLUICE_PARSE_MEMORY=0");
#endif
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return r;
  }
  auto started = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return r;
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  int in_fd = in[1];
  size_t written = 0;
  int idle_in_fd = -1;  // stdin kept open after everything was written
  auto stdin_written = [&] {
    if (opts.keep_stdin_open) {
      idle_in_fd = in_fd;
    } else {
      close(in_fd);
    }
    in_fd = -1;
  };
  if (opts.stdin_data.empty()) stdin_written();
  int out_fd = out[0], err_fd = err[0];
  bool termed = false;
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    if (opts.terminate && !termed && opts.terminate->load()) {
      kill(pid, opts.terminate_signal);
      termed = true;
    }
    if (!r.killed_for_timeout && Clock::now() - started > opts.kill_after) {
      kill(pid, SIGKILL);
      r.killed_for_timeout = true;
    }
    pollfd fds[3];
    int n = 0;
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (poll(fds, n, 50) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, opts.stdin_data.data() + written, opts.stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) written = opts.stdin_data.size();  // the child closed stdin
        if (written == opts.stdin_data.size()) stdin_written();
        continue;
      }
      int& fd = fds[i].fd == out_fd ? out_fd : err_fd;
      std::string& sink = fds[i].fd == out_fd ? r.out : r.err;
      ssize_t got = read(fd, buf, sizeof(buf));
      if (got > 0) {
        sink.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fd);
        fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (idle_in_fd >= 0) close(idle_in_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// A sluice process that runs in the background (a worker, most often) while the test does other
// things, until stop() sends it opts.terminate_signal (SIGTERM unless set) and waits for it. The
// destructor stops it too, so an early ASSERT does not leave it running.
// Thread-safety: one owner thread; stop() must not race another stop().
class BackgroundSluice {
 public:
  explicit BackgroundSluice(std::vector<std::string> args, RunOptions opts = {}) {
    opts.terminate = &stop_;
    thread_ = std::thread(
        [this, args = std::move(args), opts = std::move(opts)] { result_ = run_sluice(args, opts); });
  }
  ~BackgroundSluice() { stop(); }
  BackgroundSluice(const BackgroundSluice&) = delete;
  BackgroundSluice& operator=(const BackgroundSluice&) = delete;

  // How the process ended (valid once stop() returned).
  const RunResult& stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  std::atomic<bool> stop_{false};
  RunResult result_;
  std::thread thread_;  // last: it uses the members above
};

inline std::string describe(const RunResult& r) {
  std::ostringstream s;
  s << "exit=" << r.exit_code << " signal=" << r.signal << (r.killed_for_timeout ? " (killed: hung)" : "")
    << "\n--- stdout ---\n"
    << r.out << "--- stderr ---\n"
    << r.err;
  return s.str();
}

inline std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The last line of a command's stdout that is a JSON summary ({"event":"summary",...}, as ingest
// prints it); a test failure naming the run when there is none.
inline nlohmann::json summary_of(const RunResult& r) {
  nlohmann::json last;
  for (const auto& line : split_lines(r.out)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "summary") last = j;
  }
  EXPECT_TRUE(last.is_object()) << describe(r);
  return last;
}

// Writes bytes to path, making the directories above it.
inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// Runs `sluice CMD... --help` and checks it succeeds, names itself ("Usage: sluice CMD...") and
// mentions every string of expect.
inline void expect_help(const std::vector<std::string>& cmd, const std::vector<std::string>& expect) {
  std::vector<std::string> args = cmd;
  args.push_back("--help");
  RunResult r = run_sluice(args);
  std::string name = "sluice";
  for (const auto& c : cmd) name += " " + c;
  EXPECT_EQ(r.exit_code, 0) << name << "\n" << describe(r);
  EXPECT_NE(r.out.find("Usage: " + name), std::string::npos) << name << "\n" << r.out;
  for (const std::string& e : expect) EXPECT_NE(r.out.find(e), std::string::npos) << name << ": " << e;
}

// A fresh directory under /tmp, removed at the end unless SLUICE_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  explicit TempDir(const char* prefix = "sluice-test") {
    std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    const char* keep = std::getenv("SLUICE_KEEP_TEST_DIRS");
    if (keep && *keep && std::string(keep) != "0") {
      std::printf("kept %s\n", path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::test
