// Validation of what a sink promises about its source's positions. A sink whose factory offers an
// offset store (exactly once: it commits the source's positions with its own writes) holds that
// promise only in one shape of graph, checked here from the stage types' traits.
#pragma once

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

namespace etld {

// Every stage's factory must be made (StageConfig::factory). Throws ConfigError located at the
// sink's `delivery` option (else at the stage) when `sink` offers an offset store and
//   - it or a stage between it and its source runs several instances not split by partition,
//   - a stage between them may emit other than one output per input in order (a trait),
//   - it is fed by no source, by several, or by one that cannot keep positions in a store,
//   - another stage reads from the path between them (their positions would be the sink's).
void check_position_binding(const StageConfig& sink, const PipelineConfig& pipeline);

}  // namespace etld
