// emit: results: state per (window, group) in memory, early results on triggers (state kept), the
// final result when the window closes carrying the joined acks of every input folded into it
// (state dropped), and every open window's final result at end of input.
#include <algorithm>
#include <tuple>
#include <utility>

#include "stages/flow/window_internal.hpp"

namespace etld::flow {
void WindowStage::Impl::process_results(Batch& in, Batch& out) {
  auto now = clocks.steady();
  if (spec->by_event_time()) watermarks.advance(now);
  for (auto& event : in) {
    if (!read_observed(event, now, out)) continue;
    switch (spec->type) {
      case WindowType::session: add_to_session(event, out); break;
      case WindowType::count: add_to_count(event, out); break;
      default: add_to_time_windows(event, out); break;
    }
    if (spec->by_event_time()) watermarks.advance(now);
  }
  close_due(out);
}

void WindowStage::Impl::emit_result(const WindowId* window, Slot& slot, bool final, Batch& out) {
  out.push_back(output(window, slot, false, final ? slot.inputs.join() : Ack()));
  slot.dirty = false;
}

bool WindowStage::Impl::add_to_time_windows(Event& event, Batch& out) {
  scratch_windows.clear();
  windows_containing(*spec, reading.time, scratch_windows);
  if (spec->type != WindowType::global) {
    const std::int64_t closed = closed_below();
    WindowId newest = scratch_windows.back();
    std::erase_if(scratch_windows, [&](const WindowId& w) { return w.end + spec->lateness_ms <= closed; });
    if (scratch_windows.empty()) {
      late_total->inc();
      rejecter.reject(out, event, late_reason(reading.time, newest));
      return false;
    }
  }
  std::size_t new_windows = 0, fresh = 0;
  scratch_slots.clear();
  for (const auto& w : scratch_windows) {
    auto it = windows.find(w);
    if (it == windows.end()) {
      ++new_windows;
      ++fresh;
      continue;
    }
    auto found = it->second.index.find(reading.group);
    if (found == it->second.index.end())
      ++fresh;
    else
      scratch_slots.push_back(&it->second.slots[found->second]);
  }
  if (!room_for(new_windows, fresh, event, out) || !check_inputs(scratch_slots, fresh, event, out))
    return false;
  auto acks = split_ack(event.ack, scratch_windows.size());
  for (std::size_t j = 0; j < scratch_windows.size(); ++j) {
    const WindowId& w = scratch_windows[j];
    auto [wit, opened] = windows.try_emplace(w);
    if (opened) ++open_windows;
    OpenWindow& window = wit->second;
    auto [sit, added] = window.index.try_emplace(reading.group, window.slots.size());
    if (added) {
      window.slots.push_back(new_slot());
      ++groups;
    }
    fold(window.slots[sit->second], std::move(acks[j]));
    if (spec->trigger_every_events > 0 && ++window.since_trigger >= spec->trigger_every_events) {
      window.since_trigger = 0;
      for (auto& slot : window.slots)
        if (slot.dirty) emit_result(&w, slot, false, out);
    }
  }
  return true;
}

bool WindowStage::Impl::add_to_session(Event& event, Batch& out) {
  const std::int64_t t = reading.time, gap = spec->gap_ms, closed = closed_below();
  auto git = sessions.find(reading.group);
  // The open sessions the event is closer than `gap` to: it joins them, and they become one.
  std::vector<std::size_t> touched;
  if (git != sessions.end()) {
    const auto& list = git->second;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const Session& s = list[i];
      if (s.last + gap + spec->lateness_ms <= closed) continue;  // closed, its result due
      if (t > s.first - gap && t < s.last + gap) touched.push_back(i);
    }
  }
  if (touched.empty()) {
    if (t + gap + spec->lateness_ms <= closed) {
      late_total->inc();
      rejecter.reject(out, event, late_reason(t, WindowId{t, t + gap}));
      return false;
    }
    if (!room_for(1, 1, event, out) || !check_inputs({}, 1, event, out)) return false;
    auto& list = sessions[reading.group];
    Session s;
    s.first = s.last = t;
    s.slot = new_slot();
    ++open_windows;
    ++groups;
    auto at = std::upper_bound(list.begin(), list.end(), t,
                               [](std::int64_t v, const Session& x) { return v < x.first; });
    touched.push_back(static_cast<std::size_t>(at - list.begin()));
    list.insert(at, std::move(s));
    git = sessions.find(reading.group);
  } else {
    scratch_slots.assign(1, &git->second[touched[0]].slot);
    if (!check_inputs(scratch_slots, 0, event, out)) return false;
  }
  auto& list = git->second;
  Session& into = list[touched[0]];
  // Merge the later touched sessions into the first (an event bridging them).
  try {
    for (std::size_t k = 1; k < touched.size(); ++k) {
      Session& other = list[touched[k]];
      for (std::size_t i = 0; i < spec->aggregates.size(); ++i)
        into.slot.states[i].merge(spec->aggregates[i], other.slot.states[i], spec->limits);
    }
  } catch (const ExprError& e) {
    rejecter.reject(out, event, std::string("window: ") + e.what());
    return false;
  }
  for (std::size_t k = touched.size(); k-- > 1;) {
    Session& other = list[touched[k]];
    Ack carried = other.slot.inputs.join();
    into.slot.inputs.add(carried);
    into.first = std::min(into.first, other.first);
    into.last = std::max(into.last, other.last);
    into.since_trigger += other.since_trigger;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(touched[k]));
    --open_windows;
    --groups;
  }
  Session& s = list[touched[0]];
  s.first = std::min(s.first, t);
  s.last = std::max(s.last, t);
  fold(s.slot, std::move(event.ack));
  if (spec->trigger_every_events > 0 && ++s.since_trigger >= spec->trigger_every_events) {
    s.since_trigger = 0;
    WindowId w{s.first, s.last + gap};
    emit_result(&w, s.slot, false, out);
  }
  return true;
}

