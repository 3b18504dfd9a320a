#include "config/delivery_check.hpp"

#include <set>
#include <string>

#include "stages/engine/registry.hpp"
#include "stages/engine/upstream.hpp"

namespace etld {

namespace {

// Each partition's records reach one instance of the stage, in order.
bool keeps_partition_order(const StageConfig& s) {
  return s.concurrency <= 1 || s.partition_by == "_partition";
}

const char* const kOrderHint =
    "set concurrency: 1, or partition_by: _partition so that each partition has one instance";

}  // namespace

void check_position_binding(const StageConfig& sink, const PipelineConfig& pipeline) {
  if (!sink.factory || !sink.factory->offset_store()) return;
  const YAML::Mark at = sink.options.has("delivery") ? sink.options.mark("delivery") : sink.mark;
  const std::string promise = "delivery: exactly_once";
  if (!keeps_partition_order(sink))
    throw ConfigError(at,
                      promise + " needs each partition's records in one sink instance, but stage '" +
                          sink.name + "' has concurrency " + std::to_string(sink.concurrency),
                      kOrderHint);
  std::set<std::string> path;  // the stages between the source and the sink, and the source
  const StageConfig* source = nullptr;
  for (const StageConfig* s : upstream_of(sink, pipeline)) {
    path.insert(s->name);
    const StageType* type = find_stage_type(s->type);
    if (!s->inputs.empty()) {
      // Partial aggregates (window with emit: updates) each carry the acks of inputs of one
      // source partition: the sink commits every position a row covers, and holds back a row
      // until the positions before it are covered, whichever instance emits them.
      if (s->factory && s->factory->partials_per_partition()) continue;
      if (!type || !type->traits.one_to_one_in_order)
        throw ConfigError(at,
                          promise + ": stage '" + s->name + "' (type " + s->type +
                              ") between the source and the sink does not keep one output per input record",
                          "only stages that do (map, filter) or that emit partial results per source "
                          "partition (window with emit: updates) may sit between them; use delivery: "
                          "at_least_once");
      if (!keeps_partition_order(*s))
        throw ConfigError(at,
                          promise + " needs each partition's records in order, but stage '" + s->name +
                              "' has concurrency " + std::to_string(s->concurrency),
                          kOrderHint);
      continue;
    }
    if (!type || !type->traits.positions_in_store)
      throw ConfigError(at,
                        promise +
                            " needs a source that can keep its positions in the sink's offset store "
                            "(kafka), but stage '" +
                            sink.name + "' is fed by stage '" + s->name + "' of type " + s->type,
                        "use delivery: at_least_once");
    if (source)
      throw ConfigError(at,
                        promise + " needs exactly one source upstream; stage '" + sink.name +
                            "' is fed by '" + s->name + "' and '" + source->name + "'",
                        "give each source its own sink");
    source = s;
  }
  if (!source)
    throw ConfigError(at, promise + " needs a source upstream of stage '" + sink.name + "'",
                      "wire the sink to a kafka source through inputs");
  for (const auto& other : pipeline.stages) {
    if (other.name == sink.name || path.count(other.name)) continue;
    for (const auto& name : other.inputs)
      if (path.count(name))
        throw ConfigError(at,
                          promise + ": stage '" + other.name + "' also reads from '" + name +
                              "'; the source '" + source->name +
                              "' stores its positions with this sink's rows, so it must feed "
                              "nothing else",
                          "give the other consumer its own source (for kafka, another group)");
  }
}

}  // namespace etld
