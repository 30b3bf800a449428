// The HTTP embedders (ollama://, openai://) against a fake embedding service on loopback
// (tests/support/fake_embed_server.h): both APIs' round trips, batching and the byte cap, retries
// with Retry-After, the adaptive concurrency limit (unit-tested on its own, then falling under
// throttling and rising again over HTTP), timeouts, every bad input with its class and message,
// several threads sharing one limit, and the local index refusing another dimension.
#include "embed/http_embedder.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "embed/embedder.h"
#include "index/index.h"
#include "support/fake_embed_server.h"

namespace sluice::embed {
namespace {

using namespace std::chrono_literals;
using testing::FakeEmbedServer;
using Clock = std::chrono::steady_clock;

// A getenv over a map, so tests never read or change the real environment.
std::function<const char*(const char*)> env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

Result<HttpEmbedderOptions> parse(const std::string& uri, std::map<std::string, std::string> env = {}) {
  return parse_http_embedder_uri(uri, env_of(std::move(env)));
}

// Opens an embedder with test-speed backoff (the URI's other settings as given).
Result<std::unique_ptr<HttpEmbedder>> open_http(const std::string& uri,
                                                std::map<std::string, std::string> env = {}) {
  SLUICE_ASSIGN_OR_RETURN(HttpEmbedderOptions o, parse(uri, std::move(env)));
  o.backoff_initial = 5ms;
  o.backoff_max = 20ms;
  return HttpEmbedder::open(std::move(o));
}

std::vector<std::string> make_texts(size_t n, const std::string& stem = "text") {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(stem + " number " + std::to_string(i) + " 中文 " + std::to_string(i * 7));
  return out;
}

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// Every vector is the server's vector for its text, normalised, in input order.
void expect_vectors(const std::vector<std::string>& texts, const std::vector<float>& got, size_t dim) {
  ASSERT_EQ(got.size(), texts.size() * dim);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> want = FakeEmbedServer::unit_vector_for(texts[i], dim);
    double norm = 0;
    for (size_t d = 0; d < dim; ++d) {
      norm += static_cast<double>(got[i * dim + d]) * got[i * dim + d];
      ASSERT_NEAR(got[i * dim + d], want[d], 1e-5) << "text " << i << " dim " << d;
    }
    ASSERT_NEAR(norm, 1.0, 1e-4) << "text " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// The limiter alone: deterministic, no network.

TEST(AdaptiveLimiter, HalvesOncePerWindowNeverBelowOneAndRisesByOnePerWindow) {
  std::vector<std::pair<size_t, std::string>> changes;
  AdaptiveLimiter lim({.initial = 4, .max = 6},
                      [&](size_t l, std::string_view why) { changes.emplace_back(l, std::string(why)); });
  EXPECT_EQ(lim.limit(), 4u);
  auto sent = Clock::now();
  lim.on_congestion(sent, "throttled");
  EXPECT_EQ(lim.limit(), 2u);
  // Three more 429s to requests of the same window: already accounted for.
  for (int i = 0; i < 3; ++i) lim.on_congestion(sent, "throttled");
  EXPECT_EQ(lim.limit(), 2u);
  std::this_thread::sleep_for(2ms);
  lim.on_congestion(Clock::now(), "timeout");
  EXPECT_EQ(lim.limit(), 1u);
  std::this_thread::sleep_for(2ms);
  lim.on_congestion(Clock::now(), "timeout");
  EXPECT_EQ(lim.limit(), 1u) << "never below 1";

  // Raises need callers that want more than the limit: hold all the permits.
  auto successes_while_full = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const size_t l = lim.limit();
      for (size_t k = 0; k < l; ++k) lim.acquire();
      lim.on_success(10);
      for (size_t k = 0; k < l; ++k) lim.release();
    }
  };
  successes_while_full(1);
  EXPECT_EQ(lim.limit(), 2u) << "one window (1 success) at limit 1";
  successes_while_full(1);
  EXPECT_EQ(lim.limit(), 2u) << "a window at limit 2 is 2 successes";
  successes_while_full(1);
  EXPECT_EQ(lim.limit(), 3u);
  successes_while_full(100);
  EXPECT_EQ(lim.limit(), 6u) << "capped by max";
  auto st = lim.stats();
  EXPECT_EQ(st.min_limit, 1u);
  EXPECT_EQ(st.max_limit, 6u);
  EXPECT_EQ(st.cuts, 3u);  // 4→2, 2→1, and the one at 1 (counted, no change)
  EXPECT_EQ(st.raises, 5u);
  ASSERT_GE(changes.size(), 2u);
  EXPECT_EQ(changes[0], (std::pair<size_t, std::string>{2, "throttled"}));
  EXPECT_EQ(changes[1], (std::pair<size_t, std::string>{1, "timeout"}));
  EXPECT_EQ(changes.back().second, "keeping up");
}

TEST(AdaptiveLimiter, AnUnusedLimitOrAGrowingLatencyIsNotRaised) {
  AdaptiveLimiter lim({.initial = 2, .max = 8});
  // One caller at a time never fills a limit of 2: no evidence the service takes more.
  for (int i = 0; i < 50; ++i) {
    lim.acquire();
    lim.on_success(10);
    lim.release();
  }
  EXPECT_EQ(lim.limit(), 2u);
  // Full, but the service slows down (10 ms → 500 ms): hold.
  for (int i = 0; i < 20; ++i) {
    lim.acquire();
    lim.acquire();
    lim.on_success(500);
    lim.release();
    lim.release();
  }
  EXPECT_EQ(lim.limit(), 2u);
}

TEST(AdaptiveLimiter, AcquireWaitsForAFreeSlot) {
  AdaptiveLimiter lim({.initial = 1, .max = 1});
  lim.acquire();
  std::atomic<bool> got{false};
  std::thread t([&] {
    lim.acquire();
    got = true;
    lim.release();
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(got.load()) << "the only slot is taken";
  lim.release();
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(lim.stats().peak_in_flight, 1u);
}

// ---------------------------------------------------------------------------------------------
// URIs

TEST(HttpEmbedderUri, GoodUris) {
  auto o = parse("ollama://10.0.0.5/nomic-embed-text");
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->api, HttpApi::kOllama);
  EXPECT_EQ(o->base_url, "http://10.0.0.5:11434");
  EXPECT_EQ(o->model, "nomic-embed-text");
  EXPECT_EQ(o->dimensions, 0u);
  EXPECT_EQ(o->batch, 16u);
  EXPECT_EQ(o->concurrency.initial, 4u);
  EXPECT_EQ(o->concurrency.max, 8u);

  o = parse(
      "ollama://h:8080/dengcao/"
      "Qwen3-Embedding-8B:Q8_0?batch=8&max_concurrency=2&timeout_ms=3000&keep_alive=-1");
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->base_url, "http://h:8080");
  EXPECT_EQ(o->model, "dengcao/Qwen3-Embedding-8B:Q8_0");
  EXPECT_EQ(o->batch, 8u);
  EXPECT_EQ(o->concurrency.max, 2u);
  EXPECT_EQ(o->concurrency.initial, 2u) << "clipped to the maximum";
  EXPECT_EQ(o->timeout, 3000ms);
  EXPECT_EQ(o->keep_alive, "-1");
  EXPECT_TRUE(o->api_key.empty());

  o = parse("openai://127.0.0.1:8000/v1?model=BAAI/bge-m3&dimensions=1024", {{"OPENAI_API_KEY", "sk-o"}});
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->api, HttpApi::kOpenAi);
  EXPECT_EQ(o->base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(o->model, "BAAI/bge-m3");
  EXPECT_EQ(o->dimensions, 1024u);
  EXPECT_EQ(o->api_key, "sk-o");
  EXPECT_EQ(o->api_key_var, "OPENAI_API_KEY");

  o = parse("openais://api.openai.com/v1?model=text-embedding-3-small",
            {{"OPENAI_API_KEY", "sk-o"}, {"SLUICE_EMBEDDER_API_KEY", "sk-s"}});
  ASSERT_TRUE(o.is_ok());
  EXPECT_EQ(o->base_url, "https://api.openai.com/v1");
  EXPECT_EQ(o->api_key, "sk-s") << "sluice's own variable first";
  o = parse("openai://gw.example.com/openai/v2/?model=m&tls=1&api_key_env=GW_KEY", {{"GW_KEY", "k"}});
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->base_url, "https://gw.example.com/openai/v2");
  EXPECT_EQ(o->api_key, "k");
  o = parse("openai://h?model=m");
  ASSERT_TRUE(o.is_ok());
  EXPECT_EQ(o->base_url, "http://h/v1");
  // An OpenAI key is never sent to an Ollama server; sluice's own variable is.
  o = parse("ollama://h/m", {{"OPENAI_API_KEY", "sk-o"}});
  ASSERT_TRUE(o.is_ok());
  EXPECT_TRUE(o->api_key.empty());
  o = parse("ollama://h/m", {{"SLUICE_EMBEDDER_API_KEY", "sk-s"}});
  EXPECT_EQ(o->api_key, "sk-s");
}

