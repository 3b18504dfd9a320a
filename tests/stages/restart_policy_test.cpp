// decide_restart: the `restart:` policy as a pure function of the settings, the history and the
// clock.
#include <doctest/doctest.h>

#include "stages/engine/restart_policy.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {
StageConfig stage(RestartPolicy policy, int max_restarts = 3) {
  StageConfig s;
  s.restart = policy;
  s.max_restarts = max_restarts;
  s.restart_window = 60s;
  s.restart_backoff = 100ms;
  return s;
}
const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;
}  // namespace

TEST_CASE("restart policy: backoff doubles within the window, then the stage gives up") {
  auto s = stage(RestartPolicy::transient, 3);
  RestartHistory h;
  auto d = decide_restart(s, h, false, t0);
  CHECK_FALSE(d.give_up);
  CHECK(d.backoff == 100ms);
  CHECK(decide_restart(s, h, false, t0 + 1s).backoff == 200ms);
  CHECK(decide_restart(s, h, false, t0 + 2s).backoff == 400ms);
  d = decide_restart(s, h, false, t0 + 3s);
  CHECK(d.give_up);
  CHECK(d.why == " 4 times within 60000ms");
}

TEST_CASE("restart policy: the window starts again once restart_window has passed") {
  auto s = stage(RestartPolicy::permanent, 1);
  RestartHistory h;
  CHECK_FALSE(decide_restart(s, h, false, t0).give_up);
  CHECK(decide_restart(s, h, false, t0 + 30s).give_up);  // second failure within the window
  RestartHistory later;
  CHECK_FALSE(decide_restart(s, later, false, t0).give_up);
  auto d = decide_restart(s, later, false, t0 + 61s);  // the window passed: counted afresh
  CHECK_FALSE(d.give_up);
  CHECK(d.backoff == 100ms);
}

TEST_CASE("restart policy: temporary and fatal failures are never restarted") {
  RestartHistory h;
  auto d = decide_restart(stage(RestartPolicy::temporary), h, false, t0);
  CHECK(d.give_up);
  CHECK(d.why == " (restart: temporary)");
  d = decide_restart(stage(RestartPolicy::permanent), h, true, t0);
  CHECK(d.give_up);
  CHECK(d.why == " (not restartable)");
}

TEST_CASE("restart policy: the backoff stops doubling after ten restarts") {
  auto s = stage(RestartPolicy::transient, 100);
  RestartHistory h;
  std::chrono::milliseconds last{};
  for (int i = 0; i < 15; ++i) last = decide_restart(s, h, false, t0 + std::chrono::seconds(i)).backoff;
  CHECK(last == 100ms * 1024);
}
