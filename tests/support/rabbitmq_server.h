// RabbitMqServer: a real Debian rabbitmq-server (a single node) for a test, on free loopback ports
// (AMQP, Erlang distribution, and an epmd of its own so it never meets a system epmd or another
// test's) with a temporary directory holding its config, Mnesia database and logs; guest/guest may
// log in. stop()/start() restart it on the same ports and directory, for the broker-restart fault
// tests: durable queues and persistent messages survive, after a graceful stop() or a kill_now()
// crash alike. The destructor kills the broker and its epmd and removes the directory (kept when
// SLUICE_KEEP_TEST_DIRS is set).
// Ownership: the object owns the broker's process group and the epmd; a forked child's copy (a
// test that forks) leaves them to the parent. Thread-safety: one owner thread.
#pragma once

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "base/status.h"

namespace sluice::testing {

class RabbitMqServer {
 public:
  // Run directly: /usr/sbin/rabbitmq-server's wrapper switches to the rabbitmq user (and fails).
  static constexpr const char* kServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";

  RabbitMqServer() = default;
  RabbitMqServer(const RabbitMqServer&) = delete;
  RabbitMqServer& operator=(const RabbitMqServer&) = delete;
  ~RabbitMqServer() {
    if (::getpid() != owner_) return;  // a forked child exiting: the broker is its parent's
    kill_now();
    stop_epmd();
    if (!dir_.empty() && std::getenv("SLUICE_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Starts the broker and returns once an AMQP login works (several seconds: the Erlang VM boots,
  // and after a restart the durable queues are recovered before the listener opens). The first
  // time on new ports and a new directory; after stop() or kill_now() on the same ones.
  // Code::kUnsupported when rabbitmq-server is not installed.
  [[nodiscard]] Status start() {
    if (::access(kServer, X_OK) != 0)
      return Status::unsupported("rabbitmq-server is not installed (scripts/setup.sh installs it)");
    if (pid_ > 0) return {};  // already running
    if (dir_.empty()) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern =
          std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-rabbitmq-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) return Status::io_error("mkdtemp " + pattern);
      dir_ = pattern;
      if (!write_file(dir_ + "/enabled_plugins", "[].\n"))
        return Status::io_error("cannot write " + dir_ + "/enabled_plugins");
    }
    if (Status s = ensure_epmd(); !s.is_ok()) return s;
    std::string why;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (!started_once_) {  // a restart must keep its ports: retrying elsewhere would not help
        std::array<int, 2> p = free_ports<2>();
        port_ = p[0];
        dist_port_ = p[1];
      }
      if (Status s = spawn(); !s.is_ok()) return s;
      why = wait_ready();
      if (why.empty()) {
        started_once_ = true;
        return {};
      }
      kill_now();
      if (started_once_) break;
    }
    return Status::unavailable("rabbitmq-server on 127.0.0.1:" + std::to_string(port_) + " " + why +
                               " (logs in " + dir_ + "/stdout.log and " + dir_ + "/log); stdout.log ends:\n" +
                               tail(dir_ + "/stdout.log", 2000));
  }

  // Stops the broker gracefully: SIGTERM (it closes connections, writes its queue indexes and
  // exits), SIGKILL after 30 s.
  void stop() {
    if (pid_ <= 0 || ::getpid() != owner_) return;
    ::kill(pid_, SIGTERM);  // the rabbitmq-server script passes it on to the VM and waits
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!exited() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reap();
  }

  // Kills the broker at once (SIGKILL to its whole process group), as a crash does.
  void kill_now() {
    if (pid_ <= 0 || ::getpid() != owner_) return;
    reap();
  }

  int port() const { return port_; }
  // amqp://guest:guest@127.0.0.1:PORT/ (vhost "/", as sluice reads an empty path), then ?query.
  std::string uri(std::string_view query = {}) const {
    std::string u = "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/";
    if (!query.empty()) u.append("?").append(query);
    return u;
  }
  std::string dir() const { return dir_; }

 private:
  // N distinct free loopback ports (the sockets are held open together so no two are the same).
  template <std::size_t N>
  static std::array<int, N> free_ports() {
    std::array<int, N> fds{};
    std::array<int, N> ports{};
    for (std::size_t i = 0; i < N; ++i) {
      fds[i] = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      ::bind(fds[i], reinterpret_cast<sockaddr*>(&a), sizeof a);
      ::getsockname(fds[i], reinterpret_cast<sockaddr*>(&a), &len);
      ports[i] = ntohs(a.sin_port);
    }
    for (int fd : fds) ::close(fd);
    return ports;
  }

