#include "stages/flow/watermarks.hpp"

#include <algorithm>

namespace etld::flow {

void Watermarks::observe(const SourcePartition& p, std::int64_t t, Clock::time_point now) {
  Seen& s = partitions_[p];
  s.largest = std::max(s.largest, t);
  s.last_event = now;
}

std::int64_t Watermarks::advance(Clock::time_point now) {
  std::int64_t low = std::numeric_limits<std::int64_t>::max(), high = kNone;
  bool any_active = false;
  for (const auto& [p, s] : partitions_) {
    high = std::max(high, s.largest);
    if (idle(s, now)) continue;
    any_active = true;
    low = std::min(low, s.largest);
  }
  if (partitions_.empty()) return watermark_;
  watermark_ = std::max(watermark_, any_active ? low : high);
  return watermark_;
}

std::optional<Clock::time_point> Watermarks::next_idle_at(Clock::time_point now) const {
  if (!idle_timeout_ms_) return std::nullopt;
  std::optional<Clock::time_point> next;
  for (const auto& [p, s] : partitions_) {
    if (idle(s, now)) continue;
    auto at = s.last_event + std::chrono::milliseconds(*idle_timeout_ms_);
    if (!next || at < *next) next = at;
  }
  return next;
}

std::vector<std::pair<SourcePartition, std::int64_t>> Watermarks::largest_seen() const {
  std::vector<std::pair<SourcePartition, std::int64_t>> out;
  out.reserve(partitions_.size());
  for (const auto& [p, s] : partitions_) out.emplace_back(p, s.largest);
  return out;
}

}  // namespace etld::flow
