#include "stages/engine/restart_policy.hpp"

#include <algorithm>

namespace etld {

RestartDecision decide_restart(const StageConfig& stage, RestartHistory& history, bool fatal,
                               std::chrono::steady_clock::time_point now) {
  if (now - history.window_start > stage.restart_window) {
    history.window_start = now;
    history.restarts_in_window = 0;
  }
  RestartDecision d;
  if (fatal) {
    d.give_up = true;
    d.why = " (not restartable)";
  } else if (stage.restart == RestartPolicy::temporary) {
    d.give_up = true;
    d.why = " (restart: temporary)";
  } else if (history.restarts_in_window >= stage.max_restarts) {
    d.give_up = true;
    d.why = " " + std::to_string(history.restarts_in_window + 1) + " times within " +
            std::to_string(stage.restart_window.count()) + "ms";
  }
  if (d.give_up) return d;
  d.backoff = stage.restart_backoff * (1 << std::min(history.restarts_in_window, 10));
  ++history.restarts_in_window;
  return d;
}

}  // namespace etld
