// `sluice serve` as a client sees it (docs/http_api.md): the real binary on a loopback port, driven
// with cpp-httplib's client. Uploads (raw and multipart) reach indexed and are found by search;
// every bad request gets its 4xx with a JSON error and leaves nothing behind; failed documents are
// listed and retried; delete removes a document from the index; tokens guard /v1; status survives
// a restart and follows a `sluice worker` in another process.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "e2e/sluice_runner.h"
#include "support/child_server.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/parse/";

using sluice::testing::free_loopback_port;

// A `sluice serve` process for one test, stopped with SIGTERM at the end.
class Serve {
 public:
  Serve(std::string data, std::vector<std::string> extra = {},
        std::vector<std::pair<std::string, std::string>> env = {})
      : data_(std::move(data)), port_(free_loopback_port()) {
    std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:" + std::to_string(port_), "--data",
                                     data_};
    args.insert(args.end(), extra.begin(), extra.end());
    thread_ = std::thread([this, args, env] {
      RunOptions o;
      o.terminate = &stop_;
      o.env = env;
      o.kill_after = std::chrono::milliseconds(180000);
      result_ = run_sluice(args, o);
      exited_ = true;
    });
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && !exited_) {
      httplib::Client c("127.0.0.1", port_);
      auto r = c.Get("/readyz");
      if (r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "sluice serve did not become ready";
  }
  ~Serve() { stop(); }
  RunResult stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(30));
    return c;
  }
  int port() const { return port_; }

 private:
  std::string data_;
  int port_;
  std::atomic<bool> stop_{false}, exited_{false};
  RunResult result_;
  std::thread thread_;
};

json body_of(const httplib::Result& r) {
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

// Expects an API error: the status, a JSON error with this class and a message.
void expect_error(const httplib::Result& r, int status, const std::string& cls,
                  const std::string& needle = "") {
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, status) << r->body;
  json j = body_of(r);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_EQ(j["error"]["class"], cls) << r->body;
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  if (!needle.empty()) {
    EXPECT_NE(r->body.find(needle), std::string::npos) << r->body;
  }
}

std::string upload_raw(httplib::Client& c, const std::string& name, const std::string& body,
                       const std::string& query = "") {
  auto r = c.Post(("/v1/documents?filename=" + httplib::detail::encode_query_param(name) + query).c_str(),
                  body, "text/plain");
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 202) << r->body;
  json j = body_of(r);
  if (!j.contains("documents")) return "";
  return j["documents"][0]["doc_id"].get<std::string>();
}

