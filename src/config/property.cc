#include "config/property.h"

#include <charconv>

namespace sluice::config {
namespace {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kString: return "string";
    case Kind::kInt: return "integer";
    case Kind::kSize: return "size";
    case Kind::kMillis: return "milliseconds";
    case Kind::kBool: return "bool";
    case Kind::kEnum: return "enum";
  }
  return "?";
}

const Property* find(std::span<const Property> table, std::string_view name) {
  for (const auto& p : table)
    if (p.name == name) return &p;
  return nullptr;
}

Result<int64_t> parse_number(const Property& p, std::string_view v, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(std::string(what) + " setting " + std::string(p.name) + "=" +
                                    std::string(v) + ": " + std::string(why));
  };
  int64_t mult = 1;
  std::string_view digits = v;
  if (p.kind == Kind::kSize) {
    for (auto [suffix, m] : {std::pair<std::string_view, int64_t>{"GiB", 1ll << 30},
                             {"MiB", 1ll << 20},
                             {"KiB", 1ll << 10},
                             {"G", 1ll << 30},
                             {"M", 1ll << 20},
                             {"K", 1ll << 10}}) {
      if (digits.size() > suffix.size() && digits.ends_with(suffix)) {
        digits.remove_suffix(suffix.size());
        mult = m;
        break;
      }
    }
  }
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    return bad(p.kind == Kind::kSize ? "not a size (examples: 1048576, 64KiB, 8MiB)" : "not a whole number");
  }
  if (n > std::numeric_limits<int64_t>::max() / mult || n < std::numeric_limits<int64_t>::min() / mult) {
    return bad("too large");
  }
  n *= mult;
  if (n < p.min || n > p.max) {
    return bad("outside " + std::to_string(p.min) + ".." + std::to_string(p.max));
  }
  return n;
}

}  // namespace

Status check_value(const Property& p, std::string_view v, std::string_view what) {
  switch (p.kind) {
    case Kind::kString: return {};
    case Kind::kInt:
    case Kind::kSize:
    case Kind::kMillis: return parse_number(p, v, what).status();
    case Kind::kBool:
      if (v == "true" || v == "false") return {};
      return Status::invalid_argument(std::string(what) + " setting " + std::string(p.name) + "=" +
                                      std::string(v) + ": use true or false");
    case Kind::kEnum: {
      std::string_view rest = p.choices;
      while (!rest.empty()) {
        auto bar = rest.find('|');
        if (rest.substr(0, bar) == v) return {};
        rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
      }
      std::string choices(p.choices);
      for (auto& c : choices)
        if (c == '|') c = ',';
      return Status::invalid_argument(std::string(what) + " setting " + std::string(p.name) + "=" +
                                      std::string(v) + ": use one of " + choices);
    }
  }
  return {};
}

std::vector<QueryPair> split_query(std::string_view query) {
  std::vector<QueryPair> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) {
      out.push_back({kv, std::nullopt});
    } else {
      out.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
    }
  }
  return out;
}

Result<Values> parse_query(std::string_view query, std::span<const Property> table, std::string_view what) {
  Values out;
  for (const auto& [k, value] : split_query(query)) {
    std::string_view v = value.value_or(std::string_view());
    const Property* p = find(table, k);
    if (!p) {
      std::string known;
      for (const auto& q : table) known += (known.empty() ? "" : ", ") + std::string(q.name);
      return Status::invalid_argument("unknown " + std::string(what) + " setting '" + std::string(k) +
                                      "' (known: " + known + ")");
    }
    SLUICE_RETURN_IF_ERROR(check_value(*p, v, what));
    out[std::string(k)] = std::string(v);
  }
  return out;
}

Result<int64_t> get_int(const Values& values, std::span<const Property> table, std::string_view name) {
  const Property* p = find(table, name);
  if (!p) return Status::internal("no property " + std::string(name));
  auto it = values.find(name);
  return parse_number(*p, it == values.end() ? p->default_value : std::string_view(it->second), "");
}

Result<bool> get_bool(const Values& values, std::span<const Property> table, std::string_view name) {
  const Property* p = find(table, name);
  if (!p) return Status::internal("no property " + std::string(name));
  auto it = values.find(name);
  return (it == values.end() ? p->default_value : std::string_view(it->second)) == "true";
}

