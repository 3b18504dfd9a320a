// The engine's health for systemd and for the metrics: samples the running pipeline's progress
// (ProgressWatch) every second, or at half of WatchdogSec when that is shorter; exposes
// etld_stage_stalled_seconds and etld_watchdog_wedged_stages; pings systemd's watchdog while no
// stage instance is wedged, so that a wedged one gets etld restarted; without systemd's watchdog
// it logs the wedge, as nobody else acts on it. Runs on the supervisor's io_context; the metrics
// are read from the admin endpoint's threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "stages/engine/metrics.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/progress.hpp"

namespace etld {

class StageWatchdog {
 public:
  // `pipeline` and `pipeline_name` give the one running now (a reload replaces it).
  StageWatchdog(boost::asio::io_context& io, std::function<std::shared_ptr<Pipeline>()> pipeline,
                std::function<std::string()> pipeline_name);
  // Once the pipeline runs: the first sample, the metrics in `registry`, the pings under systemd.
  void start(metrics::Registry& registry);
  void stop();              // the metrics go, the timers are cancelled
  void pipeline_rebuilt();  // its counters start again

 private:
  void sample();
  void ping();
  void collect(metrics::Exposition& out) const;

  std::function<std::shared_ptr<Pipeline>()> pipeline_;
  std::function<std::string()> pipeline_name_;
  boost::asio::steady_timer sample_timer_, ping_timer_;
  mutable std::mutex mu_;  // guards watch_: sampled here, read by scrapes
  std::optional<ProgressWatch> watch_;
  std::chrono::microseconds systemd_period_{0};  // 0 when systemd does not watch
  std::vector<std::string> wedged_now_;          // the last sample's wedged instances
  bool pings_stopped_ = false;
  bool wedge_logged_ = false;  // without systemd
  std::shared_ptr<void> collector_;
};

}  // namespace etld
