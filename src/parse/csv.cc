// The CSV parser: RFC 4180 (quoted fields, "" for a quote, line breaks inside quotes), with the
// delimiter (, ; tab |) found from the first records. The first row names the columns; every
// other row becomes one kRecord "name: value; name: value" (empty cells left out), so each row
// reads on its own once chunked.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

using Row = std::vector<std::string>;

struct Table {
  std::vector<Row> rows;
  bool unclosed_quote = false;
};

// Reads up to max_rows records (0: all). Lenient where RFC 4180 is strict: text after a closing
// quote is kept, a quote inside an unquoted field is literal, an unclosed quote runs to the end.
Table read_records(std::string_view s, char delim, size_t max_rows) {
  Table t;
  Row row;
  std::string field;
  bool quoted = false;      // inside quotes
  bool was_quoted = false;  // the current field started with a quote
  bool field_started = false;
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
    was_quoted = false;
    field_started = false;
  };
  auto end_row = [&] {
    end_field();
    // A blank line is no record.
    if (!(row.size() == 1 && row[0].empty())) t.rows.push_back(std::move(row));
    row.clear();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (max_rows != 0 && t.rows.size() >= max_rows) return t;
    char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = was_quoted = field_started = true;
      field.clear();  // spaces before the opening quote are not part of the value
    } else if (c == delim) {
      end_field();
    } else if (c == '\n') {
      end_row();
    } else {
      if (c != ' ' && c != '\t') field_started = true;
      field += c;
    }
  }
  if (quoted) t.unclosed_quote = true;
  if (!field.empty() || !row.empty() || was_quoted) end_row();
  return t;
}

// The delimiter whose first records agree best on a field count of two or more.
char detect_delimiter(std::string_view s) {
  char best = ',';
  size_t best_agree = 0, best_fields = 0;
  for (char d : {',', '\t', ';', '|'}) {
    Table t = read_records(s.substr(0, 64 * 1024), d, 10);
    if (t.rows.size() > 1 && s.size() > 64 * 1024) t.rows.pop_back();  // may be cut short
    if (t.rows.empty() || t.rows[0].size() < 2) continue;
    size_t fields = t.rows[0].size();
    size_t agree = static_cast<size_t>(
        std::count_if(t.rows.begin(), t.rows.end(), [&](const Row& r) { return r.size() == fields; }));
    if (agree > best_agree || (agree == best_agree && fields > best_fields)) {
      best = d;
      best_agree = agree;
      best_fields = fields;
    }
  }
  return best;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\n");
  return std::string(s.substr(b, e - b + 1));
}

bool ends_with_tsv(const std::string& path) {
  std::string p = path;
  for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p.size() >= 4 && p.compare(p.size() - 4, 4, ".tsv") == 0;
}

class CsvParser final : public Parser {
 public:
  std::string_view format() const override { return "csv"; }

  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, read_file_limited(path, opts));
    ParsedDocument doc;
    doc.format = "csv";
    auto text = decode_text(bytes, &doc.encoding);
    if (!text.is_ok()) return text.status().with_context("parse '" + path + "'");
    bytes.clear();
    const std::string body = normalize_newlines(text.value());
    const char delim = ends_with_tsv(path) ? '\t' : detect_delimiter(body);
    Table table = read_records(body, delim, 0);
    if (table.unclosed_quote)
      doc.warnings.push_back("a quoted field is not closed; it runs to the end of the file");
    if (table.rows.empty()) {
      doc.warnings.push_back("no rows");
      return doc;
    }

    std::vector<std::string> names;
    for (size_t i = 0; i < table.rows[0].size(); ++i) {
      std::string n = trim(table.rows[0][i]);
      names.push_back(n.empty() ? "column " + std::to_string(i + 1) : n);
    }
    size_t ragged = 0;
    for (size_t r = 1; r < table.rows.size(); ++r) {
      const Row& row = table.rows[r];
      if (row.size() != names.size()) ++ragged;
      std::string record;
      for (size_t i = 0; i < row.size(); ++i) {
        std::string v = trim(row[i]);
        if (v.empty()) continue;
        if (!record.empty()) record += "; ";
        record += i < names.size() ? names[i] : "column " + std::to_string(i + 1);
        record += ": ";
        record += v;
      }
      add_block(doc, BlockKind::kRecord, std::move(record));
    }
    if (ragged != 0) {
      doc.warnings.push_back(std::to_string(ragged) + (ragged == 1 ? " row has" : " rows have") +
                             " a different number of fields than the header (" +
                             std::to_string(names.size()) + ")");
    }
    if (doc.blocks.empty()) doc.warnings.push_back("no data rows under the header");
    return doc;
  }
};

}  // namespace

Parser* csv_parser() {
  static CsvParser parser;
  return &parser;
}

}  // namespace sluice::parse
