// The JSON parser (nlohmann::json, keys kept in file order): an array of objects becomes one
// kRecord per object, flattened to "a.b: value; list[0].c: value"; an object becomes one record
// when all its values are scalars, else records per top-level key (consecutive scalar keys share
// one); JSON Lines (one value per line) is read line by line. Malformed JSON is kBadInput naming
// the line and column (in characters) where it breaks.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxDepth = 64;        // deeper values are kept as compact JSON text
constexpr size_t kMaxNesting = 512;  // deeper documents are refused

struct Position {
  size_t line = 1;
  size_t column = 1;
};

// Line and column (1-based, in characters) of the byte at offset.
Position position_of(std::string_view text, size_t offset) {
  Position p;
  offset = std::min(offset, text.size());
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++p.column;
    }
  }
  return p;
}

// nlohmann's reason without its "[json.exception...] parse error at line x, column y: " prefix.
std::string reason_of(const nlohmann::json::parse_error& e) {
  std::string what = e.what();
  size_t col = what.find("column ");
  if (col != std::string::npos) {
    size_t colon = what.find(": ", col);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  size_t close = what.find("] ");
  return close == std::string::npos ? what : what.substr(close + 2);
}

// Byte offset of the token the parser choked on. e.byte counts the characters read, so it points
// at the last character of that token; a string or number token is walked back to its start.
size_t error_offset(std::string_view text, const nlohmann::json::parse_error& e) {
  if (e.byte == 0) return 0;
  size_t at = std::min<size_t>(e.byte - 1, text.size());
  const std::string what = e.what();
  if (at < text.size() && text[at] == '"' && what.find("unexpected string literal") != std::string::npos) {
    // The opening quote: the first quote before this one not escaped by an odd run of backslashes.
    for (size_t i = at; i-- > 0;) {
      if (text[i] != '"') continue;
      size_t slashes = 0;
      while (slashes < i && text[i - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return i;
    }
  } else if (what.find("unexpected number literal") != std::string::npos) {
    while (at > 0 && std::string_view("0123456789+-.eE").find(text[at - 1]) != std::string_view::npos) --at;
  }
  return at;
}

// Where the text first nests deeper than kMaxNesting, or npos. Checked before parsing because
// serializing or walking such a value recurses once per level.
size_t too_deep_at(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

// Parses one JSON text; on failure, a message with the line and column of the offending token
// (offset by first_line for JSON Lines).
Result<Json> parse_json(std::string_view text, size_t first_line, const char* what) {
  if (size_t at = too_deep_at(text); at != std::string_view::npos) {
    Position p = position_of(text, at);
    return Status::invalid_argument(std::string(what) + " nested deeper than " + std::to_string(kMaxNesting) +
                                    " levels at line " + std::to_string(p.line + first_line - 1) +
                                    ", column " + std::to_string(p.column));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    Position p = position_of(text, error_offset(text, e));
    return Status::invalid_argument(std::string("malformed ") + what + " at line " +
                                    std::to_string(p.line + first_line - 1) + ", column " +
                                    std::to_string(p.column) + ": " + reason_of(e));
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("malformed ") + what + ": " + e.what());
  }
}

bool is_scalar(const Json& v) {
  return !v.is_object() && !v.is_array();
}

std::string scalar_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

void add_field(std::string& record, const std::string& name, const std::string& value) {
  if (value.empty()) return;
  if (!record.empty()) record += "; ";
  if (!name.empty()) {
    record += name;
    record += ": ";
  }
  record += value;
}

void flatten(const Json& v, const std::string& prefix, std::string& record, int depth) {
  if (depth > kMaxDepth) {
    add_field(record, prefix, v.dump());
    return;
  }
  if (v.is_object()) {
    for (const auto& [key, value] : v.items())
      flatten(value, prefix.empty() ? key : prefix + "." + key, record, depth + 1);
  } else if (v.is_array()) {
    if (std::all_of(v.begin(), v.end(), [](const Json& x) { return is_scalar(x); })) {
      // A list of scalars reads best as one value: "tags: a, b".
      std::string joined;
      for (const Json& x : v) {
        std::string t = scalar_text(x);
        if (t.empty()) continue;
        if (!joined.empty()) joined += ", ";
        joined += t;
      }
      add_field(record, prefix, joined);
    } else {
      for (size_t i = 0; i < v.size(); ++i)
        flatten(v[i], prefix + "[" + std::to_string(i) + "]", record, depth + 1);
    }
  } else {
    add_field(record, prefix, scalar_text(v));
  }
}

void add_record(ParsedDocument& doc, const Json& v, const std::string& prefix) {
  std::string record;
  flatten(v, prefix, record, 0);
  add_block(doc, BlockKind::kRecord, std::move(record));
}

// The records of one top-level value.
void add_value(ParsedDocument& doc, const Json& v) {
  if (v.is_array()) {
    for (const Json& x : v) add_record(doc, x, "");
    return;
  }
  if (!v.is_object() || std::all_of(v.begin(), v.end(), [](const Json& x) { return is_scalar(x); })) {
    add_record(doc, v, "");
    return;
  }
  std::string scalars;  // consecutive scalar keys, one record
  for (const auto& [key, value] : v.items()) {
    if (is_scalar(value)) {
      add_field(scalars, key, scalar_text(value));
      continue;
    }
    add_block(doc, BlockKind::kRecord, std::move(scalars));
    scalars.clear();
    if (value.is_array() &&
        std::any_of(value.begin(), value.end(), [](const Json& x) { return x.is_object(); })) {
      for (const Json& x : value) add_record(doc, x, key);  // {"users": [{...}, ...]}: one per user
    } else {
      add_record(doc, value, key);
    }
  }
  add_block(doc, BlockKind::kRecord, std::move(scalars));
}

// JSON Lines when there are several non-empty lines and the first is a whole object or array.
bool looks_like_json_lines(std::string_view text) {
  size_t start = text.find_first_not_of(" \t\n");
  if (start == std::string_view::npos) return false;
  size_t nl = text.find('\n', start);
  if (nl == std::string_view::npos || text.find_first_not_of(" \t\n", nl) == std::string_view::npos)
    return false;
  std::string_view first = text.substr(start, nl - start);
  try {
    Json v = Json::parse(first.begin(), first.end());
    return v.is_object() || v.is_array();
  } catch (const std::exception&) {
    return false;
  }
}

class JsonParser final : public Parser {
 public:
  std::string_view format() const override { return "json"; }

  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, read_file_limited(path, opts));
    ParsedDocument doc;
    doc.format = "json";
    auto decoded = decode_text(bytes, &doc.encoding);
    if (!decoded.is_ok()) return decoded.status().with_context("parse '" + path + "'");
    bytes.clear();
    const std::string text = normalize_newlines(decoded.value());
    const std::string context = "parse '" + path + "'";

    auto whole = parse_json(text, 1, "JSON");
    if (whole.is_ok()) {
      add_value(doc, whole.value());
    } else if (looks_like_json_lines(text)) {
      size_t line_no = 0;
      for (size_t pos = 0; pos <= text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        auto v = parse_json(line, line_no, "JSON Lines");
        if (!v.is_ok()) return v.status().with_context(context);
        // Each line is one record, like an element of an array (an array line: one per element).
        if (v.value().is_array()) {
          add_value(doc, v.value());
        } else {
          add_record(doc, v.value(), "");
        }
      }
    } else {
      return whole.status().with_context(context);
    }
    if (doc.blocks.empty())
      doc.warnings.push_back("no values: the JSON holds only empty containers or nulls");
    return doc;
  }
};

}  // namespace

Parser* json_parser() {
  static JsonParser parser;
  return &parser;
}

}  // namespace sluice::parse
