// The s3:// store's own cases: configuration from the URI and the environment, error translation,
// wrong credentials and a missing bucket (against s3rver), unreachable endpoints, and retries of
// throttling and server errors (against a fake S3 on a loopback socket that answers as told).
#include "store/s3/s3_store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/blob_store.h"
#include "support/require_server.h"
#include "support/s3rver.h"

namespace sluice::store {
namespace {

using testing::ScopedEnv;

// No S3 variable of the machine's leaks into a test; the given ones are set.
ScopedEnv clean_env(const char* access, const char* secret) {
  return ScopedEnv({{"AWS_ACCESS_KEY_ID", access},
                    {"AWS_SECRET_ACCESS_KEY", secret},
                    {"AWS_SESSION_TOKEN", nullptr},
                    {"AWS_ENDPOINT_URL", nullptr},
                    {"AWS_REGION", nullptr},
                    {"AWS_DEFAULT_REGION", nullptr},
                    {"OBS_ACCESS_KEY", nullptr},
                    {"OBS_SECRET_KEY", nullptr},
                    {"OBS_SERVER", nullptr},
                    {"OBS_REGION", nullptr}});
}

// A small HTTP/1.1 server on loopback answering each request with what the handler returns (a
// full response). Connections stay open between requests, as S3's do, so tests can count them.
class FakeS3 {
 public:
  struct Seen {
    std::string method, target;
    size_t body_size = 0;
    int connection = 0;  // 1 for the first connection accepted, and so on
  };
  using Handler = std::function<std::string(const Seen&, int n)>;

  explicit FakeS3(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeS3() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  int connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }

  static std::string response(int status, const std::string& reason, const std::string& body,
                              const std::string& extra_headers = "") {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
  }
  static std::string error(int status, const std::string& reason, const std::string& code) {
    return response(status, reason,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                        "</Code><Message>told to fail with " + code + "</Message></Error>",
                    "Content-Type: application/xml\r\n");
  }

 private:
  struct Conn {
    int fd;
    int id;
    std::string data;
  };

  // A whole request at the front of c.data: answer it and drop it from the buffer.
  bool answer_one(Conn& c) {
    size_t head_end = c.data.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    std::string head = c.data.substr(0, head_end);
    for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t cl = head.find("content-length:");
    size_t body = cl == std::string::npos ? 0 : std::strtoull(head.c_str() + cl + 15, nullptr, 10);
    if (c.data.size() < head_end + 4 + body) return false;
    Seen s;
    s.body_size = body;
    s.connection = c.id;
    size_t sp1 = c.data.find(' '), sp2 = c.data.find(' ', sp1 + 1);
    s.method = c.data.substr(0, sp1);
    s.target = c.data.substr(sp1 + 1, sp2 - sp1 - 1);
    c.data.erase(0, head_end + 4 + body);
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(s);
      n = static_cast<int>(seen_.size());
    }
    const std::string out = handler_(s, n);
    ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    return true;
  }

  void serve() {
    std::vector<Conn> conns;
    while (!stop_) {
      std::vector<pollfd> p = {{fd_, POLLIN, 0}};
      for (const Conn& c : conns) p.push_back({c.fd, POLLIN, 0});
      if (::poll(p.data(), p.size(), 50) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          std::lock_guard<std::mutex> lock(mu_);
          conns.push_back({c, ++accepted_, ""});
        }
      }
      for (size_t i = 1; i < p.size(); ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        Conn& c = conns[i - 1];
        char buf[65536];
        ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r <= 0) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
        c.data.append(buf, static_cast<size_t>(r));
        while (answer_one(c)) {
        }
      }
      conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return c.fd < 0; }),
                  conns.end());
    }
    for (const Conn& c : conns) ::close(c.fd);
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  int accepted_ = 0;
};

