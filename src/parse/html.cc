// The HTML parser: libxml2's forgiving HTML parser builds the tree; we walk it and keep the text a
// reader came for. Boilerplate goes: scripts, styles, navigation, headers and footers, sidebars,
// forms, and elements whose class, id or role says they are navigation, menus, breadcrumbs,
// footers or cookie banners. Headings keep their level; p, li, pre and table rows become blocks.
// The charset comes from a BOM, then <meta>, else UTF-8 (GB18030 when the bytes are not UTF-8).
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* name_of(const xmlNode* n) {
  return reinterpret_cast<const char*>(n->name);
}

std::string attr(const xmlNode* n, const char* name) {
  if (n->properties == nullptr) return {};  // most elements have no attributes: skip the lookup
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return out;
}

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Elements whose content is never text a reader came for.
bool skipped_element(std::string_view name) {
  return one_of(name, {"script", "style", "noscript", "template", "svg", "nav", "footer", "aside", "form",
                       "iframe", "object", "embed", "canvas", "button", "select", "head", "math"});
}

// Words in class/id that mark boilerplate (matched against whole words of the attribute, so
// "footnote" and "canvas" are safe).
bool boilerplate_word(std::string_view w) {
  return one_of(w, {"nav", "navbar", "navigation", "menu", "menubar", "sidebar", "breadcrumb", "breadcrumbs",
                    "footer", "cookie", "cookies", "consent"});
}

bool boilerplate_attr(const std::string& value) {
  std::string v = lower(value);
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && !std::isalnum(static_cast<unsigned char>(v[i]))) ++i;
    size_t j = i;
    while (j < v.size() && std::isalnum(static_cast<unsigned char>(v[j]))) ++j;
    if (j > i && boilerplate_word(std::string_view(v).substr(i, j - i))) return true;
    i = j;
  }
  return false;
}

bool boilerplate_role(const std::string& role) {
  std::string r = lower(role);
  return one_of(r, {"navigation", "menu", "menubar", "banner", "contentinfo", "complementary", "search"});
}

// Elements that end the text before them and start a new block.
bool block_element(std::string_view name) {
  return one_of(
      name, {"address", "article", "blockquote", "body",       "center", "dd",    "details", "dialog", "div",
             "dl",      "dt",      "fieldset",   "figcaption", "figure", "h1",    "h2",      "h3",     "h4",
             "h5",      "h6",      "header",     "hgroup",     "hr",     "html",  "li",      "main",   "ol",
             "p",       "pre",     "section",    "summary",    "table",  "tbody", "thead",   "tfoot",  "tr",
             "td",      "th",      "ul",         "caption",    "legend", "menu"});
}

int heading_level(std::string_view name) {
  if (name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') return name[1] - '0';
  return 0;
}

// Collapses runs of HTML whitespace to one space, keeping the line breaks <br> made ("\n").
std::string collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n') {
      while (!out.empty() && out.back() == ' ') out.pop_back();
      if (!out.empty() && out.back() != '\n') out += '\n';
      space = false;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
      space = true;
    } else {
      if (space && !out.empty() && out.back() != '\n') out += ' ';
      space = false;
      out += c;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}

class Walker {
 public:
  explicit Walker(ParsedDocument& doc) : doc_(doc) {}

