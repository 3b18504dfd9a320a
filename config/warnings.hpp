// Configurations that are valid but probably not what was meant: reported by `etld validate` and
// logged when `etld run` starts, without refusing the file.
#pragma once

#include <string>
#include <vector>

#include "config/schema/pipeline.hpp"

namespace etld {

// "file:line:col: warning: message (hint)", one per item, in stage order.
std::vector<std::string> pipeline_warnings(const PipelineConfig& config);

}  // namespace etld