// Polls a document until its status is one of want (or the deadline passes); returns the last body.
json wait_status(httplib::Client& c, const std::string& doc_id, std::vector<std::string> want,
                 std::chrono::seconds within = std::chrono::seconds(60)) {
  json last;
  auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    auto r = c.Get(("/v1/documents/" + doc_id).c_str());
    if (r && r->status == 200) {
      last = body_of(r);
      for (const auto& w : want) {
        if (last["status"] == w) return last;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "document " << doc_id << " did not reach the status; last: " << last.dump();
  return last;
}

size_t count_files(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

TEST(Serve, RawUploadIsQueuedAtOnceThenIndexedAndSearchable) {
  TempDir dir("sluice-serve");
  Serve s(dir.path() + "/data");
  auto c = s.client();
  const std::string text = "Sluice keeps otters away from the 消息队列 by the riverside mill.\n";
  auto r =
      c.Post("/v1/documents?filename=otters.txt&metadata=%7B%22team%22%3A%22docs%22%7D", text, "text/plain");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json j = body_of(r);
  ASSERT_EQ(j["documents"].size(), 1u);
  const std::string id = j["documents"][0]["doc_id"];
  EXPECT_EQ(j["documents"][0]["filename"], "otters.txt");
  EXPECT_EQ(j["documents"][0]["size"], text.size());
  EXPECT_EQ(j["documents"][0]["status"], "queued");
  EXPECT_EQ(j["documents"][0]["status_url"], "/v1/documents/" + id);
  EXPECT_EQ(j["documents"][0]["trace_id"].get<std::string>().size(), 32u);

  // Known at once, before the follower has necessarily stored it.
  auto now = c.Get(("/v1/documents/" + id).c_str());
  ASSERT_TRUE(now);
  EXPECT_EQ(now->status, 200) << now->body;

  json d = wait_status(c, id, {"indexed"});
  EXPECT_EQ(d["filename"], "otters.txt");
  EXPECT_GE(d["chunks"].get<int>(), 1);
  EXPECT_EQ(d["attempts"], 1);
  EXPECT_TRUE(d["error"].is_null());
  std::vector<std::string> timeline;
  for (const auto& e : d["timeline"]) timeline.push_back(e["status"]);
  EXPECT_EQ(timeline, (std::vector<std::string>{"queued", "parsed", "embedded", "indexed"})) << d.dump();

  auto found = c.Get("/v1/search?q=otters%20riverside&k=3");
  ASSERT_TRUE(found);
  ASSERT_EQ(found->status, 200) << found->body;
  json hits = body_of(found)["hits"];
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0]["doc_id"], id);
  EXPECT_EQ(hits[0]["source"], "otters.txt");
  EXPECT_NE(hits[0]["text"].get<std::string>().find("消息队列"), std::string::npos);
  for (const char* key : {"rank", "score", "page", "heading", "chunk_id"})
    EXPECT_TRUE(hits[0].contains(key)) << key;

  json stats;
  for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {  // sampled each second
    stats = body_of(c.Get("/v1/stats"));
    if (stats["stages"][2]["processed"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(stats["documents"]["indexed"], 1) << stats.dump();
  EXPECT_EQ(stats["uploads"]["accepted"], 1);
  ASSERT_EQ(stats["stages"].size(), 3u);
  EXPECT_EQ(stats["stages"][0]["name"], "parse");
  EXPECT_EQ(stats["stages"][0]["processed"], 1);

  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* line :
       {"sluice_uploads_total{result=\"accepted\"} 1", "sluice_stage_consumed_total{stage=\"parse\"} 1",
        "sluice_documents{status=\"indexed\"} 1", "# TYPE sluice_stage_processing_seconds histogram",
        "sluice_consumer_lag{group=\"sluice-parse\",topic=\"doc_upload\",partition=\"0\"} 0",
        "sluice_http_requests_total{method=\"POST\",route=\"/v1/documents\",code=\"202\"} 1",
        "sluice_queue_errors_total{operation=\"server\"} 0"}) {
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
  }
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
}

// The process whose command line has `arg` as one of its arguments (0 when none does).
pid_t pid_with_arg(const std::string& arg) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (size_t at = 0; at < all.size();) {
      size_t end = all.find('\0', at);
      if (end == std::string::npos) end = all.size();
      if (all.compare(at, end - at, arg) == 0) return std::stoi(name);
      at = end + 1;
    }
  }
  return 0;
}

// Fields of /proc/.../stat after the command name: [0] is the state, [1] the parent pid, [16] nice.
std::vector<std::string> stat_fields(const fs::path& stat) {
  std::ifstream f(stat);
  std::string line;
  std::getline(f, line);
  std::vector<std::string> out;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 2));
  for (std::string w; rest >> w;) out.push_back(w);
  return out;
}

// The nice values of a process's threads, and of its child processes.
struct Niceness {
  std::multiset<int> threads, children;
};
Niceness niceness_of(pid_t pid) {
  Niceness n;
  const fs::path proc = "/proc/" + std::to_string(pid);
  for (const auto& t : fs::directory_iterator(proc / "task")) {
    auto f = stat_fields(t.path() / "stat");
    if (f.size() > 16) n.threads.insert(std::stoi(f[16]));
  }
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto f = stat_fields(e.path() / "stat");
    if (f.size() > 16 && std::stoi(f[1]) == pid) n.children.insert(std::stoi(f[16]));
  }
  return n;
}

