#include "stages/engine/upstream.hpp"

#include <set>
#include <string>

#include "stages/engine/registry.hpp"

namespace etld {

namespace {

void walk(const StageConfig& stage, const PipelineConfig& pipeline, std::set<std::string>& seen,
          std::vector<const StageConfig*>& out) {
  for (const auto& input : stage.inputs) {
    const StageConfig* up = pipeline.find(input);
    if (up == nullptr || !seen.insert(input).second) continue;
    out.push_back(up);
    walk(*up, pipeline, seen, out);
  }
}

}  // namespace

std::vector<const StageConfig*> upstream_of(const StageConfig& stage, const PipelineConfig& pipeline) {
  std::set<std::string> seen;
  std::vector<const StageConfig*> out;
  walk(stage, pipeline, seen, out);
  return out;
}

std::vector<const StageConfig*> sources_upstream_of(const StageConfig& stage,
                                                    const PipelineConfig& pipeline) {
  std::vector<const StageConfig*> out;
  for (const StageConfig* up : upstream_of(stage, pipeline)) {
    const StageType* type = find_stage_type(up->type);
    if (type != nullptr && type->role == Role::source) out.push_back(up);
  }
  return out;
}

}  // namespace etld
