#include "stages/engine/registry.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "config/schema/secrets.hpp"

namespace etld {

namespace {
std::map<std::string, StageType>& registry() {
  static std::map<std::string, StageType> types;  // function-local: safe during static init
  return types;
}
}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::source: return "source";
    case Role::transform: return "transform";
    case Role::sink: return "sink";
  }
  return "?";
}

std::unique_ptr<Source> StageFactory::make_source(int) { throw std::logic_error("not a source"); }
std::unique_ptr<Transform> StageFactory::make_transform(int) { throw std::logic_error("not a transform"); }
std::unique_ptr<Sink> StageFactory::make_sink(int) { throw std::logic_error("not a sink"); }

void remember_secrets(const StageFactory& factory) {
  for (const auto& secret : factory.secrets()) remember_secret(secret);
}

const StageType* find_stage_type(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<const StageType*> all_stage_types() {
  std::vector<const StageType*> out;
  for (const auto& [name, type] : registry()) out.push_back(&type);
  return out;
}

StageRegistration::StageRegistration(StageType type) {
  auto name = type.name;
  if (!registry().emplace(name, std::move(type)).second)
    throw std::logic_error("stage type registered twice: " + name);
}

}  // namespace etld
