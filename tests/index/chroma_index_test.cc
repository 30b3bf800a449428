// Tests of what only the chroma index has (the conformance suite, index_conformance_test.cc, covers
// what every index does): URI parsing, tenant and database creation, a server that is not running,
// a token the server refuses, names Chroma refuses, collections sluice did not make, and keyword
// mode refused. Chroma 1.0's own server checks no token (Chroma leaves that to a proxy in front
// of it), so the token test puts a token-checking proxy of its own between sluice and a real
// Chroma server.
#include "index/chroma_index.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "index/index.h"
#include "store/http_client.h"
#include "support/chroma_server.h"
#include "support/http_test_server.h"
#include "support/require_server.h"
#include "support/s3rver.h"  // ScopedEnv

namespace sluice::index {
namespace {

using json = nlohmann::json;
using testing::ScopedEnv;

TEST(ChromaUri, DefaultsAndSettings) {
  ScopedEnv env({{"CHROMA_API_KEY", nullptr}, {"CHROMA_TOKEN", nullptr}});
  auto s = parse_chroma_uri("chroma://db.example:8123/docs");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->base_url, "http://db.example:8123");
  EXPECT_EQ(s->collection, "docs");
  EXPECT_EQ(s->tenant, "default_tenant");
  EXPECT_EQ(s->database, "default_database");
  EXPECT_EQ(s->batch, 0u);
  EXPECT_EQ(s->token, "");

  auto d = parse_chroma_uri("chroma://db.example/docs/");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->base_url, "http://db.example:8000");  // Chroma's own default port
  EXPECT_EQ(d->collection, "docs");

  auto q = parse_chroma_uri("chroma://h:1/c1?tenant=acme&database=manuals&batch=100&timeout_ms=5000");
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  EXPECT_EQ(q->tenant, "acme");
  EXPECT_EQ(q->database, "manuals");
  EXPECT_EQ(q->batch, 100u);
  EXPECT_EQ(q->timeout_ms, 5000);

  auto tls = parse_chroma_uri("chromas://h/c1");
  ASSERT_TRUE(tls.is_ok());
  EXPECT_EQ(tls->base_url, "https://h:8000");
  auto tls2 = parse_chroma_uri("chroma://h:443/c1?tls=true");
  ASSERT_TRUE(tls2.is_ok());
  EXPECT_EQ(tls2->base_url, "https://h:443");
}

TEST(ChromaUri, TokenFromTheEnvironment) {
  {
    ScopedEnv env({{"CHROMA_API_KEY", "key-1"}, {"CHROMA_TOKEN", "tok-2"}});
    auto s = parse_chroma_uri("chroma://h/c1");
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->token, "key-1");
  }
  {
    ScopedEnv env({{"CHROMA_API_KEY", nullptr}, {"CHROMA_TOKEN", "tok-2"}});
    auto s = parse_chroma_uri("chroma://h/c1");
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->token, "tok-2");
  }
}

TEST(ChromaUri, BadUrisAreRefusedSayingWhy) {
  struct Case {
    const char* uri;
    const char* says;
  };
  for (const Case& c :
       {Case{"chroma://127.0.0.1:8000", "names no collection"},
        Case{"chroma://127.0.0.1:8000/", "names no collection"},
        Case{"chroma://127.0.0.1:abc/docs", "port 'abc'"}, Case{"chroma://127.0.0.1:0/docs", "port '0'"},
        Case{"chroma://127.0.0.1:70000/docs", "port '70000'"},
        Case{"chroma://127.0.0.1:8000/a/b", "has a '/'"}, Case{"chroma://:8000/docs", "names no host"},
        Case{"chroma://user:secret@127.0.0.1/docs", "CHROMA_API_KEY"},
        Case{"chroma://127.0.0.1/docs?colour=red", "unknown chroma index setting 'colour'"},
        Case{"chroma://127.0.0.1/docs?batch=-1", "batch"}, Case{"chroma://127.0.0.1/docs?tls=maybe", "tls"},
        Case{"chroma://127.0.0.1/docs?tenant=", "may not be empty"}}) {
    auto s = parse_chroma_uri(c.uri);
    ASSERT_FALSE(s.is_ok()) << c.uri;
    EXPECT_EQ(s.status().error_class(), ErrorClass::kBadInput) << c.uri << ": " << s.status().to_string();
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.uri << ": " << s.status().to_string();
    // open_index gives the same answer, before any connection.
    auto r = open_index(c.uri, 8, "test:8");
    ASSERT_FALSE(r.is_ok()) << c.uri;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << c.uri;
  }
}