  void walk(const xmlNode* n, int depth, bool in_article) {
    for (; n != nullptr; n = n->next) {
      if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        const char* t = reinterpret_cast<const char*>(n->content);
        if (t != nullptr) {
          // Line breaks in the source are only whitespace; "\n" in the buffer means <br>.
          std::string s(t);
          std::replace(s.begin(), s.end(), '\n', ' ');
          buf_ += s;
        }
        continue;
      }
      if (n->type != XML_ELEMENT_NODE || n->name == nullptr) continue;
      // libxml2's HTML parser lowercases element names already.
      const std::string_view name = name_of(n);
      if (skip(n, name, in_article)) continue;
      if (depth > 200) continue;  // pathological nesting: stop rather than exhaust the stack
      if (name == "br") {
        buf_ += '\n';
        continue;
      }
      if (name == "title") continue;  // only in <head>, which is handled apart
      bool article = in_article || name == "article" || name == "main";
      if (int level = heading_level(name); level != 0) {
        flush();
        walk(n->children, depth + 1, article);
        std::string t = collapse(buf_);
        buf_.clear();
        std::replace(t.begin(), t.end(), '\n', ' ');
        if (first_h1_.empty() && level == 1) first_h1_ = t;
        add_block(doc_, BlockKind::kHeading, std::move(t), level);
      } else if (name == "pre") {
        flush();
        std::string code;
        raw_text(n->children, code, depth + 1);
        if (!code.empty() && code[0] == '\n') code.erase(0, 1);  // HTML drops a leading newline
        add_block(doc_, BlockKind::kCode, std::move(code));
      } else if (name == "tr" && simple_row(n)) {
        flush();
        std::string row;
        for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
          if (c->type != XML_ELEMENT_NODE) continue;
          std::string_view cn = name_of(c);
          if (cn != "td" && cn != "th") continue;
          walk(c->children, depth + 1, article);
          std::string cell = collapse(buf_);
          buf_.clear();
          std::replace(cell.begin(), cell.end(), '\n', ' ');
          if (!row.empty()) row += " | ";
          row += cell;
        }
        if (row.find_first_not_of(" |") != std::string::npos)
          add_block(doc_, BlockKind::kTableRow, std::move(row));
      } else if (name == "li") {
        flush();
        kind_stack_.push_back(BlockKind::kListItem);
        walk(n->children, depth + 1, article);
        flush();
        kind_stack_.pop_back();
      } else if (block_element(name)) {
        flush();
        // <li><p>text</p></li> is still a list item.
        bool in_item = !kind_stack_.empty() && kind_stack_.back() == BlockKind::kListItem;
        kind_stack_.push_back(in_item && (name == "p" || name == "div") ? BlockKind::kListItem
                                                                        : BlockKind::kParagraph);
        walk(n->children, depth + 1, article);
        flush();
        kind_stack_.pop_back();
      } else {
        walk(n->children, depth + 1, article);  // inline: a, span, em, code, ...
      }
    }
  }

  // Text left over at the end.
  void finish() { flush(); }
  const std::string& first_h1() const { return first_h1_; }

 private:
  bool skip(const xmlNode* n, std::string_view name, bool in_article) const {
    if (skipped_element(name)) return true;
    // A <header> inside an article or <main> holds the article's title; the page's does not.
    if (name == "header" && !in_article) return true;
    if (n->properties == nullptr) return false;
    // Never judge the page's outer containers by their class: "has-sidebar" on <body> is common.
    if (one_of(name, {"html", "body", "main", "article"})) return false;
    bool flagged = boilerplate_role(attr(n, "role")) || boilerplate_attr(attr(n, "class")) ||
                   boilerplate_attr(attr(n, "id"));
    // Themes name layout wrappers after the navigation they sit beside (Read the Docs wraps the
    // whole page in "wy-grid-for-nav"): a flagged element that holds the main content stays.
    return flagged && !holds_main_content(n->children, 0);
  }

  // Whether the subtree has the page's main content: <main>, <article>, role="main" or an <h1>.
  static bool holds_main_content(const xmlNode* n, int depth) {
    if (depth > 50) return false;
    for (; n != nullptr; n = n->next) {
      if (n->type != XML_ELEMENT_NODE || n->name == nullptr) continue;
      std::string_view name = name_of(n);
      if (name == "main" || name == "article" || name == "h1") return true;
      if (lower(attr(n, "role")) == "main") return true;
      if (holds_main_content(n->children, depth + 1)) return true;
    }
    return false;
  }

  // A row is a table row when its cells hold only inline content; layout tables (cells with
  // paragraphs, lists or tables) are walked as containers instead.
  static bool simple_row(const xmlNode* tr) {
    for (const xmlNode* c = tr->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE && has_block_descendant(c->children, 0)) return false;
    }
    return true;
  }
  static bool has_block_descendant(const xmlNode* n, int depth) {
    if (depth > 50) return true;
    for (; n != nullptr; n = n->next) {
      if (n->type != XML_ELEMENT_NODE) continue;
      std::string_view name = name_of(n);
      if (name != "td" && name != "th" && block_element(name)) return true;
      if (has_block_descendant(n->children, depth + 1)) return true;
    }
    return false;
  }

  // Text of a <pre>, whitespace kept.
  static void raw_text(const xmlNode* n, std::string& out, int depth) {
    for (; n != nullptr && depth < 200; n = n->next) {
      if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content != nullptr) {
        out += reinterpret_cast<const char*>(n->content);
      } else if (n->type == XML_ELEMENT_NODE) {
        std::string_view name = name_of(n);
        if (name == "br") {
          out += '\n';
        } else if (!skipped_element(name)) {
          raw_text(n->children, out, depth + 1);
        }
      }
    }
  }

  void flush() {
    std::string t = collapse(buf_);
    buf_.clear();
    add_block(doc_, kind_stack_.empty() ? BlockKind::kParagraph : kind_stack_.back(), std::move(t));
  }

  ParsedDocument& doc_;
  std::string buf_;
  std::vector<BlockKind> kind_stack_;
  std::string first_h1_;
};

const xmlNode* find_element(const xmlNode* n, std::string_view name, int depth) {
  for (; n != nullptr && depth < 64; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    if (std::string_view(name_of(n)) == name) return n;
    if (const xmlNode* f = find_element(n->children, name, depth + 1)) return f;
  }
  return nullptr;
}