Result<std::string> get_string(const Values& values, std::span<const Property> table, std::string_view name) {
  const Property* p = find(table, name);
  if (!p) return Status::internal("no property " + std::string(name));
  auto it = values.find(name);
  return std::string(it == values.end() ? p->default_value : std::string_view(it->second));
}

std::string flag_name(const Property& p) {
  std::string f = "--" + std::string(p.name);
  for (char& c : f)
    if (c == '_') c = '-';
  return f;
}

Result<Values> layer(std::span<const Property> table, const Values& flags,
                     const std::function<const char*(const char*)>& getenv) {
  Values out;
  for (const Property& p : table) {
    if (auto it = flags.find(p.name); it != flags.end()) {
      SLUICE_RETURN_IF_ERROR(check_value(p, it->second, "option " + flag_name(p) + ":"));
      out[std::string(p.name)] = it->second;
      continue;
    }
    for (std::string_view var : {p.env, p.env_alias}) {
      if (var.empty()) continue;
      const char* v = getenv(std::string(var).c_str());
      if (v == nullptr || *v == '\0') continue;
      SLUICE_RETURN_IF_ERROR(check_value(p, v, "environment " + std::string(var) + ":"));
      out[std::string(p.name)] = v;
      break;
    }
  }
  return out;
}

std::string markdown_table(std::span<const Property> table) {
  bool with_env = false;
  for (const auto& p : table) with_env |= !p.env.empty();
  if (with_env) {
    std::string out = "| option | environment | type | default | description |\n|---|---|---|---|---|\n";
    for (const auto& p : table) {
      std::string env = p.env.empty() ? "" : "`" + std::string(p.env) + "`";
      if (!p.env_alias.empty()) env += ", `" + std::string(p.env_alias) + "`";
      std::string type(p.kind == Kind::kEnum ? p.choices : kind_name(p.kind));
      for (size_t i = 0; (i = type.find('|', i)) != std::string::npos; i += 3) type.replace(i, 1, " \\| ");
      out += "| `" + flag_name(p) + "` | " + env + " | " + type + " | `" + std::string(p.default_value) +
             "` | " + std::string(p.help) + " |\n";
    }
    return out;
  }
  std::string out = "| setting | type | default | description |\n|---|---|---|---|\n";
  for (const auto& p : table) {
    std::string type(kind_name(p.kind));
    if (p.kind == Kind::kEnum) {
      type = std::string(p.choices);
      for (size_t i = 0; (i = type.find('|', i)) != std::string::npos; i += 3) type.replace(i, 1, " \\| ");
    }
    out += "| `" + std::string(p.name) + "` | " + type + " | `" + std::string(p.default_value) + "` | " +
           std::string(p.help) + " |\n";
  }
  return out;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding, so a password may hold '&', '=' or '%'. '+' stays '+' (SASL mechanisms and
// base64 secrets use it).
Result<ServerUri> split_server_uri(std::string_view uri, std::string_view scheme, std::string_view what) {
  const std::string prefix = std::string(scheme) + "://";
  if (!uri.starts_with(prefix))
    return Status::invalid_argument(std::string(what) + " URI '" + std::string(uri) +
                                    "' does not start with " + prefix);
  ServerUri out;
  std::string_view rest = uri.substr(prefix.size());
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    out.query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (auto sl = rest.find('/'); sl != std::string_view::npos) {
    out.path = rest.substr(sl + 1);
    rest = rest.substr(0, sl);
  }
  const std::string w(what);
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    SLUICE_ASSIGN_OR_RETURN(out.user, percent_decode(userinfo.substr(0, colon), "the " + w + " URI's user"));
    if (colon != std::string_view::npos) {
      SLUICE_ASSIGN_OR_RETURN(out.password,
                              percent_decode(userinfo.substr(colon + 1), "the " + w + " URI's password"));
    }
  }
  auto colon = rest.rfind(':');
  out.host = rest.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = rest.substr(colon + 1);
    int p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        p = -1;
        break;
      }
      p = p * 10 + (c - '0');
    }
    if (port.empty() || p <= 0 || p > 65535)
      return Status::invalid_argument(w + " URI '" + std::string(uri) + "': port '" + std::string(port) +
                                      "' is not a number in 1..65535");
    out.port = p;
  }
  return out;
}

std::string percent_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || (c == '/' && keep_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

Result<std::string> percent_decode(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Status::invalid_argument("bad %-escape in " + std::string(what) +
                                      " (write %25 for a literal '%')");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace sluice::config
