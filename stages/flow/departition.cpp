// departition (Flow's departition): merges the results of one window stage's parallel instances
// into one global result per (window, group). When the window's instances are partitioned by
// something other than the group (partition_by a session id, say), each holds a part of every
// window: its results carry their aggregates' states (AggState::write_partial) and departition
// folds the parts of one (window, group) together (read_partial + merge).
// It emits at end of input: a results record of one instance does not say whether the other
// instances still hold parts of its window, so only the end of input makes a window complete.
// Like reduce, it holds its inputs' acks until then (the held-acks check refuses an endless source).
// Threading: one instance per strand, owning its state; the window's spec shared read-only.
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/engine/registry.hpp"
#include "stages/flow/window_spec.hpp"

namespace etld::flow {
namespace {

struct Merged {
  Value record;  // the key fields: window bounds and group_by values
  std::vector<AggState> states;
  AckBatch inputs;
};

class Departition : public Transform {
 public:
  explicit Departition(std::shared_ptr<const WindowSpec> spec) : spec_(std::move(spec)) {
    for (const auto& column : window_output_columns(*spec_))
      if (column.key) keys_.push_back(column.name);
  }

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    const auto& aggs = spec_->aggregates;
    for (auto& event : in) {
      try {
        const Value& record = event.record();
        key_.clear();
        for (const auto& name : keys_) {
          const Value* v = record.find(name);
          (v ? *v : Value()).append_json(key_);
          key_.push_back('\x1e');
        }
        std::vector<AggState> parts;
        parts.reserve(aggs.size());
        for (const auto& agg : aggs) parts.push_back(AggState::read_partial(agg, record));
        auto found = index_.find(key_);
        if (found == index_.end() && merged_.size() >= spec_->max_groups) {
          rejecter_.reject(
              out, event,
              "state full: max_groups " + std::to_string(spec_->max_groups) +
                  " (of the window upstream) reached; the result would open a new (window, group)");
          continue;
        }
        if (found != index_.end()) {
          Merged& m = merged_[found->second];
          for (std::size_t i = 0; i < aggs.size(); ++i) {
            AggState trial(aggs[i]);  // merge into a copy first: a result merges entirely or not at all
            trial.merge(aggs[i], m.states[i], spec_->limits);
            trial.merge(aggs[i], parts[i], spec_->limits);
            parts[i] = std::move(trial);
          }
          m.states = std::move(parts);
          m.inputs.add(event.ack);
          continue;
        }
        Merged m;
        m.record = Value(Object{});
        for (const auto& name : keys_) {
          const Value* v = record.find(name);
          m.record.set(name, v ? *v : Value());
        }
        m.states = std::move(parts);
        m.inputs.add(event.ack);
        index_.emplace(key_, merged_.size());
        merged_.push_back(std::move(m));
      } catch (const ExprError& e) {
        rejecter_.reject(out, event, std::string("departition: ") + e.what());
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("departition: ") + e.what());
      }
    }
    in.clear();
  }

  void finish(Batch& out) override {
    rejecter_.flush();
    const auto& aggs = spec_->aggregates;
    for (auto& m : merged_) {
      for (std::size_t i = 0; i < aggs.size(); ++i) m.states[i].write_partial(aggs[i], m.record);
      Event e;
      e.value = m.record.to_json();
      e.set_record(std::move(m.record));
      e.ack = m.inputs.join();
      out.push_back(std::move(e));
    }
    merged_.clear();
    index_.clear();
  }

 private:
  std::shared_ptr<const WindowSpec> spec_;
  std::vector<std::string> keys_;
  Rejecter rejecter_;
  std::vector<Merged> merged_;  // first-seen order
  std::unordered_map<std::string, std::size_t> index_;
  std::string key_;
};

class DepartitionFactory : public StageFactory {
 public:
  explicit DepartitionFactory(std::shared_ptr<const WindowSpec> spec) : spec_(std::move(spec)) {}
  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<Departition>(spec_); }
  std::vector<OutputColumn> output_columns() const override { return window_output_columns(*spec_); }
  AckHolding ack_holding() const override { return {.until_end_of_input = true}; }

 private:
  std::shared_ptr<const WindowSpec> spec_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig& pipeline) {
  const StageConfig* input = stage.inputs.size() == 1 ? pipeline.find(stage.inputs[0]) : nullptr;
  std::shared_ptr<const WindowSpec> window = input ? window_spec_of(input->factory.get()) : nullptr;
  if (!window)
    throw ConfigError(stage.mark, "departition: needs exactly one input, a window stage with emit: results",
                      "set inputs: [<the window stage>]");
  if (window->emit != EmitMode::results)
    throw ConfigError(stage.mark,
                      "departition: window '" + input->name +
                          "' has emit: updates, whose partials a merging sink folds already",
                      "set emit: results on the window, or drop the departition");
  if (window->trigger_every_events > 0 || window->trigger_every_ms > 0)
    throw ConfigError(stage.mark,
                      "departition: window '" + input->name +
                          "' emits early results, which departition would count again with the final ones",
                      "drop trigger_every and trigger_every_events from the window");
  return std::make_unique<DepartitionFactory>(std::move(window));
}

const StageRegistration reg{StageType{
    "departition",
    Role::transform,
    "Merges the results of a window stage's parallel instances (emit: results) into one result per (window, "
    "group), emitted at end of input; holds its inputs' acks until then, so it needs a source whose input "
    "ends",
    {},
    configure,
    {},
}};

}  // namespace
}  // namespace etld::flow
