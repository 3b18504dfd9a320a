#include "stages/engine/progress.hpp"

#include <fmt/format.h>

namespace etld {

std::vector<std::string> ProgressWatch::check(const std::vector<StageStats>& stats,
                                              std::chrono::steady_clock::time_point now) {
  std::vector<std::string> wedged;
  for (const auto& s : stats) {
    auto [it, fresh] = seen_.try_emplace({s.name, s.instance}, Seen{s.progress, now, false});
    auto& seen = it->second;
    if (fresh || s.progress != seen.progress || s.pending == 0) {
      seen = Seen{s.progress, now, false};
      continue;
    }
    seen.still = true;
    auto stuck = std::chrono::duration_cast<std::chrono::milliseconds>(now - seen.since);
    if (stuck >= period_)
      wedged.push_back(
          fmt::format("stage '{}' (instance {}) holds {} unfinished events and made no progress "
                      "for {}ms",
                      s.name, s.instance, s.pending, stuck.count()));
  }
  return wedged;
}

std::vector<ProgressWatch::Stall> ProgressWatch::stalls(std::chrono::steady_clock::time_point now) const {
  std::vector<Stall> out;
  out.reserve(seen_.size());
  for (const auto& [key, seen] : seen_) {
    auto stalled = !seen.still || now < seen.since
                       ? std::chrono::milliseconds(0)
                       : std::chrono::duration_cast<std::chrono::milliseconds>(now - seen.since);
    out.push_back({key.first, key.second, stalled});
  }
  return out;
}

}  // namespace etld
