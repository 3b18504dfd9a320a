#include "stages/offset_store.hpp"

#include <map>
#include <mutex>

namespace etld {

namespace {

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::weak_ptr<OffsetStore>>& registry() {
  static std::map<std::string, std::weak_ptr<OffsetStore>> stores;
  return stores;
}

}  // namespace

void register_offset_store(const std::string& group, const std::shared_ptr<OffsetStore>& store) {
  std::lock_guard lock(registry_mutex());
  registry()[group] = store;
}

void unregister_offset_store(const std::string& group, const OffsetStore* store) {
  std::lock_guard lock(registry_mutex());
  auto it = registry().find(group);
  if (it == registry().end()) return;
  auto existing = it->second.lock();
  if (!existing || existing.get() == store) registry().erase(it);
}

std::shared_ptr<OffsetStore> find_offset_store(const std::string& group) {
  std::lock_guard lock(registry_mutex());
  auto it = registry().find(group);
  return it == registry().end() ? nullptr : it->second.lock();
}

}  // namespace etld
