// Registers the stage type `window`: its options (window_spec.cpp), its factory, and what it
// tells the engine: the columns of its records (for a sink's `mode: merge`), that emit: updates
// makes per-partition partials, and which acks emit: results holds until when.
#include <algorithm>
#include <limits>
#include <memory>
#include <utility>

#include "config/schema/pipeline.hpp"
#include "stages/engine/registry.hpp"
#include "stages/flow/window_stage.hpp"

namespace etld::flow {
namespace {

class WindowFactory : public StageFactory {
 public:
  explicit WindowFactory(std::shared_ptr<const WindowSpec> spec) : spec_(std::move(spec)) {}

  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<WindowStage>(spec_); }

  std::vector<OutputColumn> output_columns() const override { return window_output_columns(*spec_); }

  bool partials_per_partition() const override { return spec_->emit == EmitMode::updates; }

  AckHolding ack_holding() const override {
    if (spec_->emit == EmitMode::updates) return {};  // every input settles with its batch's partials
    if (spec_->type == WindowType::global) return {.until_end_of_input = true};
    if (spec_->type == WindowType::count) {  // at most size - 1 inputs per group wait for their window
      std::size_t held = 0;
      if (__builtin_mul_overflow(static_cast<std::size_t>(spec_->count - 1), spec_->max_groups, &held))
        held = std::numeric_limits<std::size_t>::max();
      return {.max_held = held};
    }
    // Processing-time windows close by the clock, which a paused source does not hold back.
    return {.until_window_closes = spec_->by_event_time()};
  }

  const std::shared_ptr<const WindowSpec>& spec() const { return spec_; }

 private:
  std::shared_ptr<const WindowSpec> spec_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig& pipeline) {
  WindowSpec spec = parse_window_spec(stage.options);
  for (const auto& other : pipeline.stages)
    if (other.type == "departition" &&
        std::find(other.inputs.begin(), other.inputs.end(), stage.name) != other.inputs.end())
      spec.partial_results = true;
  return std::make_unique<WindowFactory>(std::make_shared<const WindowSpec>(std::move(spec)));
}

const StageRegistration reg{StageType{
    "window",
    Role::transform,
    "Aggregates events per window (global, tumbling, sliding, session, count) by event or processing time, "
    "with watermarks and allowed lateness; emits per-batch partials for a merging sink (emit: updates) or "
    "each window's result when it closes (emit: results). See docs/windows.md",
    window_options(),
    configure,
    /*check_live=*/{},
    /*takes_rejected=*/false,
    // emit: updates folds each input batch into one partial per (partition, window, group), and
    // the sink's fold costs per partial: the bigger the batch, the fewer partials per event. With
    // the engine's 1000, the analytics example (8 partitions, ~130 pages) made nearly one partial
    // per event; 10000 cut its run on 100,000 views from 11.5 s to 3.9 s, and 30000 gained
    // nothing more (the example run to its end with stop_at_end, 2 cores). A batch's inputs
    // settle with its partials, so this holds no ack longer. emit: results keeps the default.
    [](const YAML::Node& node) -> std::size_t {
      const YAML::Node emit = node.IsMap() ? node["emit"] : YAML::Node();
      const bool results = emit && emit.IsScalar() && emit.Scalar() == "results";
      return results ? StageConfig{}.max_demand : 10000;
    },
}};

}  // namespace

std::vector<OutputColumn> window_output_columns(const WindowSpec& spec) {
  std::vector<OutputColumn> columns;
  if (spec.type == WindowType::count) {
    columns.push_back({"window", "bigint", true, ""});
  } else if (spec.type != WindowType::global) {
    columns.push_back({"window_start", "timestamptz", true, ""});
    columns.push_back({"window_end", "timestamptz", true, ""});
  }
  for (const auto& key : spec.group_by) columns.push_back({key.output, "text", true, ""});
  for (const auto& agg : spec.aggregates)
    for (auto& column : flow::output_columns(agg)) columns.push_back(std::move(column));
  return columns;
}

std::shared_ptr<const WindowSpec> window_spec_of(const StageFactory* factory) {
  const auto* window = dynamic_cast<const WindowFactory*>(factory);
  return window ? window->spec() : nullptr;
}

}  // namespace etld::flow