// The in-process stages run at worker_nice (10 by default) so that uploads and the API get the
// cores first while a backlog is processed; the HTTP threads keep the process's priority.
TEST(Serve, StagesRunBelowTheApiPriority) {
  TempDir dir("sluice-serve");
  for (int want : {10, 0}) {
    const std::string data = dir.path() + "/data" + std::to_string(want);
    Serve s(data, want == 10 ? std::vector<std::string>{} : std::vector<std::string>{"--worker-nice", "0"});
    auto c = s.client();
    json d = wait_status(c, upload_raw(c, "nice.txt", "Weirs and sluices share the river.\n"), {"indexed"});
    ASSERT_EQ(d["status"], "indexed");
    const pid_t pid = pid_with_arg(data);
    ASSERT_GT(pid, 0) << "no process has " << data << " among its arguments";
    Niceness n = niceness_of(pid);
    SCOPED_TRACE("worker_nice " + std::to_string(want));
    EXPECT_GE(n.threads.count(0), 2u) << "the main and HTTP threads keep the default priority";
    if (want == 10) {
      // The three stages' consumer threads and their worker threads at least.
      EXPECT_GE(n.threads.count(10), 6u);
      EXPECT_EQ(n.threads.count(0) + n.threads.count(10), n.threads.size());
    } else {
      EXPECT_EQ(n.threads.count(0), n.threads.size());
    }
    ASSERT_FALSE(n.children.empty()) << "no parser processes";
    EXPECT_EQ(n.children.count(want), n.children.size()) << "the parser processes run at worker_nice";
  }
}

// A burst of clients connecting at once (wrk opens 64) must not overflow the listen backlog:
// a dropped SYN is retried only after a second. Debian's cpp-httplib listens with 5; the server
// raises it to 4096 (capped by net.core.somaxconn), as `ss` shows in the listener's Send-Q.
TEST(Serve, ListensWithABacklogForBursts) {
  TempDir dir("sluice-serve");
  Serve s(dir.path() + "/data", {"--no-workers"});
  int somaxconn = 0;
  std::ifstream("/proc/sys/net/core/somaxconn") >> somaxconn;
  ASSERT_GT(somaxconn, 0);
  const std::string cmd = "ss -Hlnt 'sport = :" + std::to_string(s.port()) + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512] = {0};
  std::string line = std::fgets(buf, sizeof buf, p) ? buf : "";
  ::pclose(p);
  std::istringstream in(line);
  std::string state;
  long recv_q = -1, send_q = -1;
  in >> state >> recv_q >> send_q;
  ASSERT_EQ(state, "LISTEN") << cmd << ": " << line;
  EXPECT_EQ(send_q, std::min(4096, somaxconn)) << line;
}

TEST(Serve, MultipartUploadOfManyFilesWithMetadata) {
  TempDir dir("sluice-serve");
  Serve s(dir.path() + "/data");
  auto c = s.client();
  std::ifstream pdf(kFixtures + "english.pdf", std::ios::binary);
  std::string pdf_bytes((std::istreambuf_iterator<char>(pdf)), std::istreambuf_iterator<char>());
  httplib::MultipartFormDataItems items = {
      {"file", "# 指南\n\n消息队列把上传与处理分开。\n", "指南.md", "text/markdown"},
      {"file", pdf_bytes, "english.pdf", "application/pdf"},
      {"metadata", R"({"project":"sluice"})", "", ""},
  };
  auto r = c.Post("/v1/documents", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json docs = body_of(r)["documents"];
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0]["filename"], "指南.md");
  EXPECT_EQ(docs[1]["filename"], "english.pdf");
  EXPECT_EQ(docs[1]["size"], pdf_bytes.size());
  json md = wait_status(c, docs[0]["doc_id"], {"indexed"});
  json pdfd = wait_status(c, docs[1]["doc_id"], {"indexed"});
  EXPECT_GE(pdfd["pages"].get<int>(), 1);
  auto found = c.Get("/v1/search?q=%E6%B6%88%E6%81%AF%E9%98%9F%E5%88%97&k=1");  // 消息队列
  ASSERT_TRUE(found);
  json hits = body_of(found)["hits"];
  ASSERT_EQ(hits.size(), 1u) << found->body;
  EXPECT_EQ(hits[0]["source"], "指南.md");

  // A caller-given doc_id (one file) is kept.
  httplib::MultipartFormDataItems one = {{"file", "caller named this one", "named.txt", "text/plain"},
                                         {"doc_id", "my-doc.1", "", ""}};
  auto named = c.Post("/v1/documents", one);
  ASSERT_TRUE(named);
  ASSERT_EQ(named->status, 202) << named->body;
  EXPECT_EQ(body_of(named)["documents"][0]["doc_id"], "my-doc.1");
  wait_status(c, "my-doc.1", {"indexed"});
}

