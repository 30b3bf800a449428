// DOCX parser: the body of word/document.xml (found through _rels/.rels) read with libzip + libxml2.
//
// Paragraphs (w:p) become blocks: text from w:t, w:tab -> tab, w:br/w:cr -> newline. Headings come
// from the paragraph style, resolved through word/styles.xml by the style's built-in name ("heading
// 1".."heading 9", "Title": localized Word writes ids like "1" but keeps the English names), its
// outline level and its basedOn chain; a direct w:outlineLvl wins. "Title" is heading level 1,
// levels over 6 are clamped to 6. Paragraphs with numbering (w:numPr, direct or from the style) are
// list items. Tables give one kTableRow per w:tr, cell texts joined by " | " (nested tables are
// flattened into their cell). The title is dc:title of docProps/core.xml, else the first Title
// paragraph, else the first heading.
// Not read: deleted revisions (w:del), field codes, text boxes and drawings (mc:AlternateContent,
// w:drawing, w:pict: they would otherwise come twice), headers, footers, footnotes and comments.
//
// Thread-safety: libxml2 is initialised once (xmlInitParser); each parse has its own parser
// context with error printing off, so parses may run concurrently.
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "base/env.h"
#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {
namespace {

constexpr const char* kWordNs = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
constexpr const char* kWordStrictNs = "http://purl.oclc.org/ooxml/wordprocessingml/main";
constexpr const char* kDcNs = "http://purl.org/dc/elements/1.1/";
constexpr int kMaxStyleDepth = 16;  // basedOn chains are short; this also stops cycles

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

struct XmlDocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocFree>;

struct XmlCtxtFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

Status bad(const std::string& msg) {
  return Status(ErrorClass::kBadInput, Code::kCorruption, msg);
}

// ---- zip ----

// Reads one part of the package; *found is false (and the result empty) when it is not there.
// Part names are case-insensitive in OPC packages.
Result<std::string> read_part(zip_t* zip, const std::string& path, const std::string& name,
                              const ParseOptions& opts, bool* found) {
  *found = false;
  const zip_int64_t index = zip_name_locate(zip, name.c_str(), ZIP_FL_NOCASE);
  if (index < 0) return std::string();
  *found = true;
  auto too_large = [&](const std::string& size) {
    return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                  "DOCX part too large: '" + path + "': " + name + " unpacks to " + size +
                      " bytes, over the limit of " + std::to_string(opts.max_bytes) + " bytes (max_bytes)");
  };
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(zip, static_cast<zip_uint64_t>(index), 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
      st.size > opts.max_bytes) {
    return too_large(std::to_string(st.size));
  }
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(
      zip_fopen_index(zip, static_cast<zip_uint64_t>(index), 0), &zip_fclose);
  if (!f) return bad("damaged DOCX: '" + path + "': cannot open " + name + " (" + zip_strerror(zip) + ")");
  std::string data;
  char buf[65536];
  zip_int64_t n;
  // The declared size may lie: the limit is enforced on what actually comes out.
  while ((n = zip_fread(f.get(), buf, sizeof(buf))) > 0) {
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > opts.max_bytes) return too_large("more than " + std::to_string(opts.max_bytes));
  }
  if (n < 0)
    return bad("damaged DOCX: '" + path + "': cannot read " + name + " (" + zip_file_strerror(f.get()) + ")");
  return data;
}

// ---- xml ----

bool in_word_ns(const xmlNode* n) {
  return n->ns != nullptr && n->ns->href != nullptr &&
         (xmlStrEqual(n->ns->href, BAD_CAST kWordNs) || xmlStrEqual(n->ns->href, BAD_CAST kWordStrictNs));
}

bool is_w(const xmlNode* n, const char* local) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST local) && in_word_ns(n);
}

bool is_element(const xmlNode* n, const char* local) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST local);
}

const xmlNode* w_child(const xmlNode* n, const char* local) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if (is_w(c, local)) return c;
  }
  return nullptr;
}

std::string text_of(const xmlNode* n) {
  xmlChar* s = xmlNodeGetContent(n);
  std::string out = s ? reinterpret_cast<const char*>(s) : "";
  xmlFree(s);
  return out;
}