// Nothing listens there: the port was free a moment ago.
int closed_port() {
  return testing::free_loopback_port();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(S3Store, ErrorTranslation) {
  using s3::Outcome;
  const std::string ep = "http://h:1";
  auto tr = [&](Outcome o) { return s3::translate_error("get", "s3://b/k", "b", ep, o); };
  Status nf = tr({0, "", 404, "NoSuchKey", "The specified key does not exist."});
  EXPECT_EQ(nf.code(), Code::kNotFound);
  EXPECT_EQ(nf.error_class(), ErrorClass::kRetriable);
  EXPECT_TRUE(contains(nf.message(), "get s3://b/k at http://h:1")) << nf.message();
  Status head404 = tr({0, "", 404, "", ""});  // HEAD answers carry no body
  EXPECT_EQ(head404.code(), Code::kNotFound);
  Status nb = tr({0, "", 404, "NoSuchBucket", "The specified bucket does not exist"});
  EXPECT_EQ(nb.error_class(), ErrorClass::kBadInput);
  EXPECT_TRUE(contains(nb.message(), "bucket 'b'")) << nb.message();
  for (const char* code : {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}) {
    Status st = tr({0, "", 403, code, "no"});
    EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << code;
    EXPECT_TRUE(contains(st.message(), "OBS_ACCESS_KEY/OBS_SECRET_KEY")) << st.message();
    EXPECT_TRUE(contains(st.message(), code)) << st.message();
  }
  Status busy = tr({0, "", 503, "SlowDown", "Please reduce your request rate."});
  EXPECT_EQ(busy.error_class(), ErrorClass::kRetriable);
  EXPECT_EQ(tr({0, "", 500, "InternalError", ""}).error_class(), ErrorClass::kRetriable);
  EXPECT_EQ(tr({0, "", 400, "RequestTimeout", ""}).error_class(), ErrorClass::kRetriable);
  EXPECT_EQ(tr({0, "", 400, "InvalidArgument", ""}).error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(tr({CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: h", 0, "", ""}).error_class(),
            ErrorClass::kBadInput);
  Status refused = tr({CURLE_COULDNT_CONNECT, "Failed to connect", 0, "", ""});
  EXPECT_EQ(refused.error_class(), ErrorClass::kRetriable);
  EXPECT_TRUE(contains(refused.message(), ep)) << refused.message();
  EXPECT_EQ(tr({CURLE_OPERATION_TIMEDOUT, "", 0, "", ""}).code(), Code::kTimeout);

  EXPECT_TRUE(s3::retriable({0, "", 503, "", ""}));
  EXPECT_TRUE(s3::retriable({0, "", 429, "", ""}));
  EXPECT_TRUE(s3::retriable({0, "", 400, "SlowDown", ""}));
  EXPECT_TRUE(s3::retriable({CURLE_COULDNT_CONNECT, "", 0, "", ""}));
  EXPECT_FALSE(s3::retriable({CURLE_COULDNT_RESOLVE_HOST, "", 0, "", ""}));
  EXPECT_FALSE(s3::retriable({0, "", 403, "AccessDenied", ""}));
  EXPECT_FALSE(s3::retriable({0, "", 404, "NoSuchKey", ""}));
}

TEST(S3Store, NoCredentialsIsAClearError) {
  auto env = clean_env(nullptr, nullptr);
  auto s = open_blob_store("s3://bucket/prefix?endpoint=http://127.0.0.1:1");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().error_class(), ErrorClass::kBadInput);
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OBS_ACCESS_KEY", "OBS_SECRET_KEY"}) {
    EXPECT_TRUE(contains(s.status().message(), v)) << s.status().message();
  }
}

TEST(S3Store, BadUrisAreBadInput) {
  auto env = clean_env("k", "s");
  for (const char* uri : {"s3://", "s3:///prefix", "s3://Upper_Case", "s3://b?colour=red", "s3://b?retries=x",
                          "s3://b?path_style=yes", "s3://b?endpoint=ftp://host", "s3://b/a/../c"}) {
    auto s = open_blob_store(uri);
    ASSERT_FALSE(s.is_ok()) << uri;
    EXPECT_EQ(s.status().error_class(), ErrorClass::kBadInput) << uri << ": " << s.status().to_string();
  }
  auto ok = open_blob_store("s3://bucket/some/prefix/?region=eu-west-1");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(*(*ok)->uri_of("x/y"), "s3://bucket/some/prefix/x/y");
  // Any key of the store's bucket is accepted; another bucket's is refused.
  EXPECT_EQ((*ok)->get("s3://other/some/prefix/x").status().error_class(), ErrorClass::kBadInput);
  EXPECT_EQ((*ok)->stat("file:/etc/passwd").status().error_class(), ErrorClass::kBadInput);
}

class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sluice::testing::skip_for_missing_program(testing::S3rver::installed(), testing::S3rver::program()))
      GTEST_SKIP() << testing::S3rver::program() << " is missing (npm ci)";
    auto server = testing::S3rver::shared();
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    server_ = *server;
  }
  testing::S3rver* server_ = nullptr;
};