TEST(HttpEmbedderUri, BadUrisAreBadInputAtOpen) {
  struct Case {
    std::string uri;
    std::string says;
  };
  const Case cases[] = {
      {"ollama://127.0.0.1:11434", "names no model"},
      {"ollama://127.0.0.1:11434/", "names no model"},
      {"openai://127.0.0.1:8000/v1", "names no model"},
      {"ollama://127.0.0.1:99999/m", "port '99999'"},
      {"ollama://127.0.0.1:http/m", "port 'http'"},
      {"ollama:///m", "names no host"},
      {"ollama://h/m?bogus=1", "unknown ollama embedder setting 'bogus'"},
      {"ollama://h/m?batch=0", "batch"},
      {"openai://h/v1?model=m&tls=maybe", "tls"},
      {"openai://h/v1?model=m&api_key_env=NOPE_KEY", "the environment has no NOPE_KEY"},
  };
  for (const Case& c : cases) {
    auto e = open_embedder(c.uri);  // the real dispatch: nothing is contacted
    ASSERT_FALSE(e.is_ok()) << c.uri;
    EXPECT_EQ(e.status().error_class(), ErrorClass::kBadInput) << c.uri << ": " << e.status().to_string();
    EXPECT_NE(e.status().message().find(c.says), std::string::npos) << c.uri << ": " << e.status().message();
  }
  auto e = open_embedder("grpc://h/m");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(e.status().message().find("ollama://"), std::string::npos) << e.status().message();
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(HttpEmbedder, OllamaRoundTripLearnsTheDimensionAndNormalises) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_embedder("ollama://" + srv.hostport() + "/test-model");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(srv.requests(), 1) << "one probe";
  EXPECT_EQ((*e)->dimension(), 16u);
  EXPECT_EQ((*e)->name(), "ollama:test-model:16");
  std::vector<std::string> texts = {"hello world", "消息队列 解析 工作进程", ""};
  std::vector<float> out = {42.0f};  // appended to, not replaced
  auto v = views(texts);
  ASSERT_TRUE((*e)->embed(v, &out).is_ok());
  ASSERT_EQ(out.size(), 1 + 3 * 16u);
  EXPECT_EQ(out[0], 42.0f);
  expect_vectors(texts, std::vector<float>(out.begin() + 1, out.end()), 16);
  auto log = srv.log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].path, "/api/embed");
  EXPECT_EQ(log[1].body["model"], "test-model");
  EXPECT_EQ(log[1].body["input"], nlohmann::json(texts));
  EXPECT_EQ(log[1].body["truncate"], true);
  EXPECT_FALSE(log[1].body.contains("keep_alive"));
  EXPECT_TRUE(log[1].authorization.empty());
  // ":latest" is the same model, so the same name (and the same index).
  auto latest = open_embedder("ollama://" + srv.hostport() + "/test-model:latest?keep_alive=5m");
  ASSERT_TRUE(latest.is_ok()) << latest.status().to_string();
  EXPECT_EQ((*latest)->name(), "ollama:test-model:16");
  EXPECT_EQ(srv.log().back().body["keep_alive"], "5m");
}