// An attribute by local name (w:val and friends; namespace not checked: some writers omit it).
std::string attr(const xmlNode* n, const char* local, bool* present = nullptr) {
  if (present) *present = false;
  for (const xmlAttr* a = n ? n->properties : nullptr; a; a = a->next) {
    if (!xmlStrEqual(a->name, BAD_CAST local)) continue;
    if (present) *present = true;
    xmlChar* v = xmlNodeListGetString(n->doc, a->children, 1);
    std::string out = v ? reinterpret_cast<const char*>(v) : "";
    xmlFree(v);
    return out;
  }
  return "";
}

Result<XmlDocPtr> parse_xml(const std::string& data, const std::string& path, const std::string& name) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                  "DOCX part too large: '" + path + "': " + name);
  }
  std::unique_ptr<xmlParserCtxt, XmlCtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) throw std::bad_alloc();
  // No network, no entity expansion, no printing: errors are read back from the context.
  xmlDoc* doc = xmlCtxtReadMemory(ctxt.get(), data.data(), static_cast<int>(data.size()), name.c_str(),
                                  nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc == nullptr) {
    std::string detail = "not well-formed XML";
    if (const xmlError* e = xmlCtxtGetLastError(ctxt.get()); e != nullptr && e->message != nullptr) {
      detail += " (line " + std::to_string(e->line) + ": " + trim(e->message) + ")";
    }
    return bad("damaged DOCX: '" + path + "': " + name + " is " + detail);
  }
  return XmlDocPtr(doc);
}

// ---- package relationships ----

std::string dir_of(const std::string& part) {
  const size_t slash = part.rfind('/');
  return slash == std::string::npos ? "" : part.substr(0, slash + 1);
}

