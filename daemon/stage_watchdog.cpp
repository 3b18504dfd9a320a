#include "daemon/stage_watchdog.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "daemon/notify.hpp"

namespace etld {

namespace {

using Clock = std::chrono::steady_clock;

// Sampled every second whether or not systemd watches (for the metrics); without systemd's
// watchdog a stage instance counts as wedged after this (the WatchdogSec of the shipped units).
constexpr std::chrono::seconds kSample{1};
constexpr std::chrono::seconds kWedgedWithoutSystemd{60};

using metrics::Metric;
using metrics::Type;
constexpr Metric kStageStalled{
    "etld_stage_stalled_seconds", Type::gauge,
    "Seconds the stage instance has held unfinished events without making progress (0 while it "
    "progresses or holds nothing)."};
constexpr Metric kWedgedStages{
    "etld_watchdog_wedged_stages", Type::gauge,
    "Stage instances stalled for a whole watchdog period (WatchdogSec, else 60 s); under systemd's "
    "watchdog, etld stops its pings while this is above 0."};

}  // namespace

StageWatchdog::StageWatchdog(boost::asio::io_context& io, std::function<std::shared_ptr<Pipeline>()> pipeline,
                             std::function<std::string()> pipeline_name)
    : pipeline_(std::move(pipeline)),
      pipeline_name_(std::move(pipeline_name)),
      sample_timer_(io),
      ping_timer_(io) {}

void StageWatchdog::start(metrics::Registry& registry) {
  auto period = systemd_watchdog_period();
  if (period) systemd_period_ = *period;
  {
    std::lock_guard lock(mu_);
    watch_.emplace(period ? std::chrono::duration_cast<std::chrono::milliseconds>(*period)
                          : std::chrono::milliseconds(kWedgedWithoutSystemd));
  }
  collector_ = registry.add_collector([this](metrics::Exposition& out) { collect(out); });
  sample();  // first: the pings go by its last sample
  if (period) {
    spdlog::info("systemd watchdog: every {}ms, while every stage makes progress", period->count() / 2000);
    ping();
  }
}

void StageWatchdog::stop() {
  collector_.reset();
  sample_timer_.cancel();
  ping_timer_.cancel();
}

void StageWatchdog::pipeline_rebuilt() {
  {
    std::lock_guard lock(mu_);
    if (watch_) watch_->reset();
  }
  wedged_now_.clear();  // of the pipeline just replaced
}

// Without systemd's watchdog nobody restarts etld, so the wedge is logged here (under it, ping
// logs it).
void StageWatchdog::sample() {
  {
    std::lock_guard lock(mu_);
    wedged_now_ = watch_->check(pipeline_()->stats(), Clock::now());
  }
  if (systemd_period_.count() == 0) {
    if (!wedged_now_.empty() && !wedge_logged_)
      for (const auto& w : wedged_now_) spdlog::error("watchdog: {}", w);
    else if (wedged_now_.empty() && wedge_logged_)
      spdlog::info("watchdog: every stage makes progress again");
    wedge_logged_ = !wedged_now_.empty();
  }
  // At least as often as the pings, which go by this sample.
  sample_timer_.expires_after(systemd_period_.count() > 0
                                  ? std::min<std::chrono::microseconds>(kSample, systemd_period_ / 2)
                                  : std::chrono::microseconds(kSample));
  sample_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) sample();
  });
}

// At half the period while no stage is wedged in the last sample. A wedged stage stops the
// pings, so that systemd restarts etld (WatchdogSec=, Restart=on-failure).
void StageWatchdog::ping() {
  if (wedged_now_.empty()) {
    if (pings_stopped_) spdlog::info("watchdog: every stage makes progress again");
    pings_stopped_ = false;
    notify_systemd("WATCHDOG=1");
  } else if (!pings_stopped_) {
    pings_stopped_ = true;
    for (const auto& w : wedged_now_) spdlog::error("watchdog: {}: not feeding the systemd watchdog", w);
  }
  ping_timer_.expires_after(systemd_period_ / 2);
  ping_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) ping();
  });
}

void StageWatchdog::collect(metrics::Exposition& out) const {
  const std::string pipeline = pipeline_name_();
  std::vector<ProgressWatch::Stall> stalls;
  std::chrono::milliseconds period{0};
  {
    std::lock_guard lock(mu_);
    if (!watch_) return;
    stalls = watch_->stalls(Clock::now());
    period = watch_->period();
  }
  out.family(kStageStalled);
  int wedged = 0;
  for (const auto& s : stalls) {
    out.sample(kStageStalled,
               {{"pipeline", pipeline}, {"stage", s.stage}, {"instance", std::to_string(s.instance)}},
               std::chrono::duration<double>(s.stalled).count());
    if (s.stalled.count() > 0 && s.stalled >= period) ++wedged;
  }
  out.sample(kWedgedStages, {{"pipeline", pipeline}}, wedged);
}

}  // namespace etld
