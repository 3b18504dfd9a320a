#include "stages/engine/source_runner.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "stages/engine/pipeline_impl.hpp"

namespace etld {

void SourceRunner::stop() {
  post([this] {
    if (stopping_) return;
    stopping_ = true;
    if (restarting_ || !source_ || source_ended_) {
      finish_output();
      return;
    }
    guard([&] { source_->stop(); });
  });
}

void SourceRunner::close() {
  post([this] {
    if (source_) guard([&] { source_->close(); });
    pipeline_.source_closed();
  });
}

void SourceRunner::set_paused(bool paused) {
  paused_ = paused;
  demand_grew();  // resumed: what its consumers asked for meanwhile
}

void SourceRunner::demand_grew() {
  if (source_ && !restarting_ && !output_done_ && !stopping_ && !paused_ && dispatcher_->demand() > 0)
    guard([&] { source_->on_demand(); });
}

void SourceRunner::emit(Batch&& events) {
  auto demand = stopping_ || output_done_ ? 0 : dispatcher_->demand();
  if (events.empty()) return;
  if (events.size() > demand) {
    // A bug in the source. Its events still go out (the dispatcher buffers the excess), so
    // nothing is lost, but the pipeline stops: its memory bound no longer holds.
    pipeline_.fail("demand violated: source '" + name_ + "' emitted " + std::to_string(events.size()) +
                   " events with a demand of " + std::to_string(demand));
  }
  tap_.offer(instance_, events);
  dispatcher_->dispatch(std::move(events));
  buffered_ = dispatcher_->buffered();
}

std::size_t SourceRunner::demand() const {
  return stopping_ || output_done_ || paused_ ? 0 : dispatcher_->demand();
}

void SourceRunner::finish() {
  if (source_ended_ || output_done_) return;  // finish() is idempotent for every source
  source_ended_ = true;
  if (replacing_) return;  // stopped for a reconfiguration: no end of stream downstream
  if (config().restart == RestartPolicy::permanent && !stopping_) {
    handle_failure(std::make_exception_ptr(std::runtime_error("source ended (restart: permanent)")));
    return;
  }
  finish_output();
}

bool SourceRunner::create_stage() {
  return guard([&] {
    source_ended_ = false;
    source_ = factory_->make_source(instance_);
    source_->start(*this);
    if (stopping_)
      source_->stop();
    else if (dispatcher_->demand() > 0)
      source_->on_demand();
  });
}

void SourceRunner::retire_stage() {
  if (source_ && !restarting_) {
    guard([&] { source_->stop(); });
    if (source_) guard([&] { source_->close(); });
  }
  retired_ = true;
}

}  // namespace etld
