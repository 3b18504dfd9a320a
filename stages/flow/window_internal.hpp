// The state of a window stage instance, shared by its files: window_stage.cpp (reading events,
// watermarks, timers, metrics, emit: updates) and window_results.cpp (emit: results: open windows,
// sessions, count windows, triggers, caps). Not for other stages.
// Threading: one instance per strand.
#pragma once

#include <compare>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "stages/builtin/reject.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/flow/window_stage.hpp"

namespace etld::flow {

// [start, end) in epoch ms; count windows: start = end = the group's window number; global: 0, 0.
struct WindowId {
  std::int64_t start = 0;
  std::int64_t end = 0;
  auto operator<=>(const WindowId&) const = default;
};

// Every window of `spec` (global, tumbling, sliding) that contains time `t`, oldest first.
void windows_containing(const WindowSpec& spec, std::int64_t t, std::vector<WindowId>& out);

// One (window, group)'s state.
struct Slot {
  std::vector<Value> keys;
  std::vector<AggState> states;
  AckBatch inputs;     // the acks of the events folded in, until a final result or partial carries them
  bool dirty = false;  // events folded in since its last result
  // emit: updates: the source partition the slot's events came from and their largest offset
  SourcePartition from;
  SharedName topic;
  std::int64_t max_offset = -1;
};

// An event as the window reads it.
struct Reading {
  std::int64_t time = 0;
  std::string group;          // the group's key text
  std::vector<Value> keys;    // the group_by values
  std::vector<Value> inputs;  // each aggregate's input value
  SourcePartition from;
};

// `n` acks that settle `ack` once all of them are settled (itself when n is 1).
std::vector<Ack> split_ack(Ack& ack, std::size_t n);

// The watermark lag per partition, read by the metrics scrape on another thread.
class LagBoard : public metrics::Collector {
 public:
  LagBoard(metrics::Labels base, std::function<std::int64_t()> wall_ms)
      : base_(std::move(base)), wall_ms_(std::move(wall_ms)) {}
  void publish(const std::vector<std::pair<SourcePartition, std::int64_t>>& largest);
  void collect(metrics::Exposition& out) const override;

 private:
  metrics::Labels base_;
  std::function<std::int64_t()> wall_ms_;
  mutable std::mutex mu_;
  std::vector<std::pair<metrics::Labels, std::int64_t>> rows_;
};

struct Session {
  std::int64_t first = 0, last = 0;  // the window is [first, last + gap)
  Slot slot;
  std::uint64_t since_trigger = 0;
};

struct CountWindow {
  std::int64_t number = 0;
  std::int64_t filled = 0;  // events in the current window
  std::optional<Slot> slot;
  std::uint64_t since_trigger = 0;
};

struct OpenWindow {
  std::unordered_map<std::string, std::size_t> index;  // group key text -> slot
  std::vector<Slot> slots;                             // first-seen order
  std::uint64_t since_trigger = 0;
};

struct WindowStage::Impl {
  Impl(std::shared_ptr<const WindowSpec> s, WindowClocks c) : spec(std::move(s)), clocks(std::move(c)) {}

  std::shared_ptr<const WindowSpec> spec;
  WindowClocks clocks;
  StageContext* ctx = nullptr;
  Rejecter rejecter;
  Watermarks watermarks{spec->idle_timeout_ms};
  std::unique_ptr<InstanceScope> scope;
  std::unique_ptr<StrandTimer> clock_timer, trigger_timer;
  std::deque<Event> held;  // results made by the timers

  std::shared_ptr<metrics::Gauge> open_windows_gauge, groups_gauge;
  std::shared_ptr<metrics::Counter> late_total, state_full_total;
  std::shared_ptr<LagBoard> lag_board;

  // emit: updates: the batch's partials, first-touched order, and the windows not yet closed.
  std::vector<Slot> partials;
  std::unordered_map<std::string, std::size_t> partial_index;
  std::vector<WindowId> partial_windows;

  // emit: results
  std::map<WindowId, OpenWindow> windows;                          // global, tumbling, sliding
  std::unordered_map<std::string, std::vector<Session>> sessions;  // per group, by first
  std::unordered_map<std::string, CountWindow> counts;             // per group
  std::size_t open_windows = 0, groups = 0;

  // Scratch, kept to reuse capacity.
  Reading reading;
  std::vector<WindowId> scratch_windows;
  std::vector<Slot*> scratch_slots;

  // window_stage.cpp
  void read(Event& event);  // fills `reading`; throws ExprError/JsonError
  // read(), then the event's time observed for its partition's watermark; false: `event` could not
  // be read and is rejected into `out`.
  bool read_observed(Event& event, Clock::time_point now, Batch& out);
  std::int64_t closed_below() const;  // a window ending at e is closed when e + lateness <= this
  Event output(const WindowId* window, Slot& slot, bool partial, Ack ack) const;
  void process_updates(Batch& in, Batch& out);
  void publish_metrics();
  void rearm(const std::function<void()>& fire);  // the clock timer, at the next time something closes
  std::string late_reason(std::int64_t t, const WindowId& w) const;
  // Whether the caps leave room for `new_windows` windows and `new_pairs` (window, group) pairs;
  // if not, rejects `event` (on_state_full: dead_letter) or throws (fail).
  bool room_for(std::size_t new_windows, std::size_t new_pairs, Event& event, Batch& out);
  // Rejects `event` when it cannot be folded into `slots` (and `fresh` new ones): checked before
  // anything is folded, so that an event merges entirely or not at all.
  bool check_inputs(const std::vector<Slot*>& slots, std::size_t fresh, Event& event, Batch& out);
  void fold(Slot& slot, Ack ack);

  // window_results.cpp
  void process_results(Batch& in, Batch& out);
  void close_due(Batch& out);       // final results of the windows the watermark or clock closed
  void trigger_dirty(Batch& out);   // early results of every slot updated since its last result
  void finish_results(Batch& out);  // final results of every open window
  std::optional<std::int64_t> next_close_ms() const;  // processing time: the earliest window end
  Slot new_slot() const;
  bool add_to_time_windows(Event& event, Batch& out);
  bool add_to_session(Event& event, Batch& out);
  bool add_to_count(Event& event, Batch& out);
  void emit_result(const WindowId* window, Slot& slot, bool final, Batch& out);
};

}  // namespace etld::flow
