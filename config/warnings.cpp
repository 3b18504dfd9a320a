#include "config/warnings.hpp"

#include "stages/engine/registry.hpp"

namespace etld {

std::vector<std::string> pipeline_warnings(const PipelineConfig& config) {
  std::vector<std::string> out;
  if (config.on_poison != PoisonPolicy::dead_letter) return out;
  for (const auto& stage : config.stages) {
    const StageType* type = find_stage_type(stage.type);
    if (!type || type->role != Role::sink || type->takes_rejected) continue;
    // Such a sink settles bad records dead_lettered with nowhere to put them: their offsets are
    // committed and the records are gone but for a log line.
    std::string at = config.file;
    if (stage.mark.line >= 0)
      at += ":" + std::to_string(stage.mark.line + 1) + ":" + std::to_string(stage.mark.column + 1);
    out.push_back(at + ": warning: stage '" + stage.name + "' (" + stage.type +
                  ") has no dead-letter destination: records rejected on their way to it are counted as "
                  "dead-lettered and committed, so they are dropped, only logged (to keep them, send them "
                  "to a postgres sink with a dead_letter table or topic, or set on_poison: pause_partition)");
  }
  return out;
}

}  // namespace etld