TEST(Serve, EveryBadRequestGetsAClearErrorAndLeavesNothing) {
  TempDir dir("sluice-serve");
  const std::string data = dir.path() + "/data";
  Serve s(data, {"--max-file-size", "1KiB", "--max-body-bytes", "4KiB"});
  auto c = s.client();
  const std::string big(2048, 'x');

  expect_error(c.Post("/v1/documents", "x", "text/plain"), 400, "bad_input", "filename");
  expect_error(c.Post("/v1/documents?filename=", "x", "text/plain"), 400, "bad_input", "no name");
  expect_error(c.Post("/v1/documents?filename=a.txt&metadata=%7Bbad", "x", "text/plain"), 400, "bad_input",
               "JSON");
  expect_error(c.Post("/v1/documents?filename=a.txt&metadata=%5B1%5D", "x", "text/plain"), 400, "bad_input",
               "object");
  expect_error(c.Post("/v1/documents?filename=a.txt&doc_id=has%20space", "x", "text/plain"), 400, "bad_input",
               "doc_id");
  expect_error(c.Post("/v1/documents?filename=a%01b.txt", "x", "text/plain"), 400, "bad_input", "control");
  expect_error(c.Post("/v1/documents?filename=%FF%FE.txt", "x", "text/plain"), 400, "bad_input", "UTF-8");
  // A file over max_file_size, raw and in a multipart body; a body over max_body_bytes.
  expect_error(c.Post("/v1/documents?filename=big.txt", big, "text/plain"), 413, "resource_limit",
               "max_file_size");
  httplib::MultipartFormDataItems big_part = {{"file", big, "big.txt", "text/plain"}};
  expect_error(c.Post("/v1/documents", big_part), 413, "resource_limit", "max_file_size");
  expect_error(c.Post("/v1/documents?filename=huge.txt", std::string(8192, 'y'), "text/plain"), 413,
               "resource_limit", "max_body_bytes");
  // Malformed multipart: a body cut short, and a content type without a boundary.
  expect_error(
      c.Post("/v1/documents",
             "--zzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\r\nhello",
             "multipart/form-data; boundary=zzz"),
      400, "bad_input", "multipart");
  expect_error(c.Post("/v1/documents", "--zzz\r\n\r\n", "multipart/form-data"), 400, "bad_input");
  // Multipart without a file; a doc_id with two files; bad metadata in a form field.
  httplib::MultipartFormDataItems no_file = {{"metadata", "{}", "", ""}};
  expect_error(c.Post("/v1/documents", no_file), 400, "bad_input", "no file");
  httplib::MultipartFormDataItems two = {
      {"file", "a", "a.txt", "text/plain"}, {"file", "b", "b.txt", "text/plain"}, {"doc_id", "one", "", ""}};
  expect_error(c.Post("/v1/documents", two), 400, "bad_input", "single file");
  httplib::MultipartFormDataItems bad_meta = {{"file", "a", "a.txt", "text/plain"},
                                              {"metadata", "nope", "", ""}};
  expect_error(c.Post("/v1/documents", bad_meta), 400, "bad_input", "metadata");
  // The other routes.
  expect_error(c.Get("/v1/documents/no-such-doc"), 404, "bad_input", "no-such-doc");
  expect_error(c.Get("/v1/documents?status=bogus"), 400, "bad_input", "stuck");
  expect_error(c.Get("/v1/documents?limit=0"), 400, "bad_input", "limit");
  expect_error(c.Get("/v1/documents?limit=abc"), 400, "bad_input", "limit");
  expect_error(c.Get("/v1/documents?cursor=xyz"), 400, "bad_input", "cursor");
  expect_error(c.Post("/v1/documents/no-such-doc/retry", "", "application/json"), 404, "bad_input");
  expect_error(c.Delete("/v1/documents/no-such-doc"), 404, "bad_input");
  expect_error(c.Get("/v1/search?q=%20"), 400, "bad_input", "empty");
  expect_error(c.Get("/v1/search?q=x&k=0"), 400, "bad_input", "k must");
  expect_error(c.Get("/v1/search?q=x&mode=fuzzy"), 400, "bad_input", "mode");
  expect_error(c.Get("/v1/nothing-here"), 404, "bad_input", "no such route");

  // Nothing was accepted or stored, and the server still serves.
  json stats = body_of(c.Get("/v1/stats"));
  EXPECT_EQ(stats["uploads"]["accepted"], 0) << stats.dump();
  EXPECT_GE(stats["uploads"]["rejected"].get<int>(), 13);
  EXPECT_EQ(stats["documents"]["total"], 0);
  EXPECT_EQ(count_files(data + "/blobs/uploads"), 0u);
  const std::string ok = upload_raw(c, "fine.txt", "a small file that fits");
  wait_status(c, ok, {"indexed"});
  EXPECT_EQ(count_files(data + "/blobs/uploads"), 1u);
}

