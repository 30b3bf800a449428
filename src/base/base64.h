// Base64 (RFC 4648, standard alphabet, with padding): binary values shown in JSON, and float
// vectors carried in pipeline messages.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

std::string base64_encode(std::string_view bytes);
// nullopt when s is not well-formed base64 (bad character, bad length or padding).
std::optional<std::string> base64_decode(std::string_view s);

}  // namespace sluice