TEST(ChromaIndexDown, ServerNotRunningIsRetriableAndNamesTheUrl) {
  const int port = testing::free_loopback_port();  // nothing listens there
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = open_index("chroma://127.0.0.1:" + std::to_string(port) + "/docs", 8, "test:8");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kRetriable) << r.status().to_string();
  EXPECT_NE(r.status().message().find(url), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("chroma"), std::string::npos) << r.status().to_string();
}

class ChromaIndexTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::ChromaServer::installed()) return;
    server_ = new testing::ChromaServer();
    Status st = server_->start();
    if (!st.is_ok()) {
      ADD_FAILURE() << st.to_string();
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (sluice::testing::skip_for_missing_program(testing::ChromaServer::installed(),
                                                  testing::ChromaServer::program()))
      GTEST_SKIP() << testing::ChromaServer::program() << " is missing (npm ci)";
    ASSERT_NE(server_, nullptr) << "the chroma server did not start";
    auto h = store::HttpClient::open(server_->url(), {});
    ASSERT_TRUE(h.is_ok());
    http_ = std::move(h).value();
  }

  // A raw call to the server, to look behind the index's back.
  Result<json> raw(const std::string& method, const std::string& path, const json& body = nullptr) {
    store::HttpRequest req;
    req.method = method;
    req.path = path;
    if (!body.is_null()) req.body = body.dump();
    SLUICE_ASSIGN_OR_RETURN(store::HttpResponse resp, http_->send(req));
    return json::parse(resp.body);
  }

  static std::vector<float> unit(size_t dim, size_t at) {
    std::vector<float> v(dim, 0.0f);
    v[at % dim] = 1.0f;
    return v;
  }

  static testing::ChromaServer* server_;
  std::unique_ptr<store::HttpClient> http_;
};

testing::ChromaServer* ChromaIndexTest::server_ = nullptr;

TEST_F(ChromaIndexTest, TenantDatabaseAndCollectionsAreCreatedWithTheirMetadata) {
  auto index = open_index(server_->uri("manuals", "tenant=acme-corp&database=handbooks"), 8, "test:8");
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  auto tenant = raw("GET", "/api/v2/tenants/acme-corp");
  ASSERT_TRUE(tenant.is_ok()) << tenant.status().to_string();
  EXPECT_EQ((*tenant)["name"], "acme-corp");
  auto colls = raw("GET", "/api/v2/tenants/acme-corp/databases/handbooks/collections");
  ASSERT_TRUE(colls.is_ok()) << colls.status().to_string();
  std::map<std::string, json> by_name;
  for (const auto& c : *colls) by_name[c["name"].get<std::string>()] = c;
  ASSERT_TRUE(by_name.contains("manuals")) << colls->dump();
  ASSERT_TRUE(by_name.contains("manuals__docs")) << colls->dump();
  EXPECT_EQ(by_name["manuals"]["metadata"]["sluice_embedder"], "test:8");
  EXPECT_EQ(by_name["manuals"]["metadata"]["sluice_dimension"], 8);
  EXPECT_EQ(by_name["manuals"]["configuration_json"]["hnsw"]["space"], "cosine");

  // A chunk lands in the chunks collection with its metadata, its text as the document.
  DocumentRecord d{"doc-1", "ver-1", "/srv/a.md", 3, R"({"k":"v"})"};
  ChunkRecord c{"chunk-1", 4, 2, "A > B", "hello chroma", unit(8, 1)};
  ASSERT_TRUE((*index)->upsert_document(d, {&c, 1}).is_ok());
  const std::string base = "/api/v2/tenants/acme-corp/databases/handbooks/collections/" +
                           by_name["manuals"]["id"].get<std::string>();
  auto got = raw("POST", base + "/get", {{"ids", {"chunk-1"}}, {"include", {"documents", "metadatas"}}});
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ((*got)["documents"][0], "hello chroma");
  const json& m = (*got)["metadatas"][0];
  EXPECT_EQ(m["doc_id"], "doc-1");
  EXPECT_EQ(m["version"], "ver-1");
  EXPECT_EQ(m["source"], "/srv/a.md");
  EXPECT_EQ(m["page"], 2);
  EXPECT_EQ(m["heading"], "A > B");
  EXPECT_EQ(m["seq"], 4);

  // Opening again finds everything as it was (nothing created twice).
  auto again = open_index(server_->uri("manuals", "tenant=acme-corp&database=handbooks"), 8, "test:8");
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  auto n = (*again)->chunk_count("doc-1");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1u);
}

