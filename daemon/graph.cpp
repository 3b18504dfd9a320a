#include "daemon/graph.hpp"

#include <cctype>
#include <sstream>

#include "stages/engine/registry.hpp"

namespace etld {

std::string mermaid_graph(const PipelineConfig& config) {
  std::ostringstream out;
  out << "flowchart LR\n";
  auto id = [](const std::string& name) {
    std::string s = "s_";
    for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return s;
  };
  for (const auto& stage : config.stages) {
    const auto* type = find_stage_type(stage.type);
    std::string label = stage.name + "<br/>" + stage.type;
    if (stage.concurrency > 1) label += " x" + std::to_string(stage.concurrency);
    auto role = type ? type->role : Role::transform;
    const char* open = role == Role::source ? "([\"" : role == Role::sink ? "[(\"" : "[\"";
    const char* close = role == Role::source ? "\"])" : role == Role::sink ? "\")]" : "\"]";
    out << "  " << id(stage.name) << open << label << close << "\n";
  }
  for (const auto& stage : config.stages)
    for (const auto& input : stage.inputs) {
      out << "  " << id(input);
      if (!stage.partition_by.empty())
        out << " -- \"partition_by " << stage.partition_by << "\" -->";
      else
        out << " -->";
      out << " " << id(stage.name) << "\n";
    }
  return out.str();
}

}  // namespace etld
