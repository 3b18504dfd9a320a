#include "config/held_acks_check.hpp"

#include <map>
#include <string>

#include "stages/engine/registry.hpp"
#include "stages/engine/upstream.hpp"

namespace etld {
namespace {

std::string stage_label(const StageConfig& stage) { return "'" + stage.name + "' (" + stage.type + ")"; }

// Why `holding` at `stage` stalls `source`, or "" when it cannot.
std::string stall(const StageConfig& stage, const AckHolding& holding, const StageConfig& source,
                  const SourceBound& bound) {
  std::string limit = bound.max_unsettled ? "at most " + std::to_string(*bound.max_unsettled) +
                                                " unsettled events (" + bound.limit + ")"
                                          : std::string();
  std::string what = "stage " + stage_label(stage) + " ";
  if (holding.until_window_closes) {
    if (!bound.max_unsettled) return {};
    return what +
           "holds each input's ack until its event-time window closes, which needs later events, but "
           "source " +
           stage_label(source) + " allows " + limit +
           ": a window gathering more than that would stall the pipeline for good";
  }
  if (holding.until_end_of_input) {
    what += "holds every input's ack until end of input, when it emits its results";
    if (!bound.ends)
      return what + ", but source " + stage_label(source) + " never ends" +
             (limit.empty()
                  ? ": nothing it emits would ever be settled, and what the stage holds grows without "
                    "bound"
                  : " and allows " + limit + ": the pipeline would stall once that many are held");
    if (!limit.empty())
      return what + ", but source " + stage_label(source) + " allows " + limit +
             ": an input longer than that would stall before its end";
    return {};
  }
  if (bound.max_unsettled && holding.max_held > *bound.max_unsettled)
    return what + "holds up to " + std::to_string(holding.max_held) +
           " inputs' acks per instance, but source " + stage_label(source) + " allows " + limit +
           ": the pipeline would stall";
  return {};
}

}  // namespace

int check_held_acks(const PipelineConfig& pipeline, Diagnostics& diags) {
  int reported = 0;
  std::map<std::string, SourceBound> bounds;  // per source, asked once
  for (const auto& stage : pipeline.stages) {
    const StageType* type = find_stage_type(stage.type);
    if (type == nullptr || type->role != Role::transform) continue;
    if (!stage.factory) continue;
    AckHolding holding = stage.factory->ack_holding();
    if (!holding.holds()) continue;
    for (const StageConfig* source : sources_upstream_of(stage, pipeline)) {
      auto it = bounds.find(source->name);
      if (it == bounds.end()) {
        it = bounds.emplace(source->name, source->factory ? source->factory->source_bound() : SourceBound{})
                 .first;
      }
      const SourceBound& bound = it->second;
      std::string why = stall(stage, holding, *source, bound);
      if (why.empty()) continue;
      if (holding.until_window_closes) {
        diags.error(
            stage.mark, why,
            "use emit: updates (partials settle with each input batch; a postgres sink with mode: merge "
            "folds them), or processing time (no event_time), whose windows close by the clock");
        ++reported;
        continue;
      }
      std::string hint = "aggregate a bounded input: ";
      hint += bound.ends || bound.to_end.empty() ? "a source whose input ends"
                                                 : "on source '" + source->name + "', " + bound.to_end;
      if (bound.max_unsettled) hint += ", without a limit on unsettled events";
      hint += "; or, once etld has windows, a window that emits (and settles) as it goes";
      diags.error(stage.mark, why, hint);
      ++reported;
    }
  }
  return reported;
}

}  // namespace etld
