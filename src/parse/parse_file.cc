// The parser registry, parse_file() (detect, then parse) and the bounded file reading every parser
// shares.
//
// A file that is missing when we come to read it (deleted between listing and parsing) is
// kBadInput/kNotFound, like errno_status() says for ENOENT everywhere else: a retry cannot bring it
// back, and the task generator enqueues it again if it reappears.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "base/env.h"
#include "parse/formats.h"
#include "parse/parser.h"

namespace sluice::parse {

namespace {

// Closes the descriptor on every path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status open_error(const std::string& path, int err) {
  if (err == ENOENT) return Status::not_found("file not found: '" + path + "'");
  return errno_status("open", path, err);
}

Status too_big(const std::string& path, uint64_t size, uint64_t limit, bool at_least) {
  return Status(ErrorClass::kResourceLimit, Code::kTooLarge,
                "'" + path + "' is " + (at_least ? "over " : "") + std::to_string(size) +
                    " bytes, over the limit of " + std::to_string(limit) + " bytes (max_bytes)");
}

// Reads up to n bytes from fd into out (appending); stops at end of file. Grows the buffer as data
// arrives (from size_hint on), so a limit far above the file's size costs nothing.
Status read_up_to(int fd, const std::string& path, size_t n, std::string& out, size_t size_hint = 0) {
  const size_t start = out.size();
  size_t done = 0;
  size_t cap = std::min(n, std::max<size_t>(size_hint, 64 * 1024));
  out.resize(start + cap);
  while (done < n) {
    if (done == cap) {
      cap = std::min(n, cap * 2);
      out.resize(start + cap);
    }
    ssize_t r = ::read(fd, out.data() + start + done, cap - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      out.resize(start + done);
      return errno_status("read", path, err);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out.resize(start + done);
  return Status::ok();
}

}  // namespace

Result<std::string> read_file_limited(const std::string& path, const ParseOptions& opts) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return open_error(path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return Status::invalid_argument("'" + path + "' is a directory, not a file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > opts.max_bytes) return too_big(path, size, opts.max_bytes, false);
  std::string data;
  // One byte past the limit tells a file that grew since fstat from one that is exactly at it.
  SLUICE_RETURN_IF_ERROR(read_up_to(fd.get(), path, static_cast<size_t>(opts.max_bytes) + 1, data,
                                    static_cast<size_t>(size) + 1));
  if (data.size() > opts.max_bytes) return too_big(path, opts.max_bytes, opts.max_bytes, true);
  if (data.empty()) return Status::invalid_argument("'" + path + "': empty file");
  return data;
}

Result<std::string> read_file_head(const std::string& path, size_t n) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return open_error(path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return Status::invalid_argument("'" + path + "' is a directory, not a file");
  std::string data;
  SLUICE_RETURN_IF_ERROR(read_up_to(fd.get(), path, n, data));
  return data;
}

char32_t first_code_point(std::string_view s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  int n = p[0] < 0x80 ? 1 : (p[0] >> 5) == 0x6 ? 2 : (p[0] >> 4) == 0xE ? 3 : (p[0] >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || static_cast<size_t>(n) > s.size()) return 0;
  if (n == 1) return p[0];
  char32_t c = p[0] & (0x7F >> n);
  for (int i = 1; i < n; ++i) c = (c << 6) | (p[i] & 0x3F);
  return c;
}

char32_t last_code_point(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i == 0) return 0;
  return first_code_point(s.substr(i - 1));
}

bool is_cjk(char32_t c) {
  return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFFEF) ||
         (c >= 0x20000 && c <= 0x3FFFF);
}

bool is_letter(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= 0xC0 && c != 0xD7 && c != 0xF7 && !is_cjk(c));
}

const char* line_joint(std::string_view prev, std::string_view next) {
  const char32_t a = last_code_point(prev), b = first_code_point(next);
  if (a == '-' && prev.size() >= 2 && is_letter(last_code_point(prev.substr(0, prev.size() - 1))) &&
      is_letter(b)) {
    return "\n";
  }
  if (is_cjk(a) && is_cjk(b)) return "";
  return " ";
}

std::string_view ocr_mode_name(OcrMode m) {
  switch (m) {
    case OcrMode::kAuto: return "auto";
    case OcrMode::kAlways: return "always";
    case OcrMode::kNever: return "never";
  }
  return "auto";
}

Result<OcrMode> ocr_mode_from_name(std::string_view name) {
  for (OcrMode m : {OcrMode::kAuto, OcrMode::kAlways, OcrMode::kNever}) {
    if (name == ocr_mode_name(m)) return m;
  }
  return Status::invalid_argument("unknown OCR mode '" + std::string(name) + "': use auto, always or never");
}

void add_block(ParsedDocument& doc, BlockKind kind, std::string text, int level) {
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  if (kind == BlockKind::kCode) {
    // Code keeps its indentation; only blank lines around it go.
    while (!text.empty() && is_space(text.back())) text.pop_back();
    size_t first = 0;
    while (first < text.size() && text[first] == '\n') ++first;
    text.erase(0, first);
  } else {
    size_t b = 0, e = text.size();
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    text = text.substr(b, e - b);
  }
  if (text.empty()) return;
  Block block;
  block.kind = kind;
  block.level = kind == BlockKind::kHeading ? level : 0;
  block.text = std::move(text);
  doc.blocks.push_back(std::move(block));
}

Parser* parser_for(std::string_view format) {
  if (format == "text") return text_parser();
  if (format == "markdown") return markdown_parser();
  if (format == "html") return html_parser();
  if (format == "csv") return csv_parser();
  if (format == "json") return json_parser();
  if (format == "pdf") return pdf_parser();
  if (format == "docx") return docx_parser();
  if (format == "png" || format == "jpeg" || format == "tiff") return image_parser();
  return nullptr;
}

Result<ParsedDocument> parse_file(const std::string& path, const ParseOptions& opts) {
  const std::string context = "parse '" + path + "'";
  auto head = read_file_head(path, kDetectHeadBytes);
  if (!head.is_ok()) return head.status();
  auto format = detect_format(head.value(), path);
  if (!format.is_ok()) return format.status().with_context(context);
  Parser* parser = parser_for(format.value());
  if (parser == nullptr) {
    return Status::unsupported(context + ": no parser for format '" + format.value() + "' in this build");
  }
  // Parsers check max_bytes themselves before reading the rest of the file.
  return parser->parse(path, opts);
}

}  // namespace sluice::parse