TEST(Serve, TooManyUploadsAtOnceIs429WithRetryAfter) {
  TempDir dir("sluice-serve");
  Serve s(dir.path() + "/data", {"--max-uploads-in-progress", "1"});
  // One upload that sends half its body and waits: it holds the only slot.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(s.port()));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string head =
      "POST /v1/documents?filename=slow.txt HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Content-Length: 100\r\n\r\nhalf of it";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  auto c = s.client();
  // Only once the server counts the slow upload in progress is the next one bound to be refused;
  // an upload sent earlier could take the slot first and leave the slow one refused instead.
  bool admitted = false;
  for (int i = 0; i < 500 && !admitted; ++i) {
    admitted = body_of(c.Get("/v1/stats"))["uploads"]["in_progress"] == 1;
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(admitted) << "the slow upload never started";
  auto r = c.Post("/v1/documents?filename=second.txt", "second", "text/plain");
  expect_error(r, 429, "resource_limit", "max_uploads_in_progress");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  // Finishing the slow upload frees the slot.
  const std::string rest(90, 'z');
  ASSERT_EQ(::send(fd, rest.data(), rest.size(), 0), static_cast<ssize_t>(rest.size()));
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<size_t>(n)).find("202"), std::string::npos);
  auto after = c.Post("/v1/documents?filename=third.txt", "third", "text/plain");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 202) << after->body;
}

