#include "base/path.h"

#include <unistd.h>

#include <atomic>
#include <vector>

namespace sluice {

std::string normalize_absolute(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

std::string unique_temp_path(std::string_view path) {
  static std::atomic<uint64_t> counter{0};
  return std::string(path) + std::string(kTempInfix) + std::to_string(::getpid()) + "." +
         std::to_string(++counter);
}

}  // namespace sluice
