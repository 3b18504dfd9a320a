// The window stage's configuration: its options (declared once, for the loader and `etld
// reference`) and what `configure` makes of them, checked together so that a bad combination is
// a ConfigError located at the option that makes it bad. See docs/windows.md.
// Threading: immutable once parsed; shared by the stage's instances.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/schema/options.hpp"
#include "stages/expr/expr.hpp"
#include "stages/flow/aggregate.hpp"

namespace etld {
class StageFactory;
}

namespace etld::flow {

enum class WindowType { global, tumbling, sliding, session, count };

// The most sliding windows one event may belong to (size / slide, rounded up).
inline constexpr std::int64_t kMaxWindowsPerEvent = 1000;
enum class EmitMode { updates, results };
enum class StateFullPolicy { dead_letter, fail };

struct GroupKey {
  std::string output;  // the result's field: the path's last segment
  Expr expr;
};

struct WindowSpec {
  WindowType type = WindowType::global;
  std::int64_t size_ms = 0;        // tumbling, sliding
  std::int64_t slide_ms = 0;       // sliding
  std::int64_t gap_ms = 0;         // session
  std::int64_t count = 0;          // count: events per window and group
  std::optional<Expr> event_time;  // none: processing time
  std::int64_t lateness_ms = 0;
  std::optional<std::int64_t> idle_timeout_ms;
  std::vector<GroupKey> group_by;
  std::vector<AggregateSpec> aggregates;
  AggLimits limits;
  EmitMode emit = EmitMode::updates;
  std::uint64_t trigger_every_events = 0;  // 0: none
  std::int64_t trigger_every_ms = 0;       // 0: none
  std::size_t max_open_windows = 10000;
  std::size_t max_groups = 100000;
  StateFullPolicy on_state_full = StateFullPolicy::dead_letter;
  // emit: results read by a departition stage: results carry the hidden state fields too
  // (AggState::write_partial), so that the instances' results of one window can be merged.
  bool partial_results = false;

  bool by_event_time() const { return event_time.has_value(); }
  // Whether windows close by time (a watermark or the clock), not only at end of input or by count.
  bool closes_by_time() const {
    return type == WindowType::tumbling || type == WindowType::sliding || type == WindowType::session;
  }
};

const std::vector<OptionSpec>& window_options();

// Throws ConfigError (ConfigErrors for several) located at the culprit option.
WindowSpec parse_window_spec(const Options& options);

// The columns of the records a window with `spec` writes (StageFactory::output_columns): the window
// bounds and group_by fields as keys, then each aggregate's columns.
std::vector<OutputColumn> window_output_columns(const WindowSpec& spec);

// The spec of a window stage's factory; nullptr for any other factory (departition reads it).
std::shared_ptr<const WindowSpec> window_spec_of(const StageFactory* factory);

}  // namespace etld::flow
