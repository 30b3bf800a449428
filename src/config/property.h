// Property tables: every setting of a component is one row (name, kind, default, help), and the
// table drives parsing, --help text and the generated docs/CONFIGURATION.md (`sluice config`).
// A component declares its table once; nothing else lists its settings.
// Thread-safety: tables are constant data; the functions are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::config {

enum class Kind {
  kString,
  kInt,     // a whole number
  kSize,    // bytes: 1048576, 64KiB, 8MiB, 1GiB (K/M/G are binary too)
  kMillis,  // a duration in milliseconds
  kBool,    // true | false
  kEnum,    // one of `choices`, written "a|b|c"
};

struct Property {
  std::string_view name;
  Kind kind;
  std::string_view default_value;
  std::string_view help;
  std::string_view choices = {};  // kEnum only
  int64_t min = 0;
  int64_t max = std::numeric_limits<int64_t>::max();
  // Settings that also come from the command line (`--name`, with '-' for '_') and the
  // environment: the variable's name, and an alias the seeds use (e.g. POOL_SIZE).
  std::string_view env = {};
  std::string_view env_alias = {};
};

// Values by name, as given (checked against their property).
using Values = std::map<std::string, std::string, std::less<>>;

// The name=value pairs of a URI query ("a=1&b&c=2"), in order, empty pairs skipped; a pair
// without '=' has no value (nullopt). The views point into query; nothing is decoded.
struct QueryPair {
  std::string_view name;
  std::optional<std::string_view> value;
};
std::vector<QueryPair> split_query(std::string_view query);

// RFC 3986 percent-encoding: A-Z a-z 0-9 '-' '_' '.' '~' stay, every other byte is %XX (upper-case
// hex, as AWS's SigV4 wants too); '/' stays when keep_slash (an object key's path). Safe for a path
// segment or a query value: the result cannot change the URI's structure.
std::string percent_encode(std::string_view s, bool keep_slash = false);

// %XX decoding of a URI part, so a password may hold '&', '=', '@' or '%'; '+' stays '+' (SASL
// mechanisms and base64 secrets use it). `what` names the part in the error.
[[nodiscard]] Result<std::string> percent_decode(std::string_view s, std::string_view what);

// A server URI "SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/PATH][?QUERY]" split into its parts; user
// and password are %-decoded, the rest is as written. `what` ("redis queue") names it in errors.
struct ServerUri {
  std::optional<std::string> user;       // set when there is an '@'
  std::optional<std::string> password;   // set when the user info has a ':'
  std::string_view host;                 // may be empty (the caller's default)
  std::optional<int> port;               // 1..65535, checked
  std::optional<std::string_view> path;  // after the first '/', when there is one
  std::string_view query;
};
[[nodiscard]] Result<ServerUri> split_server_uri(std::string_view uri, std::string_view scheme,
                                                 std::string_view what);

// Parses "k=v&k2=v2" (a URI query) against the table. Unknown names and bad values are BadInput
// naming the setting, what was given and what is accepted. `what` names the owner in messages.
[[nodiscard]] Result<Values> parse_query(std::string_view query, std::span<const Property> table,
                                         std::string_view what);
// Checks one value against its property.
[[nodiscard]] Status check_value(const Property& p, std::string_view value, std::string_view what);

// The value of name in values, or the property's default. The name must be in the table.
[[nodiscard]] Result<int64_t> get_int(const Values& values, std::span<const Property> table,
                                      std::string_view name);
[[nodiscard]] Result<bool> get_bool(const Values& values, std::span<const Property> table,
                                    std::string_view name);
[[nodiscard]] Result<std::string> get_string(const Values& values, std::span<const Property> table,
                                             std::string_view name);

// Layers the settings of a table: a value given on the command line (in flags, by name) wins over
// the environment (env, then env_alias, read through getenv), which wins over the default. Every
// value is checked; a bad one is kBadInput naming where it came from (e.g. "environment POOL_SIZE").
[[nodiscard]] Result<Values> layer(std::span<const Property> table, const Values& flags,
                                   const std::function<const char*(const char*)>& getenv);

// The command-line flag of a setting: "--" + name with '-' for '_'.
std::string flag_name(const Property& p);

// A Markdown table of the properties (for docs/CONFIGURATION.md).
std::string markdown_table(std::span<const Property> table);

}  // namespace sluice::config