  static bool write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    f << text;
    return static_cast<bool>(f.flush());
  }

  static std::string tail(const std::string& path, std::size_t n) {
    std::ifstream f(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return all.size() > n ? all.substr(all.size() - n) : all;
  }

  static bool can_connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  // What the children get: argv and envp built before fork (only async-signal-safe calls after).
  struct Exec {
    std::vector<std::string> args, env;
    std::vector<char*> argv, envp;
    void finish() {
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      for (auto& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
    }
  };

  // Forks a child in a session (and process group) of its own, stdin from /dev/null, stdout and
  // stderr appended to `log`, no other descriptor of the test's, default signal handling.
  static pid_t fork_exec(Exec& x, const std::string& log) {
    x.finish();
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) ::signal(sig, SIG_DFL);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);
    ::execve(x.argv[0], x.argv.data(), x.envp.data());
    ::_exit(127);
  }

  static std::string path_env() {
    const char* p = std::getenv("PATH");
    return std::string("PATH=") + (p != nullptr && *p != '\0' ? p : "/usr/local/bin:/usr/bin:/bin");
  }

  // The broker's epmd, started before the broker so that the VM (which would otherwise start
  // `epmd -daemon`, outside its process group, and leave it behind) finds it running. It stays up
  // across restarts and is stopped by the destructor.
  Status ensure_epmd() {
    if (epmd_pid_ > 0) {
      if (::waitpid(epmd_pid_, nullptr, WNOHANG) == 0) return {};
      epmd_pid_ = -1;  // died: start it again on the same port (the broker's node knows that one)
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (epmd_port_ == 0 || (attempt > 0 && !started_once_)) epmd_port_ = free_ports<1>()[0];
      Exec x;
      x.args = {"/usr/bin/epmd", "-address", "127.0.0.1", "-port", std::to_string(epmd_port_)};
      x.env = {path_env(), "ERL_EPMD_PORT=" + std::to_string(epmd_port_), "ERL_EPMD_ADDRESS=127.0.0.1"};
      epmd_pid_ = fork_exec(x, dir_ + "/epmd.log");
      if (epmd_pid_ < 0) return Status::io_error("fork for epmd");
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(epmd_pid_, nullptr, WNOHANG) == epmd_pid_) {
          epmd_pid_ = -1;  // exited: the port was taken, say
          break;
        }
        if (can_connect(epmd_port_)) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stop_epmd();
    }
    return Status::unavailable("epmd did not start on 127.0.0.1:" + std::to_string(epmd_port_) + " (log in " +
                               dir_ + "/epmd.log)");
  }

  void stop_epmd() {
    if (epmd_pid_ > 0) {
      ::kill(epmd_pid_, SIGKILL);
      ::waitpid(epmd_pid_, nullptr, 0);
      epmd_pid_ = -1;
    }
    if (epmd_port_ == 0) return;
    // Any other epmd on our port (one the VM started after ours had died): found by its
    // environment, which it inherited from the broker.
    const std::string mark = "ERL_EPMD_PORT=" + std::to_string(epmd_port_);
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return;
    while (dirent* e = ::readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      const std::string base = std::string("/proc/") + e->d_name;
      std::ifstream comm(base + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name != "epmd") continue;
      std::ifstream envf(base + "/environ", std::ios::binary);
      std::string var;
      while (std::getline(envf, var, '\0')) {
        if (var == mark) {
          ::kill(pid, SIGKILL);
          break;
        }
      }
    }
    ::closedir(proc);
  }

  Status spawn() {
    const std::string port = std::to_string(port_);
    // listeners.tcp.1 with the address: a bare `listeners.tcp.default = PORT` would listen on
    // every interface. disk_free_limit: the default 50 MB would block publishers on a full /tmp
    // and look like a hang in the code under test.
    if (!write_file(dir_ + "/rabbitmq.conf", "listeners.tcp.1 = 127.0.0.1:" + port +
                                                 "\n"
                                                 "loopback_users = none\n"
                                                 "log.console = false\n"
                                                 "log.file.level = warning\n"
                                                 "disk_free_limit.absolute = 1MB\n"))
      return Status::io_error("cannot write " + dir_ + "/rabbitmq.conf");
    Exec x;
    x.args = {kServer};
    x.env = {path_env(),
             "HOME=" + dir_,  // the Erlang cookie goes there
             "LANG=C.UTF-8",
             "RABBITMQ_NODENAME=sluice" + port + "@localhost",
             "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
             "RABBITMQ_NODE_PORT=" + port,
             "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
             "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
             "RABBITMQ_MNESIA_BASE=" + dir_ + "/mnesia",
             "RABBITMQ_LOG_BASE=" + dir_ + "/log",
             "RABBITMQ_CONFIG_FILE=" + dir_ + "/rabbitmq.conf",
             "RABBITMQ_ADVANCED_CONFIG_FILE=" + dir_ + "/advanced.config",  // absent: none
             "RABBITMQ_CONF_ENV_FILE=" + dir_ + "/rabbitmq-env.conf",       // absent: not /etc's
             "RABBITMQ_ENABLED_PLUGINS_FILE=" + dir_ + "/enabled_plugins",
             "RABBITMQ_PID_FILE=" + dir_ + "/rabbit.pid",
             "ERL_EPMD_ADDRESS=127.0.0.1",
             "ERL_EPMD_PORT=" + std::to_string(epmd_port_)};
    pid_ = fork_exec(x, dir_ + "/stdout.log");
    if (pid_ < 0) {
      pid_ = -1;
      return Status::io_error("fork for rabbitmq-server");
    }
    return {};
  }

  // "" once guest/guest can log in over AMQP; else why not.
  std::string wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (exited()) return "exited while starting";
      if (amqp_login_works()) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return "did not accept an AMQP login within 60 s";
  }

  bool amqp_login_works() const {
    amqp_connection_state_t conn = amqp_new_connection();
    if (conn == nullptr) return false;
    bool ok = false;
    amqp_socket_t* sock = amqp_tcp_socket_new(conn);
    timeval tv{2, 0};
    if (sock != nullptr && amqp_socket_open_noblock(sock, "127.0.0.1", port_, &tv) == AMQP_STATUS_OK) {
      timeval hs{5, 0};
      amqp_set_handshake_timeout(conn, &hs);
      amqp_set_rpc_timeout(conn, &hs);
      amqp_rpc_reply_t r =
          amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
      ok = r.reply_type == AMQP_RESPONSE_NORMAL;
      if (ok) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    return ok;
  }

  // Whether the rabbitmq-server process has exited (left a zombie: not reaped, so its process
  // group id cannot be reused before reap() kills what is left in the group).
  bool exited() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
  }

  // SIGKILL to the process group (the script, the Erlang VM and its port programs), then reap.
  // The VM is the script's child, not ours: we wait (up to 10 s) until it is dead, so that a
  // restart right after a kill finds its ports and files free. The script's pid stays unreaped
  // (a zombie) meanwhile, so the group id cannot be reused. The VM's port programs (which
  // erl_child_setup runs in a session of their own) exit by themselves when the VM is gone.
  void reap() {
    ::kill(-pid_, SIGKILL);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (group_has_live_process(pid_) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Whether a process of group `pgid` is still running (zombies do not count: they hold nothing).
  static bool group_has_live_process(pid_t pgid) {
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return false;
    bool live = false;
    while (dirent* e = ::readdir(proc)) {
      if (std::atoi(e->d_name) <= 0) continue;
      std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
      std::string stat;
      std::getline(f, stat);
      const std::size_t rp = stat.rfind(')');  // after "pid (comm)": state ppid pgrp ...
      if (rp == std::string::npos) continue;
      char state = 0;
      long ppid = 0, pgrp = 0;
      if (std::sscanf(stat.c_str() + rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
      if (pgrp == pgid && state != 'Z' && state != 'X') {
        live = true;
        break;
      }
    }
    ::closedir(proc);
    return live;
  }

  std::string dir_;
  int port_ = 0;
  int dist_port_ = 0;
  int epmd_port_ = 0;
  pid_t pid_ = -1;
  pid_t epmd_pid_ = -1;
  bool started_once_ = false;
  pid_t owner_ = ::getpid();
};

}  // namespace sluice::testing
