// The loader's parts, shared by config/loader.cpp (stages), config/loader_top_level.cpp (the
// top-level keys) and config/loader_graph.cpp (inputs, cycles, order): internal to the loader.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/registry.hpp"

namespace etld::loader_detail {

// Counts the problems reported through it, so that one stage's checks can tell whether they passed.
struct Reporter {
  Diagnostics& diags;
  std::string_view text;  // the file, for what only its spelling tells (see spelled_null)
  int count = 0;
  void error(const YAML::Mark& mark, std::string message, std::string hint = {}) {
    ++count;
    diags.error(mark, std::move(message), std::move(hint));
  }
  void error(const ConfigError& e, const YAML::Mark& fallback) {
    ++count;
    diags.error(e.has_mark() ? e.mark() : fallback, e.what(), e.hint());
  }
};

// Walks a map's keys: reports non-scalar and duplicate keys, returns (key, key node, value) in order.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// One stage while it is being checked.
struct StageDraft {
  StageConfig config;
  const StageType* type = nullptr;
  bool ok = true;                       // no problem found in this stage so far
  std::vector<YAML::Node> input_nodes;  // parallel to config.inputs: where, and as written
  std::size_t index = 0;                // position in the file
};

std::vector<Entry> map_entries(const YAML::Node& map, Reporter& r, const std::string& what);
const OptionSpec* find_spec(const std::vector<OptionSpec>& specs, const std::string& name);
std::vector<std::string> spec_names(const std::vector<OptionSpec>& specs);
std::string join(const std::vector<std::string>& items, const char* sep = ", ");

// The common stage options and the top-level keys take their defaults from StageConfig's and
// PipelineConfig's own initializers (config/schema/pipeline.hpp), written out as a user would
// write them, so that a configuration built in code and one loaded from a file agree, and
// `etld reference` shows the value used.
std::string duration_text(std::chrono::milliseconds d);  // "60s", "100ms"
// The names of an enum's values as written in a file, in the enum's order.
inline const std::vector<std::string> kRestartPolicyNames = {"permanent", "transient", "temporary"};
inline const std::vector<std::string> kDispatchModeNames = {"broadcast", "demand"};
inline const std::vector<std::string> kPoisonPolicyNames = {"dead_letter", "pause_partition", "stop"};
template <class Enum>
const std::string& name_of(Enum e, const std::vector<std::string>& names) {
  return names.at(static_cast<std::size_t>(e));
}
// The value named `name` (one of `names`: the option's choices were checked before).
template <class Enum>
Enum value_named(const std::string& name, const std::vector<std::string>& names) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<Enum>(i);
  throw ConfigError("'" + name + "' is not one of " + join(names));
}

// loader_top_level.cpp
const std::vector<OptionSpec>& top_level_options();
void read_top_level(const Entry& e, PipelineConfig& p, Reporter& r);

// loader_graph.cpp: every input names an earlier-or-later stage that exists and is not itself;
// no cycles (each reported once, with its path); the stages in topological order.
void check_inputs(std::vector<StageDraft>& drafts, Reporter& r);
bool check_cycles(std::vector<StageDraft>& drafts, Reporter& r);
std::vector<std::size_t> topological_order(const std::vector<StageDraft>& drafts);

}  // namespace etld::loader_detail
