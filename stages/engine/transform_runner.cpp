#include "stages/engine/transform_runner.hpp"

#include <algorithm>
#include <utility>

#include "stages/engine/tap.hpp"

namespace etld {

bool TransformRunner::create_stage() {
  return guard([&] {
    transform_ = factory_->make_transform(instance_);
    transform_->start(*this);
  });
}

void TransformRunner::teardown() {
  if (transform_ && transform_->held() > 0)
    log_->error("{} events held by the transform were not handed on (their inputs settle as failed)",
                transform_->held());
  transform_.reset();
}

void TransformRunner::retire_stage() {
  Batch out;
  if (transform_ && !restarting_ && guard([&] { transform_->finish(out); })) dispatch_output(std::move(out));
  retired_ = true;
}

void TransformRunner::restarted() {
  if (!restarting_) pump();
}

void TransformRunner::deliver(std::size_t input, Batch&& batch) {
  auto n = batch.size();
  Batch out;
  out.reserve(n);
  pass_rejected(batch, out);
  auto passed_rejected = out.size();
  auto t0 = std::chrono::steady_clock::now();
  bool ok = guard([&] { transform_->process(batch, out); });
  observe_since(t0);
  if (ok) {
    if (out.size() > passed_rejected) {
      auto rejected = std::count_if(out.begin(), out.end(), [](const Event& e) { return e.rejected(); });
      events_dead_lettered_ += static_cast<std::size_t>(rejected) - passed_rejected;
    }
    dispatch_output(std::move(out));
  } else {
    // The batch's events are dropped unsettled: their acks settle `failed`, so their source
    // never commits past them, and the pipeline reports them when it ends.
    std::size_t lost = 0;
    for (auto& e : batch) lost += e.ack.pending() ? 1 : 0;
    for (auto& e : out) lost += e.ack.pending() ? 1 : 0;
    events_failed_ += lost;
    log_->error("{} events of the failed batch were not processed (settled as failed)", lost);
  }
  inputs_[input].pending_ask += inputs_[input].credit.on_processed(n);
  pump();
  inbox_ -= n;
  progress_ += n;
}

void TransformRunner::pass_rejected(Batch& in, Batch& out) {
  auto first = std::find_if(in.begin(), in.end(), [](const Event& e) { return e.rejected(); });
  if (first == in.end()) return;
  auto keep = std::stable_partition(first, in.end(), [](const Event& e) { return !e.rejected(); });
  for (auto it = keep; it != in.end(); ++it) out.push_back(std::move(*it));
  in.erase(keep, in.end());
}

void TransformRunner::dispatch_output(Batch&& out) {
  if (outputs_.empty()) {  // a dead end: nothing downstream wants these
    settle_all(out, AckStatus::done);
    return;
  }
  if (!out.empty()) {
    tap_.offer(instance_, out);
    dispatcher_->dispatch(std::move(out));
  }
  note_buffered();
}

void TransformRunner::pump() {
  if (!restarting_ && transform_ && transform_->held() > 0) {
    release_held();
    if (restarting_ || (transform_ && transform_->held() > 0)) {
      note_buffered();
      return;
    }
  }
  grant_upstream_if_room();
  if (end_deferred_ && !restarting_ && transform_) {
    end_deferred_ = false;
    end_transform();
  }
}

void TransformRunner::release_held() {
  while (transform_ && transform_->held() > 0) {
    auto room = outputs_.empty() ? buffer_bound_ : dispatcher_->demand();  // a dead end takes all
    if (room == 0) return;
    Batch out;
    if (!guard([&] { transform_->resume(out, room); }) || out.empty()) return;
    events_dead_lettered_ += static_cast<std::size_t>(
        std::count_if(out.begin(), out.end(), [](const Event& e) { return e.rejected(); }));
    dispatch_output(std::move(out));
  }
}

void TransformRunner::grant_upstream_if_room() {
  if (dispatcher_ && dispatcher_->buffered() >= buffer_bound_) return;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    auto n = std::exchange(inputs_[i].pending_ask, 0);
    ask_upstream(i, n);
  }
  note_buffered();
}

void TransformRunner::end_of_input() {
  if (transform_ && transform_->held() > 0) {
    end_deferred_ = true;  // pump() ends it once everything held is handed on
    return;
  }
  end_transform();
}

void TransformRunner::end_transform() {
  Batch out;
  if (guard([&] { transform_->finish(out); })) dispatch_output(std::move(out));
  finish_output();
}

}  // namespace etld
