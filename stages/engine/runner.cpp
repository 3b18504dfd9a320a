// Runner: a stage instance's lifecycle (start, stop, close), its reconfiguration (retire, adopt)
// and failures (the restart policy, teardown, replaying what arrived meanwhile).
#include "stages/engine/runner.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "stages/engine/loggers.hpp"

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
      restart_timer_(strand_),
      name_(group.config->name),
      config_(group.config),
      type_(group.type),
      factory_(group.factory),
      offset_store_(group.offset_store),
      metrics_(*pipeline.metrics_, pipeline.config_->name, name_, instance) {
  auto label = group.config->concurrency > 1 ? name_ + "#" + std::to_string(instance) : name_;
  log_ = make_stage_logger(label);
  source_ctx_.r = this;
  sink_ctx_.r = this;
  transform_ctx_.r = this;
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

void Runner::stop() {
  post([this] {
    if (role() != Role::source || stopping_) return;
    stopping_ = true;
    if (restarting_ || !source_ || source_ended_) {
      finish_output();
      return;
    }
    guard([&] { source_->stop(); });
  });
}

void Runner::close() {
  post([this] {
    if (source_) guard([&] { source_->close(); });
    pipeline_.source_closed();
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

void Runner::set_paused(bool paused) {
  paused_ = paused;
  if (!paused && role() == Role::source && source_ && !restarting_ && !output_done_ && !stopping_ &&
      dispatcher_->demand() > 0)
    guard([&] { source_->on_demand(); });
}

void Runner::retire() {
  replacing_ = true;
  switch (role()) {
    case Role::source:
      if (source_ && !restarting_) {
        guard([&] { source_->stop(); });
        if (source_) guard([&] { source_->close(); });
      }
      retired_ = true;
      break;
    case Role::transform: {
      Batch out;
      if (transform_ && !restarting_ && guard([&] { transform_->finish(out); }))
        dispatch_output(std::move(out));
      retired_ = true;
      break;
    }
    case Role::sink:
      if (sink_ && !restarting_)
        guard([&] { sink_->drain(); });
      else
        retired_ = true;
      break;
  }
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
  source_ended_ = false;
  restart_history_ = {};
  create_stage();
  replay_held();
}

bool Runner::create_stage() {
  return guard([&] {
    switch (role()) {
      case Role::source:
        source_ended_ = false;
        source_ = factory_->make_source(instance_);
        source_->start(source_ctx_);
        if (stopping_)
          source_->stop();
        else if (dispatcher_->demand() > 0)
          source_->on_demand();
        break;
      case Role::transform:
        transform_ = factory_->make_transform(instance_);
        transform_->start(transform_ctx_);
        break;
      case Role::sink:
        sink_ = factory_->make_sink(instance_);
        sink_->start(sink_ctx_);
        break;
    }
  });
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

void Runner::teardown() {
  if (role() == Role::sink) {
    // What the old instance held is gone (its acks settled failed): release its credit.
    std::size_t held = 0;
    for (auto& [input, count] : arrivals_) held += count;
    sink_.reset();
    events_failed_ += held;
    if (held > 0) log_->error("{} events held by the sink were not written (settled as failed)", held);
    sink_done(held);
  }
  if (transform_ && transform_->held() > 0)
    log_->error("{} events held by the transform were not handed on (their inputs settle as failed)",
                transform_->held());
  transform_.reset();
  source_.reset();
}

void Runner::restart() {
  restarting_ = false;
  if (!create_stage()) return;
  replay_held();
  if (role() == Role::transform && !restarting_) pump();  // credit withheld while the old one held events
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