TEST(HttpEmbedder, OpenAiRoundTripOrdersByIndexAndSendsTheKey) {
  FakeEmbedServer srv;
  srv.shuffle = true;
  srv.require_key("sk-test");
  srv.set_model("text-embedding-3-small", 64);
  ASSERT_TRUE(srv.start());
  auto e = open_http("openai://" + srv.hostport() + "/v1?model=text-embedding-3-small&dimensions=24",
                     {{"OPENAI_API_KEY", "sk-test"}});
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(srv.requests(), 0) << "dimensions given: no probe";
  EXPECT_EQ((*e)->name(), "openai:text-embedding-3-small:24");
  std::vector<std::string> texts = make_texts(10);
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 24);  // reversed `data`, put back by index
  auto log = srv.log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].path, "/v1/embeddings");
  EXPECT_EQ(log[0].authorization, "Bearer sk-test");
  EXPECT_EQ(log[0].body["encoding_format"], "float");
  EXPECT_EQ(log[0].body["dimensions"], 24);
  EXPECT_EQ(log[0].inputs, 10u);
}

// ---------------------------------------------------------------------------------------------
// Batching

TEST(HttpEmbedder, ABigCallIsCutIntoBatchesSentConcurrently) {
  FakeEmbedServer srv;
  srv.latency_ms = 5;  // so the batches overlap at the server
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() + "/test-model?batch=64&dimensions=16");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::vector<std::string> texts = make_texts(1000);
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  auto log = srv.log();
  EXPECT_EQ(log.size(), 16u) << "ceil(1000 / 64)";
  size_t total = 0;
  for (const auto& r : log) {
    EXPECT_LE(r.inputs, 64u);
    total += r.inputs;
  }
  EXPECT_EQ(total, 1000u);
  EXPECT_GT(srv.max_in_flight(), 1) << "batches went out concurrently";
  EXPECT_LE(srv.max_in_flight(), 8) << "within max_concurrency";
}

