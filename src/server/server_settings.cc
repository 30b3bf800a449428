// The settings table of `sluice serve` and how they are resolved (tokens from a file or the
// environment; a public listener without tokens is refused).
#include <fstream>
#include <limits>

#include "config/property.h"
#include "server/server.h"

namespace sluice::server {
namespace {

using config::Kind;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const config::Property kServerProperties[] = {
    {"listen",
     Kind::kString,
     "127.0.0.1:8080",
     "HOST:PORT the HTTP API and dashboard listen on (port 0: any free port)",
     {},
     0,
     kMax,
     "SLUICE_LISTEN"},
    {"token_file",
     Kind::kString,
     "",
     "A file of bearer tokens, one per line, that /v1/ requests must present (`Authorization: Bearer T`)",
     {},
     0,
     kMax,
     "SLUICE_TOKEN_FILE"},
    {"api_tokens",
     Kind::kString,
     "",
     "Bearer tokens, comma-separated (added to token_file's); without any, only a loopback listener is "
     "allowed",
     {},
     0,
     kMax,
     "SLUICE_API_TOKENS"},
    {"http_threads",
     Kind::kInt,
     "128",
     "Threads serving HTTP connections (a keep-alive connection holds one while it is open)",
     {},
     2,
     4096,
     "SLUICE_HTTP_THREADS"},
    {"max_body_bytes",
     Kind::kSize,
     "1GiB",
     "Largest request body (then 413); files also obey max_file_size",
     {},
     1,
     kMax,
     "SLUICE_MAX_BODY_BYTES"},
    {"max_uploads_in_progress",
     Kind::kInt,
     "256",
     "Uploads written at once; more are answered 429 with Retry-After",
     {},
     1,
     1 << 20,
     "SLUICE_MAX_UPLOADS_IN_PROGRESS"},
    {"upload_timeout",
     Kind::kMillis,
     "10000",
     "How long an upload waits for the queue to acknowledge its task (then 503, nothing kept)",
     {},
     1,
     kMax,
     "SLUICE_UPLOAD_TIMEOUT"},
    {"worker_nice",
     Kind::kInt,
     "10",
     "Nice value of the in-process stages and parser processes (0-19): higher lets uploads and the "
     "API go first on shared cores while a backlog is processed",
     {},
     0,
     19,
     "SLUICE_WORKER_NICE"},
    {"stuck_after",
     Kind::kMillis,
     "600000",
     "A document not final and idle this long is listed as stuck",
     {},
     1,
     kMax,
     "SLUICE_STUCK_AFTER"},
};

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace

std::span<const config::Property> server_properties() {
  return kServerProperties;
}

Result<ServerSettings> resolve_server_settings(const config::Values& flags,
                                               const std::function<const char*(const char*)>& getenv) {
  const auto t = server_properties();
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::layer(t, flags, getenv));
  ServerSettings s;
  SLUICE_ASSIGN_OR_RETURN(std::string listen, config::get_string(v, t, "listen"));
  size_t colon = listen.rfind(':');
  int64_t port = -1;
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      port = std::stoll(listen.substr(colon + 1), &used);
      if (used != listen.size() - colon - 1) port = -1;
    } catch (...) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return Status::invalid_argument("listen address '" + listen + "' is not HOST:PORT (e.g. 127.0.0.1:8080)");
  }
  s.host = listen.substr(0, colon);
  if (s.host.size() > 2 && s.host.front() == '[' && s.host.back() == ']')
    s.host = s.host.substr(1, s.host.size() - 2);
  s.port = static_cast<int>(port);

  SLUICE_ASSIGN_OR_RETURN(std::string token_file, config::get_string(v, t, "token_file"));
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return Status::invalid_argument("cannot read the token file " + token_file);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
      size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos || line[b] == '#') continue;
      s.tokens.push_back(line.substr(b));
    }
    if (s.tokens.empty()) return Status::invalid_argument("the token file " + token_file + " holds no token");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string tokens, config::get_string(v, t, "api_tokens"));
  for (size_t i = 0; i < tokens.size();) {
    size_t j = tokens.find(',', i);
    if (j == std::string::npos) j = tokens.size();
    std::string tok = tokens.substr(i, j - i);
    tok.erase(0, tok.find_first_not_of(" \t"));
    tok.erase(tok.find_last_not_of(" \t") + 1);
    if (!tok.empty()) s.tokens.push_back(tok);
    i = j + 1;
  }
  for (const auto& tok : s.tokens) {
    if (tok.size() < 16) {
      return Status::invalid_argument(
          "an API token is shorter than 16 characters; use long random tokens "
          "(e.g. `openssl rand -hex 32`)");
    }
  }
  if (s.tokens.empty() && !is_loopback(s.host)) {
    return Status::invalid_argument("listening on " + listen +
                                    " (not loopback) needs API tokens: give --token-file FILE or set "
                                    "SLUICE_API_TOKENS, or listen on 127.0.0.1");
  }
  auto read = [&](const char* name, auto* field) -> Status {
    SLUICE_ASSIGN_OR_RETURN(int64_t n, config::get_int(v, t, name));
    using Field = std::remove_pointer_t<decltype(field)>;
    if constexpr (std::is_same_v<Field, std::chrono::milliseconds>) {
      *field = std::chrono::milliseconds(n);
    } else {
      *field = static_cast<Field>(n);
    }
    return {};
  };
  SLUICE_RETURN_IF_ERROR(read("http_threads", &s.http_threads));
  SLUICE_RETURN_IF_ERROR(read("max_body_bytes", &s.max_body_bytes));
  SLUICE_RETURN_IF_ERROR(read("max_uploads_in_progress", &s.max_uploads_in_progress));
  SLUICE_RETURN_IF_ERROR(read("upload_timeout", &s.upload_timeout));
  SLUICE_RETURN_IF_ERROR(read("stuck_after", &s.stuck_after));
  SLUICE_RETURN_IF_ERROR(read("worker_nice", &s.worker_nice));
  return s;
}

}  // namespace sluice::server