// Resolves a relationship target against the directory of its source part ("../x", "/x", "x").
std::string resolve(const std::string& base_dir, const std::string& target) {
  std::string joined = !target.empty() && target[0] == '/' ? target.substr(1) : base_dir + target;
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('/', start);
    if (end == std::string::npos) end = joined.size();
    const std::string seg = joined.substr(start, end - start);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    start = end + 1;
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// The target of the first relationship of the part's .rels whose Type ends with type_suffix, or "".
Result<std::string> find_relationship(zip_t* zip, const std::string& path, const std::string& source_part,
                                      const std::string& type_suffix, const ParseOptions& opts) {
  const std::string dir = dir_of(source_part);
  const std::string rels = dir + "_rels/" + source_part.substr(dir.size()) + ".rels";
  bool found = false;
  SLUICE_ASSIGN_OR_RETURN(std::string data, read_part(zip, path, rels, opts, &found));
  if (!found) return std::string();
  SLUICE_ASSIGN_OR_RETURN(XmlDocPtr doc, parse_xml(data, path, rels));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  for (const xmlNode* r = root ? root->children : nullptr; r; r = r->next) {
    if (!is_element(r, "Relationship") || attr(r, "TargetMode") == "External") continue;
    const std::string type = attr(r, "Type");
    if (type.size() >= type_suffix.size() &&
        type.compare(type.size() - type_suffix.size(), std::string::npos, type_suffix) == 0) {
      return resolve(dir, attr(r, "Target"));
    }
  }
  return std::string();
}

// ---- styles ----

struct StyleInfo {
  std::string based_on;
  std::string name;  // lower-cased built-in name: "heading 1", "title", ...
  int outline = -1;  // w:outlineLvl (0-based), -1 when unset
  int num = -1;      // 1 when the style numbers its paragraphs, 0 when it turns numbering off
};

struct ParaStyle {
  int heading = 0;  // 1..6, 0 for body text
  bool title = false;
  bool list = false;
};

class Styles {
 public:
  void load(const xmlNode* root) {
    for (const xmlNode* s = root ? root->children : nullptr; s; s = s->next) {
      if (!is_w(s, "style") || attr(s, "type") != "paragraph") continue;
      StyleInfo info;
      info.based_on = attr(w_child(s, "basedOn"), "val");
      info.name = lower(trim(attr(w_child(s, "name"), "val")));
      const xmlNode* ppr = w_child(s, "pPr");
      bool has_outline = false;
      const std::string outline = attr(w_child(ppr, "outlineLvl"), "val", &has_outline);
      if (has_outline) info.outline = std::atoi(outline.c_str());
      if (const xmlNode* num = w_child(ppr, "numPr")) {
        const std::string id = attr(w_child(num, "numId"), "val");
        info.num = id.empty() || id == "0" ? 0 : 1;
      }
      styles_[attr(s, "styleId")] = std::move(info);
    }
  }

  // Heading level (0 = none) and title-ness of a style id, following basedOn.
  void heading_of(const std::string& id, ParaStyle* out) const {
    std::string cur = id;
    for (int depth = 0; depth < kMaxStyleDepth && !cur.empty(); ++depth) {
      const auto it = styles_.find(cur);
      if (it == styles_.end()) {
        from_name(lower(cur), out);  // no styles.xml or an unknown id: "Heading1", "Title"
        return;
      }
      const StyleInfo& s = it->second;
      if (from_name(s.name, out) || from_name(lower(cur), out)) return;
      if (s.outline >= 0 && s.outline < 9) {
        out->heading = std::min(s.outline + 1, 6);
        return;
      }
      cur = s.based_on;
    }
  }

  bool numbered(const std::string& id) const {
    std::string cur = id;
    for (int depth = 0; depth < kMaxStyleDepth && !cur.empty(); ++depth) {
      const auto it = styles_.find(cur);
      if (it == styles_.end()) return false;
      if (it->second.num >= 0) return it->second.num == 1;
      cur = it->second.based_on;
    }
    return false;
  }

 private:
  // "title", "heading 3" (built-in names) and "heading3" (English style ids).
  static bool from_name(const std::string& name, ParaStyle* out) {
    if (name == "title") {
      out->heading = 1;
      out->title = true;
      return true;
    }
    if (name.rfind("heading", 0) != 0) return false;
    std::string rest = name.substr(7);
    if (!rest.empty() && rest[0] == ' ') rest = rest.substr(1);
    if (rest.size() != 1 || rest[0] < '1' || rest[0] > '9') return false;
    out->heading = std::min(rest[0] - '0', 6);
    return true;
  }

  std::map<std::string, StyleInfo> styles_;
};

// ---- body ----

class BodyReader {
 public:
  BodyReader(const Styles& styles, ParsedDocument* doc) : styles_(styles), doc_(doc) {}

  void read_blocks(const xmlNode* parent) {
    for (const xmlNode* n = parent->children; n; n = n->next) {
      if (is_w(n, "p")) {
        paragraph(n);
      } else if (is_w(n, "tbl")) {
        table(n);
      } else if (is_w(n, "sdt")) {
        if (const xmlNode* content = w_child(n, "sdtContent")) read_blocks(content);
      } else if (is_w(n, "customXml") || is_w(n, "ins") || is_w(n, "moveTo")) {
        read_blocks(n);
      }
    }
  }

  const std::string& first_title() const { return first_title_; }
  const std::string& first_heading() const { return first_heading_; }

 private:
  void paragraph(const xmlNode* p) {
    std::string text;
    collect_text(p, &text);
    text = trim(text);
    if (text.empty()) return;
    ParaStyle style;
    bool list = false;
    const xmlNode* ppr = w_child(p, "pPr");
    const std::string style_id = attr(w_child(ppr, "pStyle"), "val");
    bool has_outline = false;
    const std::string outline = attr(w_child(ppr, "outlineLvl"), "val", &has_outline);
    const int outline_level = has_outline ? std::atoi(outline.c_str()) : -1;
    if (outline_level >= 0 && outline_level < 9) {
      style.heading = std::min(outline_level + 1, 6);
    } else {
      if (!style_id.empty()) styles_.heading_of(style_id, &style);
    }
    if (const xmlNode* num = w_child(ppr, "numPr")) {
      const std::string id = attr(w_child(num, "numId"), "val");
      list = !id.empty() && id != "0";  // numId 0 takes the style's numbering away
    } else {
      list = !style_id.empty() && styles_.numbered(style_id);
    }
    Block b;
    b.text = std::move(text);
    if (style.heading > 0) {
      b.kind = BlockKind::kHeading;
      b.level = style.heading;
      if (style.title && first_title_.empty()) first_title_ = b.text;
      if (first_heading_.empty()) first_heading_ = b.text;
    } else if (list) {
      b.kind = BlockKind::kListItem;
    }
    doc_->blocks.push_back(std::move(b));
  }

  // The text of the runs under n, in document order.
  static void collect_text(const xmlNode* n, std::string* out) {
    for (const xmlNode* c = n->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (is_element(c, "AlternateContent")) continue;  // text boxes/drawings: see the file comment
      if (!in_word_ns(c)) continue;
      const std::string local = reinterpret_cast<const char*>(c->name);
      if (local == "t") {
        *out += text_of(c);
      } else if (local == "tab") {
        *out += '\t';
      } else if (local == "br" || local == "cr") {
        *out += '\n';
      } else if (local == "noBreakHyphen") {
        *out += '-';
      } else if (local == "pPr" || local == "rPr" || local == "del" || local == "moveFrom" ||
                 local == "drawing" || local == "pict" || local == "object" || local == "instrText" ||
                 local == "delText" || local == "tbl" || local == "p") {
        continue;
      } else {
        collect_text(c, out);  // w:r, w:hyperlink, w:ins, w:smartTag, w:sdt, w:fldSimple, ...
      }
    }
  }

  // A cell's paragraphs (and nested tables) as one line.
  static void cell_text(const xmlNode* n, std::string* out) {
    for (const xmlNode* c = n->children; c; c = c->next) {
      std::string part;
      if (is_w(c, "p")) {
        collect_text(c, &part);
      } else if (is_w(c, "tbl")) {
        for (const xmlNode* tr = c->children; tr; tr = tr->next) {
          for (const xmlNode* tc = is_w(tr, "tr") ? tr->children : nullptr; tc; tc = tc->next) {
            if (is_w(tc, "tc")) cell_text(tc, &part), part += ' ';
          }
        }
      } else if (is_w(c, "sdt") || is_w(c, "sdtContent") || is_w(c, "customXml")) {
        cell_text(c, &part);
      }
      std::replace(part.begin(), part.end(), '\n', ' ');
      std::replace(part.begin(), part.end(), '\t', ' ');
      part = trim(part);
      if (part.empty()) continue;
      if (!out->empty()) *out += ' ';
      *out += part;
    }
  }

  void table(const xmlNode* tbl) {
    for (const xmlNode* tr = tbl->children; tr; tr = tr->next) {
      if (is_w(tr, "sdt") || is_w(tr, "customXml")) {
        const xmlNode* inner = is_w(tr, "sdt") ? w_child(tr, "sdtContent") : tr;
        if (inner) table(inner);
        continue;
      }
      if (!is_w(tr, "tr")) continue;
      std::vector<std::string> cells;
      bool any = false;
      for (const xmlNode* tc = tr->children; tc; tc = tc->next) {
        const xmlNode* cell = tc;
        if (is_w(tc, "sdt")) cell = w_child(w_child(tc, "sdtContent"), "tc");
        if (!is_w(cell, "tc")) continue;
        std::string text;
        cell_text(cell, &text);
        any = any || !text.empty();
        cells.push_back(std::move(text));
      }
      if (!any) continue;
      Block b;
      b.kind = BlockKind::kTableRow;
      for (size_t i = 0; i < cells.size(); ++i) b.text += (i ? " | " : "") + cells[i];
      doc_->blocks.push_back(std::move(b));
    }
  }

  const Styles& styles_;
  ParsedDocument* doc_;
  std::string first_title_;
  std::string first_heading_;
};

// What a zip that is not a DOCX probably is, for the error message.
std::string zip_kind_hint(zip_t* zip) {
  if (zip_name_locate(zip, "xl/workbook.xml", ZIP_FL_NOCASE) >= 0) return " (it looks like an XLSX workbook)";
  if (zip_name_locate(zip, "ppt/presentation.xml", ZIP_FL_NOCASE) >= 0) return " (it looks like a PPTX deck)";
  if (zip_name_locate(zip, "content.xml", ZIP_FL_NOCASE) >= 0) return " (it looks like an OpenDocument file)";
  return "";
}

// The file's size, with the same errors as read_file_limited() in parse_file.cc.
Result<uint64_t> file_size_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return Status::not_found("file not found: '" + path + "'");
    return errno_status("stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) return Status::invalid_argument("'" + path + "' is a directory, not a file");
  return static_cast<uint64_t>(st.st_size);
}

// An OLE compound file: a legacy .doc, or a DOCX encrypted by Office (which wraps it in one).
bool is_ole_file(const std::string& path) {
  static constexpr unsigned char kMagic[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  unsigned char head[8] = {};
  return f && std::fread(head, 1, sizeof(head), f.get()) == sizeof(head) &&
         std::equal(head, head + 8, kMagic);
}

Result<ParsedDocument> parse_docx(const std::string& path, const ParseOptions& opts) {
  SLUICE_ASSIGN_OR_RETURN(const uint64_t size, file_size_of(path));
  if (size > opts.max_bytes) {
    return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                  "DOCX too large: '" + path + "' is " + std::to_string(size) + " bytes, over the limit of " +
                      std::to_string(opts.max_bytes) + " bytes (max_bytes)");
  }
  static std::once_flag xml_init;
  std::call_once(xml_init, [] { xmlInitParser(); });

  int zip_err = 0;
  ZipPtr zip(zip_open(path.c_str(), ZIP_RDONLY, &zip_err));
  if (!zip) {
    if (zip_err == ZIP_ER_OPEN || zip_err == ZIP_ER_READ) {
      return Status::io_error("cannot read '" + path + "'");
    }
    if (is_ole_file(path)) {
      return Status(
          ErrorClass::kBadInput, Code::kUnsupported,
          "not a DOCX: '" + path + "' is an OLE compound file (an encrypted DOCX or a legacy .doc)");
    }
    zip_error_t ze;
    zip_error_init_with_code(&ze, zip_err);
    const std::string detail = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    return bad("damaged DOCX: '" + path + "' is not a readable zip archive (" + detail + ")");
  }

  SLUICE_ASSIGN_OR_RETURN(std::string main_part,
                          find_relationship(zip.get(), path, "", "/officeDocument", opts));
  if (main_part.empty()) main_part = "word/document.xml";
  bool found = false;
  SLUICE_ASSIGN_OR_RETURN(const std::string body_xml, read_part(zip.get(), path, main_part, opts, &found));
  if (!found) {
    return Status(
        ErrorClass::kBadInput, Code::kUnsupported,
        "not a DOCX: '" + path + "' is a zip archive without " + main_part + zip_kind_hint(zip.get()));
  }
  SLUICE_ASSIGN_OR_RETURN(XmlDocPtr body_doc, parse_xml(body_xml, path, main_part));
  const xmlNode* root = xmlDocGetRootElement(body_doc.get());
  const xmlNode* body = is_w(root, "document") ? w_child(root, "body") : nullptr;
  if (body == nullptr) {
    return Status(ErrorClass::kBadInput, Code::kUnsupported,
                  "not a DOCX: '" + path + "': " + main_part + " is not a WordprocessingML document");
  }

  Styles styles;
  SLUICE_ASSIGN_OR_RETURN(std::string styles_part,
                          find_relationship(zip.get(), path, main_part, "/styles", opts));
  if (styles_part.empty()) styles_part = dir_of(main_part) + "styles.xml";
  SLUICE_ASSIGN_OR_RETURN(const std::string styles_xml,
                          read_part(zip.get(), path, styles_part, opts, &found));
  ParsedDocument doc;
  doc.format = "docx";
  if (found) {
    // Broken styles cost the heading levels, not the text: warn and go on.
    Result<XmlDocPtr> styles_doc = parse_xml(styles_xml, path, styles_part);
    if (styles_doc) {
      styles.load(xmlDocGetRootElement(styles_doc->get()));
    } else {
      doc.warnings.push_back(styles_doc.status().message());
    }
  }

  BodyReader reader(styles, &doc);
  reader.read_blocks(body);

  SLUICE_ASSIGN_OR_RETURN(std::string core_part,
                          find_relationship(zip.get(), path, "", "/core-properties", opts));
  if (core_part.empty()) core_part = "docProps/core.xml";
  SLUICE_ASSIGN_OR_RETURN(const std::string core_xml, read_part(zip.get(), path, core_part, opts, &found));
  if (found) {
    Result<XmlDocPtr> core_doc = parse_xml(core_xml, path, core_part);
    if (core_doc) {
      const xmlNode* core = xmlDocGetRootElement(core_doc->get());
      for (const xmlNode* n = core ? core->children : nullptr; n; n = n->next) {
        if (is_element(n, "title") && n->ns && xmlStrEqual(n->ns->href, BAD_CAST kDcNs))
          doc.title = trim(text_of(n));
      }
    } else {
      doc.warnings.push_back(core_doc.status().message());
    }
  }
  if (doc.title.empty())
    doc.title = !reader.first_title().empty() ? reader.first_title() : reader.first_heading();
  if (doc.blocks.empty()) doc.warnings.push_back("the document has no text");
  return doc;
}

}  // namespace

Parser* docx_parser() {
  static GuardedParser<parse_docx> parser("docx", "DOCX");
  return &parser;
}

}  // namespace sluice::parse