TEST(HttpEmbedder, RequestsStayUnderTheByteCap) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_http("openai://" + srv.hostport() + "/v1?model=test-model&batch=64&max_request_bytes=4KiB");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(std::string(150, 'a' + i % 26) + " " + std::to_string(i));
  texts.push_back(std::string(10000, 'z'));  // longer than the cap: goes alone
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  auto log = srv.log();
  size_t total = 0, over = 0;
  for (size_t i = 1; i < log.size(); ++i) {  // [0] is the probe
    total += log[i].inputs;
    if (log[i].body_bytes > 4096) {
      ++over;
      EXPECT_EQ(log[i].inputs, 1u) << "only a text longer than the cap goes over it, alone";
    }
  }
  EXPECT_EQ(total, texts.size());
  EXPECT_EQ(over, 1u);
  // ~160 bytes per text: about 25 per request, so well over 201 / 64 requests.
  EXPECT_GE(log.size() - 1, 9u);
}

// ---------------------------------------------------------------------------------------------
// Retries and the adaptive limit

TEST(HttpEmbedder, ThrottlingAndServerErrorsAreRetriedThenSucceed) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() + "/test-model");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::vector<std::string> texts = make_texts(3);
  const int before = srv.requests();
  srv.throttle_next = 2;
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  EXPECT_EQ(srv.requests() - before, 3);
  srv.fail_next = 2;
  srv.fail_status = 503;
  out.clear();
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  EXPECT_EQ(srv.requests() - before, 6);
  srv.fail_next = 1;
  srv.fail_status = 500;
  out.clear();
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  EXPECT_EQ(srv.requests() - before, 8);
  // Past the last attempt: retriable, saying how many attempts it took.
  srv.fail_next = 100;
  srv.fail_status = 502;
  auto few = open_http("ollama://" + srv.hostport() + "/test-model?dimensions=16&max_attempts=3");
  ASSERT_TRUE(few.is_ok());
  Status st = (*few)->embed(views(texts), &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kRetriable) << st.to_string();
  EXPECT_NE(st.message().find("after 3 attempts"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("502"), std::string::npos) << st.message();
  srv.fail_next = 0;
}

