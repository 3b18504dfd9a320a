// The aggregate functions of the window stage: parsed once from text such as "sum(amount)",
// folded per event into one state per (window, group), merged with another state of the same
// aggregate (two partitions' partials, departition), and written out as fields of a result
// record: the visible result under the aggregate's name and, for partial results that a sink
// folds into stored rows, the hidden state fields the fold needs ("<name>__sum", ...), with the
// SQL that folds them (output_columns). See docs/aggregates.md for each function's semantics.
// Threading: specs are immutable and shared; a state belongs to one stage instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "stages/engine/output_columns.hpp"
#include "stages/engine/value.hpp"
#include "stages/expr/expr.hpp"

namespace etld::flow {

enum class AggKind {
  count,  // count: every event; count(expr): events where expr is not null
  sum,    // exact: integers and decimals keep every digit (no double rounding)
  min,
  max,  // numbers numerically, strings by bytes; mixing them is a data error
  avg,  // sum / count, exact sum
  first,
  last,                   // the value of the earliest / latest event by event time
  count_distinct,         // exact; at most AggLimits::max_distinct values per state
  approx_count_distinct,  // HyperLogLog, fixed memory; relative error documented in hll.hpp
  top_k,                  // top_k(expr, k): the k most frequent values with their counts, exact
};

struct AggregateSpec {
  std::string output;  // the result's field: a top-level name, also its column's name
  std::string text;    // as written, for errors
  AggKind kind = AggKind::count;
  std::optional<Expr> input;  // none for a bare count
  std::size_t k = 0;          // top_k
  // min/max/first/last: the column type, from an optional " as TYPE" suffix; "jsonb" if none.
  std::string sql_type;
};

// Parses "count", "count(expr)", "sum(expr)", "min(expr)", "max(expr)", "avg(expr)",
// "first(expr)", "last(expr)", "count_distinct(expr)", "approx_count_distinct(expr)",
// "top_k(expr, k)", the four value-typed ones optionally followed by " as TYPE". Throws a
// ConfigError at `mark` that names `output` and lists the forms.
AggregateSpec parse_aggregate(const std::string& output, const std::string& text, const YAML::Mark& mark);

struct AggLimits {
  std::size_t max_distinct = 100000;  // per count_distinct / top_k state: more is a data error
};

// One aggregate's state for one (window, group). Cheap to create; movable.
class AggState {
 public:
  explicit AggState(const AggregateSpec& spec);
  AggState(AggState&&) noexcept;
  AggState& operator=(AggState&&) noexcept;
  ~AggState();

  // Throws ExprError (with the aggregate's name and text) when `v` cannot be folded in (a
  // string into sum, an overflow, past max_distinct) and leaves the state unchanged: check every
  // aggregate of an event before adding any, so that an event merges entirely or not at all.
  void check(const AggregateSpec& spec, const Value& v, const AggLimits& limits) const;
  // Folds in one event's input value (null: skipped, as SQL does, except by a bare count).
  void add(const AggregateSpec& spec, Value v, std::int64_t event_time_ms);
  // Folds in another state of the same spec. Throws ExprError like check().
  void merge(const AggregateSpec& spec, const AggState& other, const AggLimits& limits);
  // The visible result: count -> integer, sum -> exact number, avg -> number, top_k -> array of
  // {"value": v, "count": n}, approx_count_distinct -> integer estimate; null when nothing was
  // added, except the counts (count, count_distinct, approx_count_distinct), which are then 0.
  Value result(const AggregateSpec& spec) const;
  // Sets spec.output to result() and every hidden state field merge needs into `record`.
  void write_partial(const AggregateSpec& spec, Value& record) const;
  // The state a record written by write_partial holds (departition). Throws ExprError.
  static AggState read_partial(const AggregateSpec& spec, const Value& record);
  // Approximate heap bytes held, for the state caps' accounting.
  std::size_t memory_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The name of one of `spec`'s hidden state fields in a partial record (and its column):
// "<output>__<what>", what being sum, count (avg), at (first, last), set (count_distinct), hll
// (approx_count_distinct) or counts (top_k).
std::string hidden_field(const AggregateSpec& spec, std::string_view what);

// The columns write_partial sets, with their types and the SQL that folds an incoming partial
// row into a stored one (output_columns.hpp); never keys.
std::vector<OutputColumn> output_columns(const AggregateSpec& spec);

}  // namespace etld::flow
