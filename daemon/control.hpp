// What the daemon's control surfaces share: the supervisor that owns the running pipeline
// (signals, SIGHUP reload, systemd notifications) fills these in, and the admin HTTP endpoint
// serves them, so neither has to know the other.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stages/engine/pipeline.hpp"

namespace etld {

// The result of one reload attempt (SIGHUP, POST /reload, systemctl reload).
struct ReloadOutcome {
  std::uint64_t generation = 0;  // of the configuration running after the attempt; 1 at start-up
  std::string config_hash;       // of the file the attempt read (hex)
  bool ok = true;
  std::string error;                          // file:line:column diagnostics when !ok
  std::vector<std::string> restarted_stages;  // stages rebuilt by a successful reload
  std::chrono::system_clock::time_point at;
};

// What the admin endpoint asks of the daemon; each function is thread-safe.
struct AdminHooks {
  std::function<std::vector<StageStats>()> stage_stats;
  std::function<std::shared_ptr<const PipelineConfig>()> config;  // of the running generation
  std::function<bool()> ready;                                    // pipeline running and sinks connected
  std::function<ReloadOutcome()> reload;       // POST /reload: reload now, return the outcome
  std::function<ReloadOutcome()> last_reload;  // GET /reload
  // Optional: why ready() is false, for the answer of /readyz.
  std::function<std::string()> unready_reason;
  // Optional: writes the stages' own metrics (the registry the pipelines register in).
  std::function<void(metrics::Exposition&)> collect_metrics;
  // Optional: GET /tap: a tap on a stage of the running pipeline (Pipeline::tap; throws
  // TapRefused).
  std::function<std::shared_ptr<Tap>(const std::string& stage, const TapLimits& limits)> open_tap;
};

}  // namespace etld
