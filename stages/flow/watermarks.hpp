// Event-time watermarks of one window stage instance. Per source partition (topic, partition;
// events from no partition count as one), the largest event time seen; the instance's watermark
// is the minimum over the partitions that are not idle (no event for idle_timeout of processing
// time) or, when every one is idle, the largest seen. It never goes back: a partition that
// appears late, or wakes up behind the others, cannot reopen windows that already closed.
// Threading: belongs to one stage instance (its strand); lag_snapshot() is for its collector.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace etld::flow {

using Clock = std::chrono::steady_clock;

struct SourcePartition {
  const std::string* topic = nullptr;  // interned (SharedName); nullptr: not from a partition
  std::int32_t partition = -1;
  auto operator<=>(const SourcePartition&) const = default;
};

class Watermarks {
 public:
  static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min();

  explicit Watermarks(std::optional<std::int64_t> idle_timeout_ms) : idle_timeout_ms_(idle_timeout_ms) {}

  // An event of `p` with event time `t` arrived at `now`.
  void observe(const SourcePartition& p, std::int64_t t, Clock::time_point now);
  // The watermark at `now` (kNone before any event). Advances the remembered one.
  std::int64_t advance(Clock::time_point now);
  std::int64_t current() const { return watermark_; }
  // When the next partition that is not idle now turns idle, if idle_timeout is set.
  std::optional<Clock::time_point> next_idle_at(Clock::time_point now) const;

  // The largest event time per partition, for the watermark lag metric.
  std::vector<std::pair<SourcePartition, std::int64_t>> largest_seen() const;

 private:
  struct Seen {
    std::int64_t largest = kNone;
    Clock::time_point last_event{};
  };
  bool idle(const Seen& s, Clock::time_point now) const {
    return idle_timeout_ms_ && now - s.last_event >= std::chrono::milliseconds(*idle_timeout_ms_);
  }

  std::optional<std::int64_t> idle_timeout_ms_;
  std::map<SourcePartition, Seen> partitions_;
  std::int64_t watermark_ = kNone;
};

}  // namespace etld::flow
