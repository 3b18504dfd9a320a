// The window stage's instance: reading events (time, group, aggregate inputs), watermarks,
// lateness, caps, timers, metrics, and emit: updates. emit: results is window_results.cpp's.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "stages/flow/event_time.hpp"
#include "stages/flow/window_internal.hpp"

namespace etld::flow {
namespace {

using metrics::Metric;
using metrics::Type;

const Metric kOpenWindows{"etld_window_open_windows", Type::gauge,
                          "Windows holding state in a window stage instance (emit: updates: windows the last "
                          "input batch touched)."};
const Metric kGroups{"etld_window_groups", Type::gauge,
                     "(window, group) pairs holding state in a window stage instance (count windows: groups "
                     "known)."};
const Metric kLate{"etld_window_late_records_total", Type::counter,
                   "Events rejected as late: every window they belong to had closed."};
const Metric kStateFull{
    "etld_window_state_full_total", Type::counter,
    "Events that would have opened a window or group past max_open_windows or max_groups."};
const Metric kWatermarkLag{"etld_window_watermark_lag_ms", Type::gauge,
                           "Wall-clock time minus the largest event time seen, per source partition."};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace

WindowClocks WindowClocks::system() {
  return {[] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
          },
          [] { return Clock::now(); }};
}

void windows_containing(const WindowSpec& spec, std::int64_t t, std::vector<WindowId>& out) {
  switch (spec.type) {
    case WindowType::tumbling: {
      std::int64_t start = floor_div(t, spec.size_ms) * spec.size_ms;
      out.push_back({start, start + spec.size_ms});
      break;
    }
    case WindowType::sliding: {
      // Every k with k*slide <= t < k*slide + size.
      for (std::int64_t k = floor_div(t - spec.size_ms, spec.slide_ms) + 1; k <= floor_div(t, spec.slide_ms);
           ++k)
        out.push_back({k * spec.slide_ms, k * spec.slide_ms + spec.size_ms});
      break;
    }
    default: out.push_back({0, 0}); break;
  }
}

void LagBoard::publish(const std::vector<std::pair<SourcePartition, std::int64_t>>& largest) {
  std::vector<std::pair<metrics::Labels, std::int64_t>> rows;
  rows.reserve(largest.size());
  for (const auto& [p, t] : largest) {
    metrics::Labels labels = base_;
    labels.emplace_back("topic", p.topic ? *p.topic : std::string());
    labels.emplace_back("partition", std::to_string(p.partition));
    rows.emplace_back(std::move(labels), t);
  }
  std::lock_guard lock(mu_);
  rows_ = std::move(rows);
}

void LagBoard::collect(metrics::Exposition& out) const {
  std::int64_t now = wall_ms_();
  std::lock_guard lock(mu_);
  for (const auto& [labels, t] : rows_) out.sample(kWatermarkLag, labels, static_cast<double>(now - t));
}

WindowStage::WindowStage(std::shared_ptr<const WindowSpec> spec, WindowClocks clocks)
    : impl_(std::make_unique<Impl>(std::move(spec), std::move(clocks))) {}

WindowStage::~WindowStage() = default;

void WindowStage::start(StageContext& ctx) {
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.rejecter.bind(ctx);
  const auto& scope = ctx.metrics();
  m.open_windows_gauge = scope.gauge(kOpenWindows);
  m.groups_gauge = scope.gauge(kGroups);
  m.late_total = scope.counter(kLate);
  m.state_full_total = scope.counter(kStateFull);
  if (m.spec->by_event_time()) {
    m.lag_board = std::make_shared<LagBoard>(scope.labels(), m.clocks.wall_ms);
    scope.add(m.lag_board);
  }
  if (m.spec->emit != EmitMode::results) return;
  m.clock_timer = std::make_unique<StrandTimer>(ctx.executor());
  if (m.spec->trigger_every_ms > 0) {
    m.trigger_timer = std::make_unique<StrandTimer>(ctx.executor());
    arm_trigger();
  }
}

void WindowStage::arm_trigger() {
  impl_->trigger_timer->start(std::chrono::milliseconds(impl_->spec->trigger_every_ms), [this] {
    arm_trigger();
    hold_from_clock(true);
  });
}

void WindowStage::hold_from_clock(bool trigger) {
  Batch out;
  on_clock(out, trigger);
  for (auto& e : out) impl_->held.push_back(std::move(e));
  if (!impl_->held.empty()) impl_->ctx->wake();  // last: it may call resume() before it returns
}

void WindowStage::process(Batch& in, Batch& out) {
  Impl& m = *impl_;
  if (m.spec->emit == EmitMode::updates)
    m.process_updates(in, out);
  else
    m.process_results(in, out);
  in.clear();
  m.publish_metrics();
  m.rearm([this] { hold_from_clock(false); });
}

void WindowStage::on_clock(Batch& out, bool trigger) {
  Impl& m = *impl_;
  if (m.spec->by_event_time()) m.watermarks.advance(m.clocks.steady());
  if (m.spec->emit == EmitMode::results) {
    m.close_due(out);
    if (trigger) m.trigger_dirty(out);
  }
  m.publish_metrics();
  m.rearm([this] { hold_from_clock(false); });
}

void WindowStage::finish(Batch& out) {
  Impl& m = *impl_;
  m.rejecter.flush();
  if (m.clock_timer) m.clock_timer->cancel();
  if (m.trigger_timer) m.trigger_timer->cancel();
  for (auto& e : m.held) out.push_back(std::move(e));
  m.held.clear();
  if (m.spec->emit == EmitMode::results) m.finish_results(out);
  m.publish_metrics();
}

std::size_t WindowStage::held() const { return impl_->held.size(); }

void WindowStage::resume(Batch& out, std::size_t room) {
  auto& held = impl_->held;
  while (room-- > 0 && !held.empty()) {
    out.push_back(std::move(held.front()));
    held.pop_front();
  }
}

// ---- reading events -----------------------------------------------------------------------------

void WindowStage::Impl::read(Event& event) {
  Reading& r = reading;
  r.keys.clear();
  r.group.clear();
  for (const auto& key : spec->group_by) {
    r.keys.push_back(key.expr.eval(event));
    r.keys.back().append_json(r.group);
    r.group.push_back('\x1e');
  }
  const auto& aggs = spec->aggregates;
  r.inputs.resize(aggs.size());
  for (std::size_t i = 0; i < aggs.size(); ++i)
    r.inputs[i] = aggs[i].input ? aggs[i].input->eval(event) : Value();
  r.time = spec->event_time ? event_time_of(spec->event_time->eval(event), spec->event_time->text())
                            : clocks.wall_ms();
}

bool WindowStage::Impl::read_observed(Event& event, Clock::time_point now, Batch& out) {
  try {
    read(event);
  } catch (const ExprError& e) {
    rejecter.reject(out, event, std::string("window: ") + e.what());
    return false;
  } catch (const JsonError& e) {
    rejecter.reject(out, event, std::string("window: ") + e.what());
    return false;
  }
  reading.from = {event.partition >= 0 ? &event.topic.str() : nullptr, event.partition};
  // Observed before the lateness check but advanced only after the event: the watermark an event
  // is judged by is the one before it.
  if (spec->by_event_time()) watermarks.observe(reading.from, reading.time, now);
  return true;
}

std::vector<Ack> split_ack(Ack& ack, std::size_t n) {
  if (n != 1) return ack.split(n);
  std::vector<Ack> one;
  one.push_back(std::move(ack));
  return one;
}

std::int64_t WindowStage::Impl::closed_below() const {
  return spec->by_event_time() ? watermarks.current() : clocks.wall_ms();
}

std::string WindowStage::Impl::late_reason(std::int64_t t, const WindowId& w) const {
  std::int64_t wm = watermarks.current();
  return "late: event time " + format_rfc3339_ms(t) + " (" + std::to_string(t) + ") belongs to window [" +
         format_rfc3339_ms(w.start) + ", " + format_rfc3339_ms(w.end) + "), closed since the watermark " +
         format_rfc3339_ms(wm) + " (" + std::to_string(wm) + ") reached its end + allowed_lateness " +
         std::to_string(spec->lateness_ms) + "ms";
}

bool WindowStage::Impl::room_for(std::size_t new_windows, std::size_t new_pairs, Event& event, Batch& out) {
  const char* cap = nullptr;
  std::size_t limit = 0;
  std::size_t held_pairs = spec->emit == EmitMode::updates ? partials.size() : groups;
  if (spec->emit == EmitMode::results && new_windows > 0 &&
      open_windows + new_windows > spec->max_open_windows) {
    cap = "max_open_windows";
    limit = spec->max_open_windows;
  } else if (new_pairs > 0 && held_pairs + new_pairs > spec->max_groups) {
    cap = "max_groups";
    limit = spec->max_groups;
  }
  if (!cap) return true;
  state_full_total->inc();
  std::string reason = std::string("state full: ") + cap + " " + std::to_string(limit) +
                       " reached; the event would open a new " +
                       (std::string(cap) == "max_groups" ? "(window, group) pair" : "window");
  if (spec->on_state_full == StateFullPolicy::fail)
    throw std::runtime_error("window stage '" + ctx->stage_name() + "': " + reason +
                             " (on_state_full: fail)");
  rejecter.reject(out, event, reason);
  return false;
}

bool WindowStage::Impl::check_inputs(const std::vector<Slot*>& slots, std::size_t fresh, Event& event,
                                     Batch& out) {
  const auto& aggs = spec->aggregates;
  try {
    for (std::size_t i = 0; i < aggs.size(); ++i) {
      for (const Slot* slot : slots) slot->states[i].check(aggs[i], reading.inputs[i], spec->limits);
      if (fresh > 0) AggState(aggs[i]).check(aggs[i], reading.inputs[i], spec->limits);
    }
  } catch (const ExprError& e) {
    rejecter.reject(out, event, std::string("window: ") + e.what());
    return false;
  }
  return true;
}

void WindowStage::Impl::fold(Slot& slot, Ack ack) {
  const auto& aggs = spec->aggregates;
  for (std::size_t i = 0; i < aggs.size(); ++i) slot.states[i].add(aggs[i], reading.inputs[i], reading.time);
  slot.inputs.add(ack);
  slot.dirty = true;
}

Slot WindowStage::Impl::new_slot() const {
  Slot slot;
  slot.keys = reading.keys;
  slot.states.reserve(spec->aggregates.size());
  for (const auto& agg : spec->aggregates) slot.states.emplace_back(agg);
  return slot;
}

Event WindowStage::Impl::output(const WindowId* window, Slot& slot, bool partial, Ack ack) const {
  Value record{Object{}};
  if (window) {
    if (spec->type == WindowType::count) {
      record.set("window", Value(window->start));
    } else if (spec->type != WindowType::global) {
      record.set("window_start", Value(format_rfc3339_ms(window->start)));
      record.set("window_end", Value(format_rfc3339_ms(window->end)));
    }
  }
  for (std::size_t k = 0; k < spec->group_by.size(); ++k) record.set(spec->group_by[k].output, slot.keys[k]);
  const auto& aggs = spec->aggregates;
  for (std::size_t i = 0; i < aggs.size(); ++i) {
    if (partial || spec->partial_results)
      slot.states[i].write_partial(aggs[i], record);
    else
      record.set(aggs[i].output, slot.states[i].result(aggs[i]));
  }
  Event e;
  e.value = record.to_json();
  e.set_record(std::move(record));
  e.ack = std::move(ack);
  return e;
}

void WindowStage::Impl::publish_metrics() {
  open_windows_gauge->set(static_cast<double>(open_windows));
  groups_gauge->set(static_cast<double>(spec->emit == EmitMode::updates ? 0 : groups));
  if (lag_board) lag_board->publish(watermarks.largest_seen());
}

void WindowStage::Impl::rearm(const std::function<void()>& fire) {
  if (!clock_timer) return;
  auto now = clocks.steady();
  std::optional<Clock::time_point> at;
  if (!spec->by_event_time()) {
    if (auto end = next_close_ms())
      at = now + std::chrono::milliseconds(std::max<std::int64_t>(0, *end - clocks.wall_ms()));
  } else {
    at = watermarks.next_idle_at(now);
  }
  if (at)
    clock_timer->start_at(*at, fire);
  else
    clock_timer->cancel();
}

// ---- emit: updates --------------------------------------------------------------------------------

void WindowStage::Impl::process_updates(Batch& in, Batch& out) {
  auto now = clocks.steady();
  if (spec->by_event_time()) watermarks.advance(now);
  std::string slot_key;
  for (auto& event : in) {
    if (!read_observed(event, now, out)) continue;
    const SourcePartition& from = reading.from;
    scratch_windows.clear();
    windows_containing(*spec, reading.time, scratch_windows);
    if (spec->type != WindowType::global && spec->by_event_time()) {
      const std::int64_t closed = watermarks.current();
      WindowId newest = scratch_windows.back();
      std::erase_if(scratch_windows, [&](const WindowId& w) { return w.end + spec->lateness_ms <= closed; });
      if (scratch_windows.empty()) {
        late_total->inc();
        rejecter.reject(out, event, late_reason(reading.time, newest));
        continue;
      }
    }
    // The (partition, window, group) slots of this batch the event goes to, per assignment of the
    // partition (its ack target): a partition revoked and assigned again within one batch gives
    // two partials, since an exactly-once sink can vouch for one assignment's positions only.
    const AckTarget* assignment = event.ack.target();
    scratch_slots.clear();
    std::size_t fresh = 0;
    std::vector<std::string> keys;
    for (const auto& w : scratch_windows) {
      // The partition field by field: the struct's padding is not part of its value.
      slot_key.assign(reinterpret_cast<const char*>(&from.topic), sizeof from.topic);
      slot_key.append(reinterpret_cast<const char*>(&from.partition), sizeof from.partition);
      slot_key.append(reinterpret_cast<const char*>(&assignment), sizeof assignment);
      slot_key.append(reinterpret_cast<const char*>(&w), sizeof w);
      slot_key += reading.group;
      auto it = partial_index.find(slot_key);
      if (it == partial_index.end())
        ++fresh;
      else
        scratch_slots.push_back(&partials[it->second]);
      keys.push_back(slot_key);
    }
    if (!room_for(0, fresh, event, out) || !check_inputs(scratch_slots, fresh, event, out)) continue;
    auto acks = split_ack(event.ack, scratch_windows.size());
    for (std::size_t j = 0; j < scratch_windows.size(); ++j) {
      auto [it, added] = partial_index.try_emplace(keys[j], partials.size());
      if (added) {
        partials.push_back(new_slot());
        partials.back().from = from;
        partials.back().topic = event.topic;
        partial_windows.push_back(scratch_windows[j]);
      }
      Slot& slot = partials[it->second];
      fold(slot, std::move(acks[j]));
      slot.max_offset = std::max(slot.max_offset, event.offset);
    }
    if (spec->by_event_time()) watermarks.advance(now);
  }
  out.reserve(out.size() + partials.size());
  for (std::size_t i = 0; i < partials.size(); ++i) {
    Slot& slot = partials[i];
    Event e = output(spec->type == WindowType::global ? nullptr : &partial_windows[i], slot, true,
                     slot.inputs.join());
    e.topic = slot.topic;
    e.partition = slot.from.partition;
    e.offset = slot.max_offset;
    out.push_back(std::move(e));
  }
  partials.clear();
  partial_index.clear();
  std::sort(partial_windows.begin(), partial_windows.end());
  open_windows = static_cast<std::size_t>(std::unique(partial_windows.begin(), partial_windows.end()) -
                                          partial_windows.begin());
  partial_windows.clear();
}

}  // namespace etld::flow
