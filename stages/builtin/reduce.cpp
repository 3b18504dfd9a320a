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

namespace etld {
namespace {

enum class AggKind { count, sum, min, max, avg };

const char* agg_name(AggKind k) {
  switch (k) {
    case AggKind::count: return "count";
    case AggKind::sum: return "sum";
    case AggKind::min: return "min";
    case AggKind::max: return "max";
    case AggKind::avg: return "avg";
  }
  return "?";
}

struct Aggregate {
  std::string output;  // field path in the result
  AggKind kind = AggKind::count;
  std::optional<Expr> input;  // none for a bare count
};

struct ReduceSpec {
  std::vector<std::pair<std::string, Expr>> group_by;  // output path, key expression
  std::vector<Aggregate> aggregates;
};

struct AggState {
  std::int64_t count = 0;
  double sum = 0;  // avg
  Value value;     // sum, min, max
};

struct Group {
  std::vector<Value> keys;
  std::vector<AggState> states;
  AckBatch inputs;  // the acks of the events merged into it, until its result carries them
};

bool orderable(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return true;
  return a.kind() == b.kind() && (a.kind() == Value::Kind::string || a.kind() == Value::Kind::boolean);
}

bool less(const Value& a, const Value& b) {
  if (a.kind() == Value::Kind::integer && b.kind() == Value::Kind::integer) return a.as_int() < b.as_int();
  if (a.is_number()) return a.as_double() < b.as_double();
  if (a.kind() == Value::Kind::string) return a.as_string() < b.as_string();
  return !a.as_bool() && b.as_bool();
}

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
        check(group);  // throws before anything is merged: an event merges entirely or not at all
        if (!group) {
          index_.emplace(key_text_, groups_.size());
          group = &groups_.emplace_back();
          group->keys = std::move(keys_);
          group->states.resize(aggs.size());
        }
        merge(*group);
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
      for (std::size_t i = 0; i < aggs.size(); ++i) {
        AggState& s = group.states[i];
        Value v;
        switch (aggs[i].kind) {
          case AggKind::count: v = Value(s.count); break;
          case AggKind::avg:
            if (s.count > 0) v = Value(s.sum / static_cast<double>(s.count));
            break;
          default: v = std::move(s.value); break;
        }
        record.set_path(aggs[i].output, std::move(v));
      }
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
  void check(const Group* group) const {
    const auto& aggs = spec_->aggregates;
    for (std::size_t i = 0; i < aggs.size(); ++i) {
      const Value& v = inputs_[i];
      if (v.is_null()) continue;
      switch (aggs[i].kind) {
        case AggKind::count: break;
        case AggKind::sum:
        case AggKind::avg:
          if (!v.is_number())
            throw ExprError(std::string(agg_name(aggs[i].kind)) + "(" + aggs[i].input->text() + ") for '" +
                            aggs[i].output + "': expected a number, got " + kind_name(v.kind()));
          if (group && !finite_sum(group->states[i], aggs[i].kind, v))
            throw ExprError(std::string(agg_name(aggs[i].kind)) + "(" + aggs[i].input->text() + ") for '" +
                            aggs[i].output + "': adding " + v.to_json() + " overflows a double");
          break;
        case AggKind::min:
        case AggKind::max: {
          const Value* current = group ? &group->states[i].value : nullptr;
          bool ok = current && !current->is_null() ? orderable(v, *current)
                                                   : orderable(v, v) || v.kind() == Value::Kind::boolean;
          if (!ok)
            throw ExprError(std::string(agg_name(aggs[i].kind)) + "(" + aggs[i].input->text() + ") for '" +
                            aggs[i].output + "': cannot order " + kind_name(v.kind()) +
                            (current && !current->is_null()
                                 ? std::string(" against ") + kind_name(current->kind())
                                 : std::string()));
          break;
        }
      }
    }
  }

  // Whether merging `v` keeps the sum finite (past 64 bits an integer sum continues as a double).
  static bool finite_sum(const AggState& s, AggKind kind, const Value& v) {
    if (kind == AggKind::avg) return std::isfinite(s.sum + v.as_double());
    if (s.value.is_null()) return true;
    if (s.value.kind() == Value::Kind::integer && v.kind() == Value::Kind::integer) return true;
    return std::isfinite(s.value.as_double() + v.as_double());
  }

  void merge(Group& group) {
    const auto& aggs = spec_->aggregates;
    for (std::size_t i = 0; i < aggs.size(); ++i) {
      Value& v = inputs_[i];
      AggState& s = group.states[i];
      if (aggs[i].input && v.is_null()) continue;  // nulls are skipped, as in SQL
      switch (aggs[i].kind) {
        case AggKind::count: ++s.count; break;
        case AggKind::avg:
          ++s.count;
          s.sum += v.as_double();
          break;
        case AggKind::sum: {
          if (s.value.is_null()) {
            s.value = std::move(v);
          } else if (s.value.kind() == Value::Kind::integer && v.kind() == Value::Kind::integer) {
            std::int64_t r;
            if (__builtin_add_overflow(s.value.as_int(), v.as_int(), &r))
              s.value = Value(s.value.as_double() + v.as_double());  // past 64 bits: continue as real
            else
              s.value = Value(r);
          } else {
            s.value = Value(s.value.as_double() + v.as_double());
          }
          break;
        }
        case AggKind::min:
          if (s.value.is_null() || less(v, s.value)) s.value = std::move(v);
          break;
        case AggKind::max:
          if (s.value.is_null() || less(s.value, v)) s.value = std::move(v);
          break;
      }
    }
  }

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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr const char* kAggregateForms = "count, count(expr), sum(expr), min(expr), max(expr) or avg(expr)";

Aggregate parse_aggregate(const std::string& output, const std::string& text, const YAML::Mark& mark) {
  Aggregate agg;
  agg.output = output;
  std::string option = "aggregates '" + output + "'";
  std::string_view t = trim(text);
  if (t == "count" || t == "count()") return agg;
  auto open = t.find('(');
  std::string_view name = trim(t.substr(0, open));
  static constexpr std::pair<std::string_view, AggKind> kKinds[] = {{"count", AggKind::count},
                                                                    {"sum", AggKind::sum},
                                                                    {"min", AggKind::min},
                                                                    {"max", AggKind::max},
                                                                    {"avg", AggKind::avg}};
  const AggKind* kind = nullptr;
  for (const auto& [n, k] : kKinds)
    if (n == name) kind = &k;
  if (!kind)
    throw ConfigError(mark, option + ": unknown aggregate '" + std::string(name.empty() ? t : name) +
                                "'; expected " + kAggregateForms);
  if (open == std::string_view::npos || t.back() != ')')
    throw ConfigError(mark, option + ": expected " + std::string(name) + "(expression)");
  agg.kind = *kind;
  std::size_t inner_begin = static_cast<std::size_t>(t.data() - text.data()) + open + 1;
  std::size_t inner_end = static_cast<std::size_t>(t.data() - text.data()) + t.size() - 1;
  std::string inner = text.substr(inner_begin, inner_end - inner_begin);
  if (trim(inner).empty())
    throw ConfigError(mark, option + ": " + std::string(name) + "() needs an expression");
  agg.input = compile_expr_option(inner, option, mark, text, inner_begin);
  return agg;
}

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
      spec->aggregates.push_back(parse_aggregate(output, text, mark));
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
    "Aggregates the input per group (count, sum, min, max, avg) and emits the results at end of input; "
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
         "Output field -> count, count(expr), sum(expr), min(expr), max(expr) or avg(expr).",
         true,
         "",
         {}},
    },
    configure,
    {},
}};

}  // namespace
}  // namespace etld
