// What to do when a stage instance fails: restart it after a backoff, or give up and stop the
// pipeline. A pure function of the stage's `restart:` settings, the failures counted so far and
// the clock, so that the policy is tested without a pipeline.
#pragma once

#include <chrono>
#include <string>

#include "config/schema/pipeline.hpp"

namespace etld {

// The failures of one stage instance counted so far. Starts empty.
struct RestartHistory {
  std::chrono::steady_clock::time_point window_start{};
  int restarts_in_window = 0;
};

struct RestartDecision {
  bool give_up = false;
  std::chrono::milliseconds backoff{0};  // when restarting: how long to wait first
  std::string why;                       // when giving up: " (restart: temporary)", " 4 times within ..."
};

// Decides for a failure at `now` (`fatal`: a FatalStageError, which no restart can fix) and
// counts it in `history`: the window restarts when restart_window has passed since it began; the
// backoff doubles with each restart within the window (capped at 2^10 times restart_backoff).
RestartDecision decide_restart(const StageConfig& stage, RestartHistory& history, bool fatal,
                               std::chrono::steady_clock::time_point now);

}  // namespace etld
