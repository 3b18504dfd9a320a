// The held-acks check of a loaded pipeline: a stage that holds its inputs' acks (reduce) must not
// be able to hold more of them than a source feeding it lets be unsettled, or the pipeline stalls
// for good (the source waits for settlements that wait for the end of its own input).
#pragma once

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

namespace etld {

// Reports each stateful stage that could stall a source feeding it, located at the stage, with the
// numbers; returns how many it reported. Runs after every stage configured without error.
int check_held_acks(const PipelineConfig& pipeline, Diagnostics& diags);

}  // namespace etld
