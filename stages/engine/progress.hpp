// The engine's own health check, which feeds the systemd watchdog: a stage instance is wedged
// when it holds work (StageStats::pending: batches waiting for or inside its strand, events a
// sink has not settled) and its progress counter stood still for a whole period. Waiting for
// downstream demand is not being wedged: the stage downstream is the one holding the work.
// Cheap: it compares two counters per instance of Pipeline::stats(), sampled by the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "stages/engine/pipeline.hpp"

namespace etld {

class ProgressWatch {
 public:
  explicit ProgressWatch(std::chrono::milliseconds period) : period_(period) {}
  // Feeds one sample; returns one line per wedged instance (empty: the pipeline is healthy).
  std::vector<std::string> check(const std::vector<StageStats>& stats,
                                 std::chrono::steady_clock::time_point now);
  void reset() { seen_.clear(); }  // the pipeline was rebuilt: its counters start again

  // How long each instance of the last sample has held work without progress, as of `now`
  // (zero while it progresses or holds nothing): the etld_stage_stalled_seconds metric. Counted
  // from the last sample that saw progress, once a later sample saw none.
  struct Stall {
    std::string stage;
    int instance = 0;
    std::chrono::milliseconds stalled{0};
  };
  std::vector<Stall> stalls(std::chrono::steady_clock::time_point now) const;
  std::chrono::milliseconds period() const { return period_; }

 private:
  struct Seen {
    std::uint64_t progress = 0;
    std::chrono::steady_clock::time_point since;  // of the last progress, or of idleness
    // The last sample found it holding work without progress since the one before. Until a
    // sample says so, a stage that progresses between samples is not reported as stalled.
    bool still = false;
  };
  std::chrono::milliseconds period_;
  std::map<std::pair<std::string, int>, Seen> seen_;
};

}  // namespace etld
