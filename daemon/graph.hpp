// `etld graph`: the stage graph as a Mermaid flowchart.
#pragma once

#include <string>

#include "config/schema/pipeline.hpp"

namespace etld {
std::string mermaid_graph(const PipelineConfig& config);
}