// s3rver checks the access key (it does not recompute SigV4 signatures, so a wrong secret alone
// passes there; S3 and OBS answer SignatureDoesNotMatch, which ErrorTranslation covers).
TEST_F(S3ServerTest, WrongCredentialsAreBadInput) {
  auto env = clean_env("NOT-A-KEY", "whatever");
  auto s = open_blob_store(server_->uri("creds"));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto p = (*s)->put("k", "v");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().error_class(), ErrorClass::kBadInput) << p.status().to_string();
  EXPECT_TRUE(contains(p.status().message(), "InvalidAccessKeyId")) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), "credentials")) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), server_->endpoint())) << p.status().message();
}

TEST_F(S3ServerTest, ObsVariablesWork) {
  auto env = clean_env(nullptr, nullptr);
  ScopedEnv obs({{"OBS_ACCESS_KEY", testing::S3rver::kAccessKey},
                 {"OBS_SECRET_KEY", testing::S3rver::kSecretKey},
                 {"OBS_SERVER", server_->endpoint().c_str()}});
  auto s = open_blob_store("s3://" + server_->bucket() + "/obs");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto p = (*s)->put("k", "v");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(*(*s)->get(p->uri), "v");
}

// OBS_SERVER may be a bare host, which means https; s3rver speaks plain HTTP, so the TLS handshake
// fails, and the message shows the https endpoint that was tried.
TEST_F(S3ServerTest, BareObsServerMeansHttps) {
  auto env = clean_env(nullptr, nullptr);
  const std::string host = "127.0.0.1:" + std::to_string(server_->port());
  ScopedEnv obs({{"OBS_ACCESS_KEY", "S3RVER"}, {"OBS_SECRET_KEY", "S3RVER"}, {"OBS_SERVER", host.c_str()}});
  auto s = open_blob_store("s3://" + server_->bucket() + "?retries=0");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto p = (*s)->put("k", "v");
  ASSERT_FALSE(p.is_ok());
  EXPECT_TRUE(contains(p.status().message(), "https://" + host)) << p.status().message();
}

TEST_F(S3ServerTest, MissingBucketIsBadInputNamingIt) {
  auto env = clean_env(testing::S3rver::kAccessKey, testing::S3rver::kSecretKey);
  auto s = open_blob_store("s3://no-such-bucket/p?endpoint=" + server_->endpoint());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  for (const Status& st : {(*s)->put("k", "v").status(), (*s)->get("s3://no-such-bucket/p/k").status(),
                           (*s)->list("", "", 10).status()}) {
    ASSERT_FALSE(st.is_ok());
    EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
    EXPECT_TRUE(contains(st.message(), "no-such-bucket")) << st.message();
    EXPECT_TRUE(contains(st.message(), "NoSuchBucket")) << st.message();
  }
}

TEST(S3Store, ClosedPortIsRetriableNamingTheEndpoint) {
  auto env = clean_env("k", "s");
  const std::string ep = "http://127.0.0.1:" + std::to_string(closed_port());
  auto s = open_blob_store("s3://bucket/p?retries=1&endpoint=" + ep);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto p = (*s)->put("k", "v");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().error_class(), ErrorClass::kRetriable) << p.status().to_string();
  EXPECT_TRUE(contains(p.status().message(), ep)) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), "put s3://bucket/p/k")) << p.status().message();
}

