// reduce: Flow-style aggregation over the whole input of one instance (one partition when the
// stage has `partition_by`). Events are merged into per-group accumulators; at end of input
// (finish) one event per group is emitted, groups in first-seen order, holding the group_by
// values, the aggregates and `partition` (the instance index). A merged event's ack is held by
// its group and joined into the ack of the group's result: an input settles only once its
// aggregate is written downstream, so a source never commits what lives only in memory here
// (docs/engine.md, "The delivery contract"). A rejected event is passed on with its own ack.
// Threading: one instance per strand, owning its accumulators; configuration shared read-only.

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/engine/registry.hpp"
#include "stages/expr/expr.hpp"
#include "stages/flow/aggregate.hpp"

namespace etld {
namespace {

struct ReduceSpec {
  std::vector<std::pair<std::string, Expr>> group_by;  // output path, key expression
  std::vector<flow::AggregateSpec> aggregates;
  flow::AggLimits limits;
};

struct Group {
  std::vector<Value> keys;
  std::vector<flow::AggState> states;
  AckBatch inputs;  // the acks of the events merged into it, until its result carries them
};

class Reduce : public Transform {
 public:
  Reduce(std::shared_ptr<const ReduceSpec> spec, int instance)
      : spec_(std::move(spec)), instance_(instance) {}

  void start(StageContext& ctx) override { rejecter_.bind(ctx); }

  void process(Batch& in, Batch& out) override {
    const auto& aggs = spec_->aggregates;
    for (auto& event : in) {
      try {
        keys_.clear();
        key_text_.clear();
        for (const auto& [path, expr] : spec_->group_by) {
          keys_.push_back(expr.eval(event));
          keys_.back().append_json(key_text_);
          key_text_.push_back('\x1e');
        }
        inputs_.resize(aggs.size());
        for (std::size_t i = 0; i < aggs.size(); ++i)
          inputs_[i] = aggs[i].input ? aggs[i].input->eval(event) : Value();
        auto found = index_.find(key_text_);
        Group* group = found == index_.end() ? nullptr : &groups_[found->second];
        std::vector<flow::AggState> fresh;
        if (!group)
          for (const auto& agg : aggs) fresh.emplace_back(agg);
        auto& states = group ? group->states : fresh;
        // Throws before anything is merged: an event merges entirely or not at all.
        for (std::size_t i = 0; i < aggs.size(); ++i) states[i].check(aggs[i], inputs_[i], spec_->limits);
        if (!group) {
          index_.emplace(key_text_, groups_.size());
          group = &groups_.emplace_back();
          group->keys = std::move(keys_);
          group->states = std::move(fresh);
        }
        // No event time here: every event is at 0, so first/last keep the first/last one seen.
        for (std::size_t i = 0; i < aggs.size(); ++i) group->states[i].add(aggs[i], std::move(inputs_[i]), 0);
        group->inputs.add(event.ack);
      } catch (const ExprError& e) {
        rejecter_.reject(out, event, std::string("reduce: ") + e.what());
      } catch (const JsonError& e) {
        rejecter_.reject(out, event, std::string("reduce: ") + e.what());
      }
    }
    in.clear();
  }

  void finish(Batch& out) override {
    rejecter_.flush();
    const auto& aggs = spec_->aggregates;
    out.reserve(out.size() + groups_.size());
    for (auto& group : groups_) {
      Value record{Object{}};
      for (std::size_t k = 0; k < spec_->group_by.size(); ++k)
        record.set_path(spec_->group_by[k].first, std::move(group.keys[k]));
      for (std::size_t i = 0; i < aggs.size(); ++i)
        record.set_path(aggs[i].output, group.states[i].result(aggs[i]));
      record.set("partition", Value(instance_));
      Event event;
      event.value = record.to_json();
      event.set_record(std::move(record));
      event.ack = group.inputs.join();
      out.push_back(std::move(event));
    }
    groups_.clear();
    index_.clear();
  }

 private:
  std::shared_ptr<const ReduceSpec> spec_;
  int instance_;
  Rejecter rejecter_;
  std::vector<Group> groups_;  // first-seen order
  std::unordered_map<std::string, std::size_t> index_;
  // Per-event scratch, kept to reuse their capacity.
  std::vector<Value> keys_;
  std::vector<Value> inputs_;
  std::string key_text_;
};

class ReduceFactory : public StageFactory {
 public:
  explicit ReduceFactory(std::shared_ptr<const ReduceSpec> spec) : spec_(std::move(spec)) {}
  std::unique_ptr<Transform> make_transform(int instance) override {
    return std::make_unique<Reduce>(spec_, instance);
  }
  AckHolding ack_holding() const override { return {.until_end_of_input = true}; }

 private:
  std::shared_ptr<const ReduceSpec> spec_;
};

constexpr const char* kAggregateForms =
    "count, count(expr), sum(expr), min(expr), max(expr), avg(expr), first(expr), last(expr), "
    "count_distinct(expr), "
    "approx_count_distinct(expr) or top_k(expr, k)";

std::unique_ptr<StageFactory> configure(const StageConfig& stage, const PipelineConfig&) {
  const Options& options = stage.options;
  auto spec = std::make_shared<ReduceSpec>();
  std::vector<ConfigError> errors;  // every bad entry is reported, not only the first
  for (const auto& path : options.get_string_list("group_by")) {
    try {
      if (path.empty() || path == ".")
        throw ConfigError(options.mark("group_by"), "group_by: '" + path + "' is not a field");
      spec->group_by.emplace_back(path, compile_expr_option(path, "group_by", options.mark("group_by")));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
  if (!options.has("aggregates"))
    errors.emplace_back(options.mark("aggregates"),
                        std::string("reduce needs 'aggregates': output field -> ") + kAggregateForms);
  YAML::Node node = options.node("aggregates");
  for (const auto& [output, text] : options.get_string_map("aggregates")) {
    auto mark = option_entry_mark(node, output, options.mark("aggregates"));
    try {
      if (output.empty() || output == ".")
        throw ConfigError(mark, "aggregates: '" + output + "' is not a field");
      spec->aggregates.push_back(flow::parse_aggregate(output, text, mark));
    } catch (const ConfigError& e) {
      errors.push_back(e);
    }
  }
  ConfigErrors::throw_if_any(std::move(errors));
  if (spec->aggregates.empty())
    throw ConfigError(options.mark("aggregates"), "aggregates: at least one aggregate is needed");
  return std::make_unique<ReduceFactory>(std::move(spec));
}

const StageRegistration reg{StageType{
    "reduce",
    Role::transform,
    "Aggregates the input per group (count, sum, min, max, avg, first, last, count_distinct, "
    "approx_count_distinct, top_k; docs/windows.md) and emits the results at end of input; "
    "holds its inputs' acks until their group's result is settled, so it needs a source whose input ends",
    {
        {"group_by",
         OptionKind::string_list,
         "Field paths (or _key, _topic, ...) whose values form the groups; omit for a single group.",
         false,
         "",
         {}},
        {"aggregates",
         OptionKind::string_map,
         "Output field -> count, count(expr), sum(expr), min(expr), max(expr), avg(expr), first(expr), "
         "last(expr), count_distinct(expr), approx_count_distinct(expr) or top_k(expr, k). Sums and averages "
         "are exact decimals (avg rounded to 16 decimals); first/last are the first/last event seen.",
         true,
         "",
         {}},
    },
    configure,
    {},
}};

}  // namespace
}  // namespace etld
