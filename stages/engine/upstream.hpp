// Walking the graph upstream, from a stage to what feeds it: shared by the checks of delivery
// promises at validation (config/delivery_check.cpp, config/held_acks_check.cpp) and the pipeline
// binding a sink's offset store to its source (stages/engine/graph.cpp), so that they agree on
// which stages feed which.
#pragma once

#include <vector>

#include "config/schema/pipeline.hpp"

namespace etld {

// The stages whose events reach `stage`: its inputs, their inputs and so on, each once, depth
// first in the order of `inputs` (an input, then what feeds it, then the next input). An input
// that names no stage is skipped: the loader reports it.
std::vector<const StageConfig*> upstream_of(const StageConfig& stage, const PipelineConfig& pipeline);

// Of upstream_of(stage), the sources (by their type's role), in the same order.
std::vector<const StageConfig*> sources_upstream_of(const StageConfig& stage, const PipelineConfig& pipeline);

}  // namespace etld