TEST(S3Store, UnresolvableHostIsBadInput) {
  auto env = clean_env("k", "s");
  auto s = open_blob_store("s3://bucket?endpoint=http://sluice-no-such-host.invalid");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto g = (*s)->get("s3://bucket/k");
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().error_class(), ErrorClass::kBadInput) << g.status().to_string();
  EXPECT_TRUE(contains(g.status().message(), "sluice-no-such-host.invalid")) << g.status().message();
}

TEST(S3Store, ThrottlingIsRetriedThenSucceeds) {
  auto env = clean_env("k", "s");
  FakeS3 fake([](const FakeS3::Seen& s, int n) {
    if (n <= 2) return FakeS3::error(503, "Slow Down", "SlowDown");
    return FakeS3::response(200, "OK", "", "ETag: \"abc\"\r\n");
  });
  auto s = open_blob_store("s3://bucket/p?endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto p = (*s)->put("k", "payload");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  auto seen = fake.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& r : seen) {
    EXPECT_EQ(r.method, "PUT");
    EXPECT_EQ(r.target, "/bucket/p/k");  // path style for a custom endpoint
  }
}

TEST(S3Store, ServerErrorsExhaustRetries) {
  auto env = clean_env("k", "s");
  FakeS3 fake(
      [](const FakeS3::Seen&, int) { return FakeS3::error(500, "Internal Server Error", "InternalError"); });
  auto s = open_blob_store("s3://bucket?retries=2&endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto g = (*s)->get("s3://bucket/k");
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().error_class(), ErrorClass::kRetriable) << g.status().to_string();
  EXPECT_TRUE(contains(g.status().message(), "InternalError")) << g.status().message();
  EXPECT_TRUE(contains(g.status().message(), fake.endpoint())) << g.status().message();
  EXPECT_EQ(fake.seen().size(), 3u);  // the first try and two retries
  // Not found is not retried.
  FakeS3 missing([](const FakeS3::Seen&, int) { return FakeS3::error(404, "Not Found", "NoSuchKey"); });
  auto m = open_blob_store("s3://bucket?endpoint=" + missing.endpoint());
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ((*m)->get("s3://bucket/k").status().code(), Code::kNotFound);
  EXPECT_EQ(missing.seen().size(), 1u);
}

// s3rver does not implement AbortMultipartUpload; this checks the writer sends it when a part fails.
TEST(S3Store, FailedPartAbortsTheUpload) {
  auto env = clean_env("k", "s");
  FakeS3 fake([](const FakeS3::Seen& s, int) {
    if (s.method == "POST") {
      return FakeS3::response(200, "OK",
                              "<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key>"
                              "<UploadId>UP1</UploadId></InitiateMultipartUploadResult>");
    }
    if (s.method == "PUT") return FakeS3::error(400, "Bad Request", "InvalidArgument");
    return FakeS3::response(204, "No Content", "");
  });
  auto s = open_blob_store("s3://bucket?endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  {
    auto w = (*s)->open_writer("k", BlobStore::NewBlob::kReplace);
    ASSERT_TRUE(w.is_ok());
    Status st = (*w)->append(std::string(9u << 20, 'x'));
    EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
    EXPECT_TRUE(contains(st.message(), "upload part 1")) << st.message();
  }
  auto seen = fake.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/bucket/k?uploads=");
  EXPECT_EQ(seen[1].target, "/bucket/k?partNumber=1&uploadId=UP1");
  EXPECT_EQ(seen[2].method, "DELETE");
  EXPECT_EQ(seen[2].target, "/bucket/k?uploadId=UP1");
}

