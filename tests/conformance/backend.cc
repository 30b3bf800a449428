// The registry of conformance backends (see backend.h).
#include "conformance/backend.h"

#include <algorithm>
#include <map>
#include <mutex>

namespace sluice::conformance {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, BackendFactory, std::less<>> factories;
};

// A function-local static, so registrations from other files' static initialisers find it built
// whatever order the linker put those files in.
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

bool register_backend(std::string name, BackendFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[std::move(name)] = std::move(factory);
  return true;
}

std::vector<std::string> registered_backends() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<BackendFixture> make_backend(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.factories.find(name);
  if (it == r.factories.end()) return nullptr;
  return it->second();
}

}  // namespace sluice::conformance