TEST(HttpEmbedder, RetryAfterIsHonoured) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() + "/test-model?dimensions=16");
  ASSERT_TRUE(e.is_ok());
  srv.retry_after_ms = 1200;
  srv.throttle_next = 1;
  std::vector<std::string> texts = make_texts(2);
  std::vector<float> out;
  const auto t0 = Clock::now();
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  // The test's backoff is 5 ms; only Retry-After makes it wait this long.
  EXPECT_GE(Clock::now() - t0, 1100ms);
  EXPECT_EQ(srv.requests(), 2);
}

TEST(HttpEmbedder, TheLimitFallsUnderThrottlingAndRisesAgain) {
  FakeEmbedServer srv;
  srv.latency_ms = 2;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() +
                     "/test-model?dimensions=16&batch=1&max_concurrency=8&max_attempts=10");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ((*e)->concurrency_limit(), 4u);
  // The first eight answers are 429: the first window's four cut the limit once (4 → 2), their
  // retries, sent after that cut, cut it again (→ 1).
  srv.throttle_next = 8;
  std::vector<std::string> texts = make_texts(300);
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  const auto st = (*e)->concurrency_stats();
  std::printf(
      "adaptive limit: start 4, min %zu, max %zu, end %zu; %llu cuts, %llu raises; %d requests, "
      "%d throttled, peak %d in flight at the server\n",
      st.min_limit, st.max_limit, st.limit, static_cast<unsigned long long>(st.cuts),
      static_cast<unsigned long long>(st.raises), srv.requests(), srv.throttled(), srv.max_in_flight());
  EXPECT_EQ(srv.throttled(), 8);
  EXPECT_EQ(st.min_limit, 1u) << "halved twice";
  EXPECT_GE(st.cuts, 2u);
  EXPECT_LE(st.cuts, 8u);
  EXPECT_GE(st.limit, 4u) << "back up once the service kept up";
  EXPECT_GE(st.raises, 3u);
  EXPECT_LE(st.limit, 8u);
  EXPECT_LE(static_cast<size_t>(srv.max_in_flight()), 8u);
}

TEST(HttpEmbedder, AServiceThatThrottlesAboveTwoInFlightIsMostlyAnsweredWell) {
  FakeEmbedServer srv;
  srv.latency_ms = 10;
  srv.throttle_above = 2;
  srv.retry_after_ms = 10;
  ASSERT_TRUE(srv.start());
  auto e =
      open_http("ollama://" + srv.hostport() +
                "/test-model?dimensions=16&batch=1&initial_concurrency=8&max_concurrency=8&max_attempts=20");
  ASSERT_TRUE(e.is_ok());
  std::vector<std::string> texts = make_texts(200);
  std::vector<float> out;
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
  const auto st = (*e)->concurrency_stats();
  std::printf("capacity 2: limit start 8, min %zu, end %zu; %llu cuts; %d requests, %d throttled\n",
              st.min_limit, st.limit, static_cast<unsigned long long>(st.cuts), srv.requests(),
              srv.throttled());
  EXPECT_GE(st.cuts, 1u);
  EXPECT_LE(st.min_limit, 2u);
  // A fixed 8 in flight would see most requests refused; adapting keeps it to a fraction.
  EXPECT_LT(srv.throttled(), srv.requests() / 2);
}

TEST(HttpEmbedder, ATimeoutIsRetriableAndCutsTheLimit) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e =
      open_http("ollama://" + srv.hostport() + "/test-model?dimensions=16&timeout_ms=300&max_attempts=2");
  ASSERT_TRUE(e.is_ok());
  srv.stall_next = 2;
  srv.stall_ms = 5000;
  std::vector<std::string> texts = make_texts(2);
  std::vector<float> out;
  Status st = (*e)->embed(views(texts), &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.error_class(), ErrorClass::kRetriable) << st.to_string();
  EXPECT_EQ(st.code(), Code::kTimeout) << st.to_string();
  EXPECT_NE(st.message().find("timeout_ms"), std::string::npos) << st.message();
  EXPECT_TRUE(out.empty()) << "nothing half-written";
  // Each attempt started after the previous cut: 4 → 2 → 1.
  EXPECT_EQ((*e)->concurrency_limit(), 1u);
  // The stall is over: the next call works.
  ASSERT_TRUE((*e)->embed(views(texts), &out).is_ok());
  expect_vectors(texts, out, 16);
}