// Writers and put_file switch to a multipart upload above one 8 MiB part, and stay with one PUT
// below it; every request goes over the one kept-alive connection.
TEST(S3Store, MultipartAboveOnePartOverOneConnection) {
  auto env = clean_env("k", "s");
  FakeS3 fake([](const FakeS3::Seen& s, int) {
    if (s.method == "POST" && s.target.ends_with("?uploads=")) {
      return FakeS3::response(
          200, "OK",
          "<InitiateMultipartUploadResult><UploadId>UP7</UploadId></InitiateMultipartUploadResult>");
    }
    if (s.method == "POST") {
      return FakeS3::response(
          200, "OK", "<CompleteMultipartUploadResult><ETag>\"e-3\"</ETag></CompleteMultipartUploadResult>");
    }
    return FakeS3::response(200, "OK", "", "ETag: \"p\"\r\n");
  });
  auto s = open_blob_store("s3://bucket/pre?endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto w = (*s)->open_writer("big", BlobStore::NewBlob::kReplace);
  ASSERT_TRUE(w.is_ok());
  const std::string mib(1u << 20, 'm');
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*w)->append(mib).is_ok());
  auto ref = (*w)->commit();
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  EXPECT_EQ(ref->size, 20u << 20);
  auto small = (*s)->put("small", "tiny");
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();

  auto seen = fake.seen();
  std::vector<std::string> lines;
  for (const auto& r : seen) lines.push_back(r.method + " " + r.target + " " + std::to_string(r.body_size));
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "POST /bucket/pre/big?uploads= 0",
                       "PUT /bucket/pre/big?partNumber=1&uploadId=UP7 8388608",
                       "PUT /bucket/pre/big?partNumber=2&uploadId=UP7 8388608",
                       "PUT /bucket/pre/big?partNumber=3&uploadId=UP7 4194304",
                       "POST /bucket/pre/big?uploadId=UP7 " +
                           std::to_string(seen.size() > 4 ? seen[4].body_size : 0),
                       "PUT /bucket/pre/small 4",
                   }));
  EXPECT_EQ(fake.connections(), 1) << "connections are not reused";
}

// A 200 answer to CompleteMultipartUpload may still carry an <Error>: that is a failed put.
TEST(S3Store, ErrorInsideCompleteAnswerFails) {
  auto env = clean_env("k", "s");
  FakeS3 fake([](const FakeS3::Seen& s, int) {
    if (s.method == "POST" && s.target.ends_with("?uploads=")) {
      return FakeS3::response(
          200, "OK", "<InitiateMultipartUploadResult><UploadId>U</UploadId></InitiateMultipartUploadResult>");
    }
    if (s.method == "POST")
      return FakeS3::response(200, "OK", "<Error><Code>InvalidPart</Code><Message>no</Message></Error>");
    return FakeS3::response(200, "OK", "", "ETag: \"p\"\r\n");
  });
  auto s = open_blob_store("s3://bucket?endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok());
  auto w = (*s)->open_writer("k", BlobStore::NewBlob::kReplace);
  ASSERT_TRUE(w.is_ok());
  ASSERT_TRUE((*w)->append(std::string(9u << 20, 'x')).is_ok());
  auto ref = (*w)->commit();
  ASSERT_FALSE(ref.is_ok());
  EXPECT_TRUE(contains(ref.status().message(), "InvalidPart")) << ref.status().message();
}

// Retry-After from a 503 is honoured (here 1 s) instead of the 100 ms base delay.
TEST(S3Store, RetryAfterIsHonoured) {
  auto env = clean_env("k", "s");
  FakeS3 fake([](const FakeS3::Seen&, int n) {
    if (n == 1) {
      return FakeS3::response(503, "Service Unavailable", "", "Retry-After: 1\r\n");
    }
    return FakeS3::response(200, "OK", "v");
  });
  auto s = open_blob_store("s3://bucket?endpoint=" + fake.endpoint());
  ASSERT_TRUE(s.is_ok());
  const auto start = std::chrono::steady_clock::now();
  auto g = (*s)->get("s3://bucket/k");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(*g, "v");
  EXPECT_GE(waited, std::chrono::milliseconds(950));
  EXPECT_EQ(fake.seen().size(), 2u);
}

}  // namespace
}  // namespace sluice::store
