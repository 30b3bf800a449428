// The dashboard's files, compiled into the binary (cmake/embed_asset.cmake makes the source from
// src/server/assets/), so `sluice serve` needs nothing beside itself. Thread-safety: constant data.
#pragma once

#include <string_view>

namespace sluice::server {

// src/server/assets/dashboard.html, served at `/`.
std::string_view dashboard_html();

}  // namespace sluice::server
