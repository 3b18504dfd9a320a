// The window stage's transform (stage type `window`, registered in window_type.cpp): assigns each
// event to its windows by event or processing time, folds it into per-(window, group) aggregate
// states and emits either a partial record per input batch (emit: updates) or each window's
// result when it closes, on early triggers and at end of input (emit: results). Late events,
// events whose time cannot be read and events past a state cap are rejected with their reason.
// Exposed so that tests can drive an instance with their own clocks. See docs/windows.md.
// Threading: one instance per strand (stages/engine/stage.hpp); its timers run there too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "stages/engine/stage.hpp"
#include "stages/flow/watermarks.hpp"
#include "stages/flow/window_spec.hpp"

namespace etld::flow {

// Where an instance reads the time: the wall clock (processing-time windows, the watermark lag)
// and the steady clock (idle partitions, timers). Tests substitute their own.
struct WindowClocks {
  std::function<std::int64_t()> wall_ms;
  std::function<Clock::time_point()> steady;
  static WindowClocks system();
};

class WindowStage final : public Transform {
 public:
  WindowStage(std::shared_ptr<const WindowSpec> spec, WindowClocks clocks = WindowClocks::system());
  ~WindowStage() override;

  void start(StageContext& ctx) override;
  void process(Batch& in, Batch& out) override;
  void finish(Batch& out) override;
  // Results made by the timers (a window closed by the clock or an idle partition, trigger_every)
  // wait here until the runner hands them on.
  std::size_t held() const override;
  void resume(Batch& out, std::size_t room) override;

  // What the timers run: closes what the clock closed (processing-time windows, idle partitions)
  // and, when `trigger` is set, emits the current results of windows updated since the last time.
  // Public so that a test with its own clocks can run it at the moment it chooses.
  void on_clock(Batch& out, bool trigger);

  struct Impl;

 private:
  void arm_trigger();
  // Runs on_clock from a timer and has the runner hand on what it made (StageContext::wake).
  void hold_from_clock(bool trigger);

  std::unique_ptr<Impl> impl_;
};

}  // namespace etld::flow
