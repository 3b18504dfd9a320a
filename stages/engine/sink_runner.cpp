#include "stages/engine/sink_runner.hpp"

#include <algorithm>
#include <utility>

#include "stages/engine/pipeline_impl.hpp"

namespace etld {

void SinkRunner::done(std::size_t n) {
  events_acked_ += n;
  release(n);
}

void SinkRunner::drained() {
  if (replacing_) {
    retired_ = true;
    return;
  }
  if (drained_) return;
  drained_ = true;
  pipeline_.sink_drained();
}

bool SinkRunner::create_stage() {
  return guard([&] {
    sink_ = factory_->make_sink(instance_);
    sink_->start(*this);
  });
}

void SinkRunner::teardown() {
  std::size_t held = 0;
  for (auto& [input, count] : arrivals_) held += count;
  sink_.reset();
  events_failed_ += held;
  if (held > 0) log_->error("{} events held by the sink were not written (settled as failed)", held);
  release(held);
}

void SinkRunner::retire_stage() {
  if (sink_ && !restarting_)
    guard([&] { sink_->drain(); });
  else
    retired_ = true;
}

void SinkRunner::deliver(std::size_t input, Batch&& batch) {
  auto n = batch.size();
  tap_.offer(instance_, batch);  // what reaches the sink, rejected events too
  auto rejected = type_->takes_rejected ? 0 : settle_rejected(input, batch);
  auto kept = n - rejected;
  progress_ += rejected;
  if (kept > 0) {
    arrivals_.emplace_back(input, kept);
    sink_held_ += kept;
  }
  inbox_ -= n;
  if (kept > 0) {
    auto t0 = std::chrono::steady_clock::now();
    guard([&] { sink_->consume(std::move(batch)); });
    observe_since(t0);
  }
}

void SinkRunner::end_of_input() {
  guard([&] { sink_->drain(); });
}

std::size_t SinkRunner::settle_rejected(std::size_t input, Batch& batch) {
  auto keep = std::stable_partition(batch.begin(), batch.end(), [](const Event& e) { return !e.rejected(); });
  std::size_t k = static_cast<std::size_t>(batch.end() - keep);
  if (k == 0) return 0;
  AckBatch acks;
  for (auto it = keep; it != batch.end(); ++it) acks.add(it->ack);
  acks.settle(AckStatus::dead_lettered);
  events_dead_lettered_ += k;
  batch.erase(keep, batch.end());
  ask_upstream(input, inputs_[input].credit.on_processed(k));
  return k;
}

void SinkRunner::release(std::size_t n) {
  while (n > 0 && !arrivals_.empty()) {
    auto& [input, count] = arrivals_.front();
    auto k = std::min(n, count);
    count -= k;
    n -= k;
    sink_held_ -= k;
    progress_ += k;
    ask_upstream(input, inputs_[input].credit.on_processed(k));
    if (count == 0) arrivals_.pop_front();
  }
}

}  // namespace etld
