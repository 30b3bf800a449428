// Path text helpers shared by the modules that take paths from users (the scanner, the file blob
// store). Lexical only: nothing here touches the file system or resolves links.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// An absolute path made lexically normal: "." and empty segments dropped, ".." taken back one
// segment (never above "/"). path must start with '/'; the result does, and has no trailing '/'.
std::string normalize_absolute(std::string_view path);

}  // namespace sluice
