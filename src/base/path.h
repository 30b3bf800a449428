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

// Temporary files written next to the file they will replace are named path + kTempInfix + a
// suffix unique to this writer (process and call): two processes replacing one file (two workers
// saving one index, say) then never write into, or rename away, each other's temporary file.
inline constexpr std::string_view kTempInfix = ".tmp.";
std::string unique_temp_path(std::string_view path);

}  // namespace sluice