TEST_F(ChromaIndexTest, NamesChromaRefusesAreBadInputWithChromasReason) {
  for (const std::string& uri : {server_->uri("ab"), server_->uri("bad!name"), server_->uri("-dash-first"),
                                 server_->uri("docs", "tenant=ab")}) {
    auto r = open_index(uri, 8, "test:8");
    ASSERT_FALSE(r.is_ok()) << uri;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << uri << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find("Validation error"), std::string::npos) << r.status().to_string();
  }
}

TEST_F(ChromaIndexTest, CollectionsSluiceDidNotMakeAreRefused) {
  auto made = raw("POST", "/api/v2/tenants/default_tenant/databases/default_database/collections",
                  {{"name", "someone-elses"}, {"metadata", {{"owner", "another app"}}}});
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  auto r = open_index(server_->uri("someone-elses"), 8, "test:8");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.status().message().find("not made by sluice"), std::string::npos) << r.status().to_string();

  // Nor is the documents collection of a sluice index taken for a chunks collection.
  ASSERT_TRUE(open_index(server_->uri("mine"), 8, "test:8").is_ok());
  auto docs = open_index(server_->uri("mine__docs"), 8, "test:8");
  ASSERT_FALSE(docs.is_ok());
  EXPECT_EQ(docs.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(docs.status().message().find("'__docs' suffix"), std::string::npos) << docs.status().to_string();
}

TEST_F(ChromaIndexTest, KeywordModeIsUnsupportedAndHybridIsVectorSearch) {
  auto index = open_index(server_->uri("modes"), 8, "test:8");
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  ChunkRecord c{"m-1", 0, 0, "", "vector only", unit(8, 3)};
  ASSERT_TRUE((*index)->upsert_document({"m", "v1", "/m", 0, "{}"}, {&c, 1}).is_ok());
  SearchOptions kw;
  kw.mode = SearchOptions::Mode::kKeyword;
  auto k = (*index)->search("vector only", {}, kw);
  ASSERT_FALSE(k.is_ok());
  EXPECT_EQ(k.status().code(), Code::kUnsupported);
  EXPECT_NE(k.status().message().find("no keyword search"), std::string::npos) << k.status().to_string();
  SearchOptions hybrid;
  const auto q = unit(8, 3);
  auto h = (*index)->search("vector only", q, hybrid);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].chunk_id, "m-1");
  EXPECT_NEAR((*h)[0].score, 1.0, 1e-5);  // the same direction: cosine similarity 1
  EXPECT_EQ((*index)->search("vector only", {}, hybrid).status().error_class(), ErrorClass::kBadInput);
  // The reserved record is no document.
  ChunkRecord r{"r-1", 0, 0, "", "x", unit(8, 1)};
  EXPECT_EQ((*index)->upsert_document({"__sluice_commit", "v1", "/r", 0, "{}"}, {&r, 1}).error_class(),
            ErrorClass::kBadInput);
}

