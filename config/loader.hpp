// Loading a pipeline file: YAML syntax, the top-level and common stage keys, the graph's
// wiring, every stage type's own checks (its `configure`, whose factory the result keeps) and
// the delivery checks between stages, every problem reported with its file:line:column.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"

namespace etld {

// Reads, parses and validates a pipeline file. On failure returns nullptr and fills `diags`
// with every problem found (YAML syntax, unknown keys, types, stage types, inputs, cycles,
// and each stage factory's own checks).
std::unique_ptr<PipelineConfig> load_pipeline(const std::string& path, Diagnostics& diags);
std::unique_ptr<PipelineConfig> load_pipeline_text(const std::string& text, const std::string& file_label,
                                                   Diagnostics& diags);

// The keys every stage accepts besides its type's own options (type, inputs, concurrency...).
const std::vector<OptionSpec>& common_stage_options();

}  // namespace etld
