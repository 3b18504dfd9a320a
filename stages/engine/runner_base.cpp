// Runner, whatever the role: a stage instance's start, its reconfiguration (adopt) and failures
// (the restart policy, teardown, replaying what arrived meanwhile), and its stats.
#include "stages/engine/runner_base.hpp"

#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "stages/engine/loggers.hpp"
#include "stages/engine/pipeline_impl.hpp"

namespace etld {

namespace {

// What failed, and whether no restart can fix it (FatalStageError): one look at the exception.
struct Failure {
  std::string what;
  bool fatal = false;
};

Failure classify(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const FatalStageError& e) {
    return {e.what(), true};
  } catch (const std::exception& e) {
    return {e.what(), false};
  } catch (...) {
    return {"unknown exception", false};
  }
}

}  // namespace

Runner::Runner(Pipeline::Impl& pipeline, StageGroup& group, int instance)
    : pipeline_(pipeline),
      group_(group),
      instance_(instance),
      strand_(asio::make_strand(pipeline.pool_.get_executor())),
      name_(group.config->name),
      config_(group.config),
      type_(group.type),
      factory_(group.factory),
      offset_store_(group.offset_store),
      metrics_(*pipeline.metrics_, pipeline.config_->name, name_, instance),
      tap_(*group.tap),
      restart_timer_(strand_) {
  auto label = group.config->concurrency > 1 ? name_ + "#" + std::to_string(instance) : name_;
  log_ = make_stage_logger(label);
}

ReadinessProbe Runner::readiness_probe(std::string what) {
  return pipeline_.readiness_.probe(std::move(what));
}

void Runner::start() {
  post([this] {
    if (!create_stage()) return;
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      auto n = inputs_[i].credit.grant_initial();
      ask_upstream(i, n);
    }
  });
}

StageStats Runner::stats() const {
  StageStats s;
  s.name = name_;
  s.instance = instance_;
  s.events_in = events_in_;
  s.events_out = events_out_;
  s.batches_in = batches_in_;
  s.restarts = restarts_total_;
  s.failed = events_failed_;
  s.buffered = buffered_;
  s.outstanding_demand = stats_outstanding_;
  s.pending = inbox_ + sink_held_;
  s.progress = progress_;
  s.acked = events_acked_;
  s.dead_lettered = events_dead_lettered_;
  s.processing_seconds = processing_seconds_.snapshot();
  return s;
}

void Runner::adopt(const StageConfig* config, const StageType* type, std::shared_ptr<StageFactory> factory,
                   std::shared_ptr<OffsetStore> offset_store, bool rebuild) {
  config_ = config;
  if (!rebuild) return;
  type_ = type;
  factory_ = std::move(factory);
  offset_store_ = std::move(offset_store);
  if (restarting_) {  // a restart pending from a failure: the rebuild below replaces it
    restart_timer_.cancel();
    restarting_ = false;
  }
  teardown();  // a sink that did not drain in time releases the credit of what it held
  replacing_ = retired_ = false;
  restart_history_ = {};
  create_stage();
  replay_held();
}

void Runner::handle_failure(std::exception_ptr error) {
  const auto& cfg = config();
  if (restarting_) return;  // already being replaced
  auto [what, fatal] = classify(error);
  auto decision = decide_restart(cfg, restart_history_, fatal, std::chrono::steady_clock::now());
  if (decision.give_up) {
    log_->error("stage failed: {}", what);
    pipeline_.fail("stage '" + name_ + "' failed" + decision.why + ": " + what);
    return;
  }
  auto backoff = decision.backoff;
  ++restarts_total_;
  log_->warn("stage failed, restarting in {}ms (restart {} of {}): {}", backoff.count(),
             restart_history_.restarts_in_window, cfg.max_restarts, what);
  restarting_ = true;
  // Defer the teardown: we may be inside a method of the stage being destroyed.
  post([this] { teardown(); });
  restart_timer_.expires_after(backoff);
  restart_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    restart();
  });
}

void Runner::restart() {
  restarting_ = false;
  if (!create_stage()) return;
  replay_held();
  restarted();
}

void Runner::replay_held() {
  while (!held_.empty() && !restarting_) {
    auto [input, batch] = std::move(held_.front());
    held_.pop_front();
    if (batch)
      deliver(input, std::move(*batch));
    else
      handle_eos(input);
  }
}

}  // namespace etld