// ---------------------------------------------------------------------------------------------
// Bad input and bad answers

TEST(HttpEmbedder, AServerThatIsNotRunningIsRetriableAndSaysHowToStartIt) {
  int port;
  {
    FakeEmbedServer gone;
    ASSERT_TRUE(gone.start());
    port = gone.port();
  }
  auto e = open_http("ollama://127.0.0.1:" + std::to_string(port) + "/test-model?max_attempts=2");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().error_class(), ErrorClass::kRetriable) << e.status().to_string();
  const std::string& m = e.status().message();
  EXPECT_NE(m.find("http://127.0.0.1:" + std::to_string(port)), std::string::npos) << m;
  EXPECT_NE(m.find("is the ollama server running?"), std::string::npos) << m;
  EXPECT_NE(m.find("ollama serve"), std::string::npos) << m;
}

TEST(HttpEmbedder, AMissingModelIsBadInputSayingOllamaPull) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() + "/nomic-embed-text");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().error_class(), ErrorClass::kBadInput) << e.status().to_string();
  EXPECT_NE(e.status().message().find("ollama pull nomic-embed-text"), std::string::npos)
      << e.status().message();
  EXPECT_EQ(srv.requests(), 1) << "a 404 is not retried";
  auto o = open_http("openai://" + srv.hostport() + "/v1?model=nope");
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(o.status().message().find("check model=nope"), std::string::npos) << o.status().message();
  EXPECT_NE(o.status().message().find("does not exist"), std::string::npos) << o.status().message();
  // A server without /api/embed at all (Ollama before 0.3.4, or something else on the port).
  testing::HttpTestServer bare;
  ASSERT_TRUE(bare.start());
  auto old = open_http("ollama://127.0.0.1:" + std::to_string(bare.port()) + "/nomic-embed-text");
  ASSERT_FALSE(old.is_ok());
  EXPECT_EQ(old.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(old.status().message().find("has no /api/embed"), std::string::npos) << old.status().message();
  EXPECT_NE(old.status().message().find("0.3.4"), std::string::npos) << old.status().message();
}

TEST(HttpEmbedder, AKeyMissingOrRefusedNamesTheVariable) {
  FakeEmbedServer srv;
  srv.require_key("right");
  ASSERT_TRUE(srv.start());
  auto none = open_http("openai://" + srv.hostport() + "/v1?model=test-model");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(none.status().message().find("set SLUICE_EMBEDDER_API_KEY or OPENAI_API_KEY"), std::string::npos)
      << none.status().message();
  auto wrong =
      open_http("openai://" + srv.hostport() + "/v1?model=test-model", {{"OPENAI_API_KEY", "wrong"}});
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(wrong.status().message().find("the API key in OPENAI_API_KEY was refused"), std::string::npos)
      << wrong.status().message();
  EXPECT_EQ(wrong.status().message().find("wrong"), std::string::npos) << "the key stays out of messages";
  auto right =
      open_http("openai://" + srv.hostport() + "/v1?model=test-model", {{"OPENAI_API_KEY", "right"}});
  EXPECT_TRUE(right.is_ok()) << right.status().to_string();
}