bool WindowStage::Impl::add_to_count(Event& event, Batch& out) {
  auto it = counts.find(reading.group);
  const bool known = it != counts.end();
  const bool fresh = !known || !it->second.slot;
  if (fresh && !room_for(1, known ? 0 : 1, event, out)) return false;
  scratch_slots.clear();
  if (!fresh) scratch_slots.push_back(&*it->second.slot);
  if (!check_inputs(scratch_slots, fresh ? 1 : 0, event, out)) return false;
  if (!known) {
    it = counts.try_emplace(reading.group).first;
    ++groups;  // count windows remember every group's window number: each known group counts
  }
  CountWindow& cw = it->second;
  if (!cw.slot) {
    cw.slot = new_slot();
    ++open_windows;
  }
  fold(*cw.slot, std::move(event.ack));
  ++cw.filled;
  WindowId w{cw.number, cw.number};
  if (cw.filled >= spec->count) {
    emit_result(&w, *cw.slot, true, out);
    cw.slot.reset();
    cw.filled = 0;
    cw.since_trigger = 0;
    ++cw.number;
    --open_windows;
  } else if (spec->trigger_every_events > 0 && ++cw.since_trigger >= spec->trigger_every_events) {
    cw.since_trigger = 0;
    emit_result(&w, *cw.slot, false, out);
  }
  return true;
}

void WindowStage::Impl::close_due(Batch& out) {
  if (spec->type == WindowType::count || spec->type == WindowType::global) return;
  const std::int64_t closed = closed_below();
  while (!windows.empty() && windows.begin()->first.end + spec->lateness_ms <= closed) {
    auto node = windows.extract(windows.begin());
    for (auto& slot : node.mapped().slots) emit_result(&node.key(), slot, true, out);
    groups -= node.mapped().slots.size();
    --open_windows;
  }
  if (spec->type != WindowType::session) return;
  // Closed sessions in order of their end, then start, then group, whatever the map's order.
  std::vector<std::tuple<WindowId, const std::string*, Slot*>> due;
  for (auto& [group, list] : sessions)
    for (auto& s : list)
      if (s.last + spec->gap_ms + spec->lateness_ms <= closed)
        due.emplace_back(WindowId{s.first, s.last + spec->gap_ms}, &group, &s.slot);
  if (due.empty()) return;
  std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
    const auto& [wa, ga, sa] = a;
    const auto& [wb, gb, sb] = b;
    return std::tie(wa.end, wa.start, *ga) < std::tie(wb.end, wb.start, *gb);
  });
  for (auto& [w, group, slot] : due) emit_result(&w, *slot, true, out);
  for (auto it = sessions.begin(); it != sessions.end();) {
    auto& list = it->second;
    std::size_t before = list.size();
    std::erase_if(list,
                  [&](const Session& s) { return s.last + spec->gap_ms + spec->lateness_ms <= closed; });
    open_windows -= before - list.size();
    groups -= before - list.size();
    it = list.empty() ? sessions.erase(it) : std::next(it);
  }
}

void WindowStage::Impl::trigger_dirty(Batch& out) {
  for (auto& [w, window] : windows) {
    window.since_trigger = 0;
    for (auto& slot : window.slots)
      if (slot.dirty) emit_result(&w, slot, false, out);
  }
  for (auto& [group, list] : sessions)
    for (auto& s : list)
      if (s.slot.dirty) {
        s.since_trigger = 0;
        WindowId w{s.first, s.last + spec->gap_ms};
        emit_result(&w, s.slot, false, out);
      }
  for (auto& [group, cw] : counts)
    if (cw.slot && cw.slot->dirty) {
      cw.since_trigger = 0;
      WindowId w{cw.number, cw.number};
      emit_result(&w, *cw.slot, false, out);
    }
}

void WindowStage::Impl::finish_results(Batch& out) {
  for (auto& [w, window] : windows)
    for (auto& slot : window.slots) emit_result(&w, slot, true, out);
  windows.clear();
  std::vector<std::pair<const std::string*, Session*>> open;
  for (auto& [group, list] : sessions)
    for (auto& s : list) open.emplace_back(&group, &s);
  std::sort(open.begin(), open.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->first, *a.first) < std::tie(b.second->first, *b.first);
  });
  for (auto& [group, s] : open) {
    WindowId w{s->first, s->last + spec->gap_ms};
    emit_result(&w, s->slot, true, out);
  }
  sessions.clear();
  std::vector<std::pair<const std::string*, CountWindow*>> partial;
  for (auto& [group, cw] : counts)
    if (cw.slot) partial.emplace_back(&group, &cw);
  std::sort(partial.begin(), partial.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  for (auto& [group, cw] : partial) {
    WindowId w{cw->number, cw->number};
    emit_result(&w, *cw->slot, true, out);
  }
  counts.clear();
  open_windows = groups = 0;
}

std::optional<std::int64_t> WindowStage::Impl::next_close_ms() const {
  std::optional<std::int64_t> next;
  if (spec->type == WindowType::tumbling || spec->type == WindowType::sliding) {
    if (!windows.empty()) next = windows.begin()->first.end;
  } else if (spec->type == WindowType::session) {
    for (const auto& [group, list] : sessions)
      for (const auto& s : list)
        if (!next || s.last + spec->gap_ms < *next) next = s.last + spec->gap_ms;
  }
  return next;
}

}  // namespace etld::flow
