// HttpClient against a real HTTP server on loopback: retries on 429/5xx with Retry-After, no retry
// on 4xx, the error classes of each failure, timeouts and a server that is not there.
#include "store/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/http_test_server.h"

namespace sluice::store {
namespace {

using namespace std::chrono_literals;

HttpOptions fast_options() {
  HttpOptions o;
  o.service = "test service";
  o.backoff_initial = 5ms;
  o.backoff_max = 20ms;
  o.max_attempts = 4;
  o.request_timeout = 2000ms;
  return o;
}

TEST(HttpClient, PostsJsonAndReadsTheAnswer) {
  testing::HttpTestServer srv;
  std::string got_body, got_type, got_auth;
  srv.server().Post("/api/embed", [&](const httplib::Request& req, httplib::Response& res) {
    got_body = req.body;
    got_type = req.get_header_value("Content-Type");
    got_auth = req.get_header_value("Authorization");
    res.set_content(R"({"ok":true})", "application/json");
  });
  ASSERT_TRUE(srv.start());
  HttpOptions o = fast_options();
  o.headers = {{"Authorization", "Bearer k"}};
  auto c = HttpClient::open(srv.url() + "/", o);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  HttpRequest req;
  req.method = "POST";
  req.path = "/api/embed";
  req.body = R"({"input":["a"]})";
  auto r = (*c)->send(req);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(got_body, req.body);
  EXPECT_EQ(got_type, "application/json");
  EXPECT_EQ(got_auth, "Bearer k");
  EXPECT_EQ(r->headers.at("content-type"), "application/json");
}

TEST(HttpClient, RetriesThrottlingAndHonoursRetryAfter) {
  testing::HttpTestServer srv;
  std::atomic<int> calls{0};
  srv.server().Get("/x", [&](const httplib::Request&, httplib::Response& res) {
    if (calls++ < 2) {
      res.status = 429;
      res.set_header("Retry-After", "0.2");
      return;
    }
    res.set_content("done", "text/plain");
  });
  ASSERT_TRUE(srv.start());
  std::vector<HttpAttempt::Outcome> outcomes;
  HttpOptions o = fast_options();
  o.on_attempt = [&](const HttpAttempt& a) { outcomes.push_back(a.outcome); };
  auto c = HttpClient::open(srv.url(), o);
  ASSERT_TRUE(c.is_ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = (*c)->send({.path = "/x"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_GE(took, 400ms) << "two Retry-After waits of 200 ms, not the 5 ms backoff";
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0], HttpAttempt::Outcome::kThrottled);
  EXPECT_EQ(outcomes[2], HttpAttempt::Outcome::kOk);
}

TEST(HttpClient, ServerErrorsAfterTheLastAttemptAreRetriable) {
  testing::HttpTestServer srv;
  std::atomic<int> calls{0};
  srv.server().Get("/x", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 503;
    res.set_content("model is loading", "text/plain");
  });
  ASSERT_TRUE(srv.start());
  auto c = HttpClient::open(srv.url(), fast_options());
  ASSERT_TRUE(c.is_ok());
  auto r = (*c)->send({.path = "/x?api_key=secret"});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable);
  const std::string m = r.status().message();
  EXPECT_NE(m.find("after 4 attempts"), std::string::npos) << m;
  EXPECT_NE(m.find("answered 503: model is loading"), std::string::npos) << m;
  EXPECT_NE(m.find("test service at " + srv.url() + ": GET /x"), std::string::npos) << m;
  EXPECT_EQ(m.find("secret"), std::string::npos) << "the query stays out of messages: " << m;
}

TEST(HttpClient, ClientErrorsAreNotRetried) {
  testing::HttpTestServer srv;
  std::atomic<int> calls{0};
  srv.server().Post("/bad", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 400;
    res.set_content(R"({"error":"input must be a list"})", "application/json");
  });
  srv.server().Post("/auth", [&](const httplib::Request&, httplib::Response& res) { res.status = 401; });
  srv.server().Post("/big", [&](const httplib::Request&, httplib::Response& res) { res.status = 413; });
  srv.server().Post("/gone", [&](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  ASSERT_TRUE(srv.start());
  HttpOptions o = fast_options();
  o.credentials_hint = "set OPENAI_API_KEY";
  auto c = HttpClient::open(srv.url(), o);
  ASSERT_TRUE(c.is_ok());
  auto bad = (*c)->send({.method = "POST", .path = "/bad", .body = "{}"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(bad.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(bad.status().message().find("input must be a list"), std::string::npos);
  auto auth = (*c)->send({.method = "POST", .path = "/auth", .body = "{}"});
  EXPECT_EQ(auth.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(auth.status().message().find("set OPENAI_API_KEY"), std::string::npos);
  auto big = (*c)->send({.method = "POST", .path = "/big", .body = "{}"});
  EXPECT_EQ(big.status().error_class(), ErrorClass::kResourceLimit);
  auto gone = (*c)->send({.method = "POST", .path = "/gone", .body = "{}"});
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  // send_any hands a final 404 back as an answer.
  auto any = (*c)->send_any({.method = "POST", .path = "/gone", .body = "{}"});
  ASSERT_TRUE(any.is_ok());
  EXPECT_EQ(any->status, 404);
}

TEST(HttpClient, AStalledServerTimesOut) {
  testing::HttpTestServer srv;
  srv.server().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(600ms);
    res.set_content("late", "text/plain");
  });
  ASSERT_TRUE(srv.start());
  HttpOptions o = fast_options();
  o.request_timeout = 150ms;
  o.max_attempts = 2;
  std::vector<HttpAttempt::Outcome> outcomes;
  o.on_attempt = [&](const HttpAttempt& a) { outcomes.push_back(a.outcome); };
  auto c = HttpClient::open(srv.url(), o);
  ASSERT_TRUE(c.is_ok());
  auto r = (*c)->send({.path = "/slow"});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout);
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable);
  EXPECT_EQ(outcomes, std::vector<HttpAttempt::Outcome>(2, HttpAttempt::Outcome::kTimeout));
}

TEST(HttpClient, NoServerIsRetriableAndSaysSo) {
  int port;
  {
    testing::HttpTestServer srv;  // a port that was free a moment ago, now closed
    ASSERT_TRUE(srv.start());
    port = srv.port();
  }
  HttpOptions o = fast_options();
  o.max_attempts = 2;
  auto c = HttpClient::open("http://127.0.0.1:" + std::to_string(port), o);
  ASSERT_TRUE(c.is_ok());
  auto r = (*c)->send({.path = "/"});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable);
  EXPECT_NE(r.status().message().find("is the test service server running?"), std::string::npos)
      << r.status().message();
}

TEST(HttpClient, BadUrlsAreRefused) {
  for (const char* u : {"ftp://h", "http://", "https:///x", "localhost:11434"}) {
    auto c = HttpClient::open(u, fast_options());
    ASSERT_FALSE(c.is_ok()) << u;
    EXPECT_EQ(c.status().error_class(), ErrorClass::kBadInput) << u;
  }
  auto c = HttpClient::open("http://no-such-host.invalid", fast_options());
  ASSERT_TRUE(c.is_ok());
  auto r = (*c)->send({.path = "/"});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << r.status().to_string();
}

TEST(HttpClient, ParsesRetryAfter) {
  EXPECT_EQ(parse_retry_after("3"), std::chrono::milliseconds(3000));
  EXPECT_EQ(parse_retry_after(" 0.5"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon"), std::nullopt);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::milliseconds(0))
      << "in the past";
  auto future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT");
  ASSERT_TRUE(future.has_value());
  EXPECT_GT(*future, std::chrono::hours(24 * 365));
}

}  // namespace
}  // namespace sluice::store