TEST(HttpEmbedder, ClientErrorsAndNonsenseAnswersHaveTheirClass) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() + "/test-model");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  std::vector<std::string> texts = make_texts(3);
  std::vector<float> out;
  auto embed = [&] {
    out.clear();
    return (*e)->embed(views(texts), &out);
  };

  srv.fail_next = 1;
  srv.fail_status = 400;
  Status st = embed();
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  EXPECT_NE(st.message().find("told to fail"), std::string::npos) << st.message();

  srv.fail_next = 1;
  srv.fail_status = 413;
  st = embed();
  EXPECT_EQ(st.error_class(), ErrorClass::kResourceLimit) << st.to_string();
  EXPECT_NE(st.message().find("max_request_bytes"), std::string::npos) << st.message();

  srv.short_next = 1;
  st = embed();
  EXPECT_EQ(st.error_class(), ErrorClass::kRetriable) << st.to_string();
  EXPECT_NE(st.message().find("answered nonsense: asked for 3 vectors, got 2"), std::string::npos)
      << st.message();
  EXPECT_TRUE(out.empty());

  srv.huge_next = 1;
  st = embed();
  EXPECT_EQ(st.error_class(), ErrorClass::kRetriable) << st.to_string();
  EXPECT_NE(st.message().find("infinite"), std::string::npos) << st.message();

  // The model behind the name changed: never a silent mix of dimensions.
  srv.set_model("test-model", 24);
  st = embed();
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  EXPECT_NE(st.message().find("dimension 24 where this embedder (and its index) uses 16"), std::string::npos)
      << st.message();
  EXPECT_TRUE(out.empty());
  // A model that ignores `dimensions`.
  srv.honour_dimensions = false;
  auto asked = open_http("ollama://" + srv.hostport() + "/test-model?dimensions=8");
  ASSERT_TRUE(asked.is_ok());
  st = (*asked)->embed(views(texts), &out);
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput) << st.to_string();
  EXPECT_NE(st.message().find("does the model support it?"), std::string::npos) << st.message();
  // Everything well again: it works.
  srv.set_model("test-model", 16);
  ASSERT_TRUE(embed().is_ok());
  expect_vectors(texts, out, 16);
}

// ---------------------------------------------------------------------------------------------
// Threads

TEST(HttpEmbedder, SeveralThreadsShareOneLimit) {
  FakeEmbedServer srv;
  srv.latency_ms = 5;
  ASSERT_TRUE(srv.start());
  auto e = open_http("ollama://" + srv.hostport() +
                     "/test-model?dimensions=16&batch=5&initial_concurrency=3&max_concurrency=3");
  ASSERT_TRUE(e.is_ok());
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  std::vector<std::vector<std::string>> texts(4);
  std::vector<std::vector<float>> outs(4);
  for (int t = 0; t < 4; ++t) {
    texts[t] = make_texts(100, "thread " + std::to_string(t));
    threads.emplace_back([&, t] { results[t] = (*e)->embed(views(texts[t]), &outs[t]); });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(results[t].is_ok()) << results[t].to_string();
    expect_vectors(texts[t], outs[t], 16);
  }
  EXPECT_EQ(srv.requests(), 80);
  EXPECT_LE(srv.max_in_flight(), 3) << "one limit for all threads";
  EXPECT_GE(srv.max_in_flight(), 2);
  EXPECT_LE((*e)->concurrency_stats().peak_in_flight, 3u);
}

// ---------------------------------------------------------------------------------------------
// The index keeps models apart

TEST(HttpEmbedder, TheLocalIndexRefusesAnotherModelOrDimension) {
  FakeEmbedServer srv;
  ASSERT_TRUE(srv.start());
  char tmpl[] = "/tmp/sluice-http-embed-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = std::string("local:") + tmpl + "/index";
  {
    auto e = open_embedder("ollama://" + srv.hostport() + "/test-model");
    ASSERT_TRUE(e.is_ok());
    auto idx = index::open_index(dir, (*e)->dimension(), (*e)->name());
    ASSERT_TRUE(idx.is_ok()) << idx.status().to_string();
  }
  srv.set_model("test-model", 24);  // a new model under the old name
  auto e = open_embedder("ollama://" + srv.hostport() + "/test-model");
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ((*e)->name(), "ollama:test-model:24");
  auto idx = index::open_index(dir, (*e)->dimension(), (*e)->name());
  ASSERT_FALSE(idx.is_ok());
  EXPECT_EQ(idx.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(idx.status().message().find("'ollama:test-model:16' (dimension 16)"), std::string::npos)
      << idx.status().message();
  EXPECT_NE(idx.status().message().find("'ollama:test-model:24' (dimension 24)"), std::string::npos)
      << idx.status().message();
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace sluice::embed