TEST(Serve, FailedDocumentsAreListedRetriedAndDeleted) {
  TempDir dir("sluice-serve");
  Serve s(dir.path() + "/data");
  auto c = s.client();
  // A broken PDF: the parse stage fails it as bad input (no retries).
  const std::string bad = upload_raw(c, "broken.pdf", "%PDF-1.7\nthis is broken beyond repair\n");
  const std::string good = upload_raw(c, "good.txt", "kingfishers nest in the river bank");
  json f = wait_status(c, bad, {"failed"});
  EXPECT_EQ(f["error"]["class"], "bad_input") << f.dump();
  EXPECT_FALSE(f["error"]["message"].get<std::string>().empty());
  wait_status(c, good, {"indexed"});

  json failed = body_of(c.Get("/v1/documents?status=failed"));
  ASSERT_EQ(failed["documents"].size(), 1u) << failed.dump();
  EXPECT_EQ(failed["documents"][0]["doc_id"], bad);
  json indexed = body_of(c.Get("/v1/documents?status=indexed"));
  ASSERT_EQ(indexed["documents"].size(), 1u);

  // Retry sends the task again as a new run; it fails again, with a new trace.
  auto retry = c.Post(("/v1/documents/" + bad + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(retry);
  ASSERT_EQ(retry->status, 202) << retry->body;
  const std::string trace = body_of(retry)["trace_id"];
  EXPECT_NE(trace, f["trace_id"]);
  auto deadline = Clock::now() + std::chrono::seconds(60);
  json again;
  while (Clock::now() < deadline) {
    again = body_of(c.Get(("/v1/documents/" + bad).c_str()));
    if (again["trace_id"] == trace && again["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(again["trace_id"], trace) << again.dump();
  EXPECT_EQ(again["status"], "failed");
  // An indexed document is not retried (upload it again instead).
  expect_error(c.Post(("/v1/documents/" + good + "/retry").c_str(), "", "application/json"), 409, "bad_input",
               "indexed");

  // Delete takes the document out of the index and the status store.
  ASSERT_FALSE(body_of(c.Get("/v1/search?q=kingfishers"))["hits"].empty());
  auto del = c.Delete(("/v1/documents/" + good).c_str());
  ASSERT_TRUE(del);
  ASSERT_EQ(del->status, 200) << del->body;
  EXPECT_EQ(body_of(del)["deleted"], true);
  EXPECT_GE(body_of(del)["chunks_removed"].get<int>(), 1);
  EXPECT_TRUE(body_of(c.Get("/v1/search?q=kingfishers"))["hits"].empty());
  expect_error(c.Get(("/v1/documents/" + good).c_str()), 404, "bad_input");
}

TEST(Serve, DeadLettersAreListedAndReplayedLikeTheCli) {
  TempDir dir("sluice-serve");
  const std::string data = dir.path() + "/data";
  Serve s(data);
  auto c = s.client();
  const std::string bad = upload_raw(c, "broken.pdf", "%PDF-1.7\nthis is broken beyond repair\n");
  wait_status(c, bad, {"failed"});
  json d = body_of(c.Get("/v1/dlq"));
  ASSERT_EQ(d["dead_letters"].size(), 1u) << d.dump();
  json l = d["dead_letters"][0];
  EXPECT_EQ(l["doc_id"], bad);
  EXPECT_EQ(l["topic"], "doc_upload.dlq");
  EXPECT_EQ(l["stage"], "parse");
  EXPECT_EQ(l["error"]["class"], "bad_input");
  EXPECT_EQ(l["replayed"], false);

  expect_error(c.Post("/v1/dlq/replay", "not json", "application/json"), 400, "bad_input", "doc_id");
  expect_error(c.Post("/v1/dlq/replay", R"({"doc_id":"nobody"})", "application/json"), 404, "bad_input");
  auto r = c.Post("/v1/dlq/replay", json{{"doc_id", bad}}.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(body_of(r)["replayed"], 1);
  // The replayed task runs the parse stage again and fails again: a new dead letter waits, the
  // first is marked replayed, and the CLI agrees.
  json now;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    now = body_of(c.Get("/v1/dlq"));
    if (now["dead_letters"].size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(now["dead_letters"].size(), 2u) << now.dump();
  for (const auto& x : now["dead_letters"])
    EXPECT_EQ(x["replayed"], x["offset"] == l["offset"]) << now.dump();
  RunResult cli = run_sluice({"dlq", "list", "--json", "--data", data});
  ASSERT_EQ(cli.exit_code, 0) << describe(cli);
  size_t marked = 0;
  for (const auto& line : split_lines(cli.out)) marked += json::parse(line).value("replayed", false) ? 1 : 0;
  EXPECT_EQ(marked, 1u) << cli.out;
}

TEST(Serve, ListPagesAndStuckDocuments) {
  TempDir dir("sluice-serve");
  // No workers here: the documents stay queued, and become stuck after a second.
  Serve s(dir.path() + "/data", {"--no-workers", "--stuck-after", "1000"});
  auto c = s.client();
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.insert(upload_raw(c, "page-" + std::to_string(i) + ".txt", "text " + std::to_string(i)));
  std::vector<std::string> seen;
  std::string cursor;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (seen.size() < 5 && Clock::now() < deadline) {  // the follower may still be storing them
    seen.clear();
    cursor.clear();
    for (int page = 0; page < 10; ++page) {
      json j =
          body_of(c.Get(("/v1/documents?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor)).c_str()));
      for (const auto& d : j["documents"]) seen.push_back(d["doc_id"]);
      if (!j.contains("next_cursor")) break;
      cursor = j["next_cursor"];
    }
    if (seen.size() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), ids);
  EXPECT_EQ(seen.size(), 5u);
  const std::string one = *ids.begin();
  expect_error(c.Post(("/v1/documents/" + one + "/retry").c_str(), "", "application/json"), 409, "bad_input",
               "queued");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  json stuck = body_of(c.Get("/v1/documents?status=stuck"));
  EXPECT_EQ(stuck["documents"].size(), 5u) << stuck.dump();
  EXPECT_EQ(body_of(c.Get("/v1/stats"))["documents"]["stuck"], 5);
  auto retry = c.Post(("/v1/documents/" + one + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 202) << retry->body;
}

TEST(Serve, TokensGuardTheApi) {
  TempDir dir("sluice-serve");
  const std::string token = "0123456789abcdef0123456789abcdef";
  Serve s(dir.path() + "/data", {}, {{"SLUICE_API_TOKENS", token}});
  auto c = s.client();
  expect_error(c.Get("/v1/stats"), 401, "bad_input", "token");
  httplib::Headers wrong = {{"Authorization", "Bearer not-the-token-at-all-0000"}};
  expect_error(c.Get("/v1/stats", wrong), 401, "bad_input");
  httplib::Headers right = {{"Authorization", "Bearer " + token}};
  auto ok = c.Get("/v1/stats", right);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // A public listener without tokens is refused; a short token too.
  RunResult open = run_sluice(
      {"serve", "--listen", "0.0.0.0:" + std::to_string(free_loopback_port()), "--data", dir.path() + "/x"});
  EXPECT_EQ(open.exit_code, 2) << describe(open);
  EXPECT_NE(open.err.find("needs API tokens"), std::string::npos) << open.err;
  RunResult weak = run_sluice({"serve", "--api-tokens", "short", "--data", dir.path() + "/y"});
  EXPECT_EQ(weak.exit_code, 2) << describe(weak);
  EXPECT_NE(weak.err.find("shorter than 16"), std::string::npos) << weak.err;
  RunResult bad_listen = run_sluice({"serve", "--listen", "nonsense", "--data", dir.path() + "/z"});
  EXPECT_EQ(bad_listen.exit_code, 2) << describe(bad_listen);
  EXPECT_NE(bad_listen.err.find("HOST:PORT"), std::string::npos) << bad_listen.err;
}

TEST(Serve, StatusFollowsAWorkerElsewhereAndSurvivesARestart) {
  TempDir dir("sluice-serve");
  const std::string data = dir.path() + "/data";
  std::string id;
  {
    Serve s(data, {"--no-workers"});
    auto c = s.client();
    id = upload_raw(c, "herons.txt", "grey herons stand still in the shallows");
    json q = wait_status(c, id, {"queued"});
    EXPECT_EQ(q["status"], "queued");
    // A worker process on the same data does the work; the server sees it through the topics.
    BackgroundSluice background({"worker", "--data", data},
                                {.kill_after = std::chrono::milliseconds(120000)});
    json d = wait_status(c, id, {"indexed"});
    const RunResult& worker = background.stop();
    EXPECT_EQ(d["status"], "indexed") << describe(worker);
    RunResult stopped = s.stop();
    EXPECT_EQ(stopped.exit_code, 0) << describe(stopped);
  }
  // A new server on the same data knows the document from its status store.
  Serve again(data, {"--no-workers"});
  auto c = again.client();
  auto r = c.Get(("/v1/documents/" + id).c_str());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_of(r)["status"], "indexed");
  EXPECT_EQ(body_of(r)["timeline"].size(), 4u);
}

}  // namespace
}  // namespace sluice::test