std::string node_text(const xmlNode* n) {
  xmlChar* c = xmlNodeGetContent(n);
  if (c == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(c));
  xmlFree(c);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return collapse(out);
}

// The charset a <meta> in the first bytes declares ("" when none).
std::string meta_charset(std::string_view bytes) {
  std::string head = lower(bytes.substr(0, 4096));
  size_t pos = 0;
  while ((pos = head.find("<meta", pos)) != std::string::npos) {
    size_t end = head.find('>', pos);
    if (end == std::string::npos) break;
    std::string_view tag = std::string_view(head).substr(pos, end - pos);
    size_t cs = tag.find("charset");
    if (cs != std::string_view::npos) {
      size_t i = cs + 7;
      while (i < tag.size() && (tag[i] == ' ' || tag[i] == '=' || tag[i] == '"' || tag[i] == '\'')) ++i;
      size_t j = i;
      while (j < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[j])) || tag[j] == '-' ||
                                tag[j] == '_' || tag[j] == ':' || tag[j] == '.')) {
        ++j;
      }
      if (j > i) return std::string(tag.substr(i, j - i));
    }
    pos = end;
  }
  return {};
}

// The iconv name for a declared charset, the way browsers read labels (latin1 means windows-1252,
// gb2312 means GBK, which GB18030 contains).
std::string iconv_name(const std::string& label) {
  if (label == "utf-8" || label == "utf8") return "UTF-8";
  if (label == "gb2312" || label == "gbk" || label == "gb18030" || label == "x-gbk" || label == "cp936")
    return "GB18030";
  if (label == "iso-8859-1" || label == "latin1" || label == "us-ascii" || label == "ascii" ||
      label == "windows-1252" || label == "cp1252") {
    return "WINDOWS-1252";
  }
  std::string up = label;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up;
}

// The page as UTF-8, and the encoding it was in.
Result<std::string> decode_html(std::string_view bytes, std::string* encoding,
                                std::vector<std::string>& warnings) {
  bool bom = bytes.substr(0, 3) == "\xEF\xBB\xBF" || bytes.substr(0, 2) == "\xFF\xFE" ||
             bytes.substr(0, 2) == "\xFE\xFF";
  if (!bom) {
    std::string label = meta_charset(bytes);
    if (!label.empty()) {
      std::string name = iconv_name(label);
      if (name != "UTF-8") {
        auto r = convert_to_utf8(bytes, name.c_str());
        if (r.is_ok()) {
          *encoding = lower(name);
          return r;
        }
        warnings.push_back("declared charset '" + label +
                           "' does not fit the bytes: " + r.status().message());
      }
    }
  }
  auto r = decode_text(bytes, encoding);
  if (r.is_ok()) return r;
  // Not UTF-8, not GB18030, no usable declaration: windows-1252 decodes any byte, as browsers do.
  auto w = convert_to_utf8(bytes, "WINDOWS-1252");
  if (w.is_ok() && w.value().find('\0') == std::string::npos) {
    *encoding = "windows-1252";
    warnings.push_back("no usable charset: read as windows-1252");
    return w;
  }
  return r.status();
}

class HtmlParser final : public Parser {
 public:
  std::string_view format() const override { return "html"; }

  Result<ParsedDocument> parse(const std::string& path, const ParseOptions& opts) override {
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, read_file_limited(path, opts));
    if (bytes.size() > static_cast<size_t>(INT_MAX)) {
      return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                    "'" + path + "' is too large for the HTML parser");
    }
    ParsedDocument doc;
    doc.format = "html";
    auto text = decode_html(bytes, &doc.encoding, doc.warnings);
    if (!text.is_ok()) return text.status().with_context("parse '" + path + "'");
    bytes.clear();
    bytes.shrink_to_fit();

    static std::once_flag init;
    std::call_once(init, [] { xmlInitParser(); });  // libxml2 needs this once before threads use it
    const std::string& html = text.value();
    htmlDocPtr tree = htmlReadMemory(html.data(), static_cast<int>(html.size()), path.c_str(), "UTF-8",
                                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                         HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT);
    if (tree == nullptr)
      return Status::invalid_argument("parse '" + path + "': libxml2 could not read the HTML");
    const xmlNode* root = xmlDocGetRootElement(tree);
    if (const xmlNode* title = find_element(root, "title", 0)) doc.title = node_text(title);
    Walker walker(doc);
    walker.walk(root, 0, false);
    walker.finish();
    if (doc.title.empty()) doc.title = walker.first_h1();
    xmlFreeDoc(tree);
    if (doc.blocks.empty()) doc.warnings.push_back("no text: the page has no content outside boilerplate");
    return doc;
  }
};

}  // namespace

Parser* html_parser() {
  static HtmlParser parser;
  return &parser;
}

}  // namespace sluice::parse