// Chroma 1.0 checks no token itself (its docs put a proxy such as Envoy in front for that), so a
// proxy here checks x-chroma-token and forwards what passes to the real server.
TEST_F(ChromaIndexTest, TheTokenIsSentAndAWrongOneIsABadInputNamingTheVariable) {
  testing::HttpTestServer proxy;
  std::atomic<int> refused{0}, forwarded{0};
  const int upstream = server_->port();
  auto handler = [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("x-chroma-token") != "right-token") {
      ++refused;
      res.status = 403;
      res.set_content(R"({"error":"Forbidden","message":"bad or missing x-chroma-token"})",
                      "application/json");
      return;
    }
    ++forwarded;
    httplib::Client up("127.0.0.1", upstream);
    httplib::Result r = req.method == "GET"      ? up.Get(req.path.c_str())
                        : req.method == "DELETE" ? up.Delete(req.path.c_str())
                        : req.method == "PUT"    ? up.Put(req.path.c_str(), req.body, "application/json")
                                                 : up.Post(req.path.c_str(), req.body, "application/json");
    if (!r) {
      res.status = 502;
      return;
    }
    res.status = r->status;
    res.set_content(r->body, "application/json");
  };
  proxy.server().Get(".*", handler);
  proxy.server().Post(".*", handler);
  proxy.server().Put(".*", handler);
  proxy.server().Delete(".*", handler);
  ASSERT_TRUE(proxy.start());
  const std::string uri = "chroma://127.0.0.1:" + std::to_string(proxy.port()) + "/behind-proxy";
  {
    ScopedEnv env({{"CHROMA_API_KEY", "wrong-token"}, {"CHROMA_TOKEN", nullptr}});
    auto r = open_index(uri, 8, "test:8");
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << r.status().to_string();
    EXPECT_NE(r.status().message().find("403"), std::string::npos) << r.status().to_string();
    EXPECT_NE(r.status().message().find("CHROMA_API_KEY"), std::string::npos) << r.status().to_string();
  }
  {
    ScopedEnv env({{"CHROMA_API_KEY", nullptr}, {"CHROMA_TOKEN", nullptr}});
    EXPECT_EQ(open_index(uri, 8, "test:8").status().error_class(), ErrorClass::kBadInput);
  }
  EXPECT_GE(refused.load(), 2);
  EXPECT_EQ(forwarded.load(), 0);
  ScopedEnv env({{"CHROMA_API_KEY", nullptr}, {"CHROMA_TOKEN", "right-token"}});
  auto index = open_index(uri, 8, "test:8");
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  ChunkRecord c{"p-1", 0, 1, "", "through the proxy", unit(8, 2)};
  ASSERT_TRUE((*index)->upsert_document({"p", "v1", "/p", 1, "{}"}, {&c, 1}).is_ok());
  SearchOptions opts;
  opts.mode = SearchOptions::Mode::kVector;
  const auto q = unit(8, 2);
  auto hits = (*index)->search("", q, opts);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].text, "through the proxy");
  EXPECT_GT(forwarded.load(), 5);
}

// A crash between the steps of a replacement leaves chunks no pointer names; searches ignore them
// and the next write of the document removes them.
TEST_F(ChromaIndexTest, ChunksNoPointerNamesAreInvisibleAndCleanedUp) {
  auto index = open_index(server_->uri("orphans"), 8, "test:8");
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  ChunkRecord v1{"o@v1", 0, 1, "", "version one", unit(8, 5)};
  ASSERT_TRUE((*index)->upsert_document({"o", "v1", "/o", 1, "{}"}, {&v1, 1}).is_ok());
  // A writer that died after writing v2's chunks, before moving the pointer.
  auto colls = raw("GET", "/api/v2/tenants/default_tenant/databases/default_database/collections");
  ASSERT_TRUE(colls.is_ok());
  std::string id;
  for (const auto& c : *colls)
    if (c["name"] == "orphans") id = c["id"];
  ASSERT_FALSE(id.empty());
  const std::string base = "/api/v2/tenants/default_tenant/databases/default_database/collections/" + id;
  auto w =
      raw("POST", base + "/upsert",
          {{"ids", {"o@v2"}},
           {"embeddings", {unit(8, 5)}},
           {"documents", {"version two"}},
           {"metadatas", {{{"doc_id", "o"}, {"version", "v2"}, {"source", "/o"}, {"page", 1}, {"seq", 0}}}}});
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  SearchOptions opts;
  opts.mode = SearchOptions::Mode::kVector;
  const auto q = unit(8, 5);
  auto hits = (*index)->search("", q, opts);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk_id, "o@v1");
  auto n = (*index)->chunk_count("o");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1u);
  // The retry of v1 (say) finishes the job: the stray v2 chunk goes.
  ASSERT_TRUE((*index)->upsert_document({"o", "v1", "/o", 1, "{}"}, {&v1, 1}).is_ok());
  auto total = (*index)->chunk_count();
  ASSERT_TRUE(total.is_ok());
  EXPECT_EQ(*total, 1u);
}

}  // namespace
}  // namespace sluice::index
