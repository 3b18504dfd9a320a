// Runner: how events move through a stage instance: credits granted upstream, batches delivered
// to the stage, its output dispatched downstream, end of stream, and a sink's settled events.
#include "stages/engine/runner.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace etld {

std::size_t Runner::add_input(Runner* producer, SubscriberId id) {
  inputs_.push_back(Input{producer, id, Credit(config().max_demand, config().min_demand)});
  return inputs_.size() - 1;
}

void Runner::set_outputs(std::vector<std::vector<Output>> outputs, std::size_t buffer_bound) {
  outputs_ = std::move(outputs);
  buffer_bound_ = buffer_bound;
  auto send = [this](SubscriberId id, Batch&& batch) { send_to(id, std::move(batch)); };
  if (outputs_.empty()) return;
  std::vector<std::unique_ptr<Dispatcher>> children;
  std::vector<SubscriberId> all;
  for (std::size_t g = 0; g < outputs_.size(); ++g) {
    const auto* consumer_group = group_.consumers[g];
    int n = static_cast<int>(outputs_[g].size());
    for (int i = 0; i < n; ++i) all.push_back({static_cast<int>(g), i});
    if (consumer_group->config->partition_hash) {
      children.push_back(
          make_partition_dispatcher(static_cast<int>(g), n, consumer_group->config->partition_hash, send));
    } else {
      children.push_back(make_demand_dispatcher(static_cast<int>(g), n, send));
    }
  }
  if (config().dispatch == DispatchMode::demand && outputs_.size() > 1)
    dispatcher_ = make_demand_dispatcher(std::move(all), send);
  else
    dispatcher_ = make_broadcast_dispatcher(std::move(children));
}

void Runner::on_ask(SubscriberId id, std::size_t n) {
  stats_outstanding_ += n;
  dispatcher_->ask(id, n);
  note_buffered();
  maybe_send_eos();
  if (role() == Role::source) {
    if (source_ && !restarting_ && !output_done_ && !stopping_ && !paused_ && dispatcher_->demand() > 0)
      guard([&] { source_->on_demand(); });
  } else {
    pump();
  }
}

void Runner::on_events(std::size_t input, Batch&& batch) {
  auto n = batch.size();
  events_in_ += n;
  ++batches_in_;
  try {
    inputs_[input].credit.on_received(n);
  } catch (const std::exception& e) {
    inbox_ -= n;
    pipeline_.fail("stage '" + name_ + "': " + e.what());
    return;
  }
  if (restarting_) {
    held_.emplace_back(input, std::move(batch));
    return;
  }
  deliver(input, std::move(batch));
}

void Runner::on_eos(std::size_t input) {
  if (restarting_) {
    held_.emplace_back(input, std::nullopt);
    return;
  }
  handle_eos(input);
}

void Runner::ask_upstream(std::size_t input, std::size_t n) {
  auto& in = inputs_[input];
  if (n == 0 || in.eos) return;
  asio::post(in.producer->strand_, [p = in.producer, id = in.id, n] { p->on_ask(id, n); });
}

void Runner::send_to(SubscriberId id, Batch&& batch) {
  auto& out = outputs_[static_cast<std::size_t>(id.group)][static_cast<std::size_t>(id.index)];
  events_out_ += batch.size();
  stats_outstanding_ -= std::min<std::size_t>(stats_outstanding_, batch.size());
  out.consumer->inbox_ += batch.size();  // before the post: the batch is never uncounted
  asio::post(out.consumer->strand_, [c = out.consumer, idx = out.input_index,
                                     b = std::move(batch)]() mutable { c->on_events(idx, std::move(b)); });
}

void Runner::emit(Batch&& events) {
  auto demand = stopping_ || output_done_ ? 0 : dispatcher_->demand();
  if (events.empty()) return;
  if (events.size() > demand) {
    // A bug in the source. Its events still go out (the dispatcher buffers the excess), so
    // nothing is lost, but the pipeline stops: its memory bound no longer holds.
    pipeline_.fail("demand violated: source '" + name_ + "' emitted " + std::to_string(events.size()) +
                   " events with a demand of " + std::to_string(demand));
  }
  dispatcher_->dispatch(std::move(events));
  buffered_ = dispatcher_->buffered();
}

void Runner::deliver(std::size_t input, Batch&& batch) {
  auto n = batch.size();
  if (role() == Role::sink) {
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
    return;
  }
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

void Runner::pass_rejected(Batch& in, Batch& out) {
  auto first = std::find_if(in.begin(), in.end(), [](const Event& e) { return e.rejected(); });
  if (first == in.end()) return;
  auto keep = std::stable_partition(first, in.end(), [](const Event& e) { return !e.rejected(); });
  for (auto it = keep; it != in.end(); ++it) out.push_back(std::move(*it));
  in.erase(keep, in.end());
}

std::size_t Runner::settle_rejected(std::size_t input, Batch& batch) {
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

void Runner::dispatch_output(Batch&& out) {
  if (outputs_.empty()) {  // a dead end: nothing downstream wants these
    settle_all(out, AckStatus::done);
    return;
  }
  if (!out.empty()) dispatcher_->dispatch(std::move(out));
  note_buffered();
}

void Runner::note_buffered() {
  buffered_ = (dispatcher_ ? dispatcher_->buffered() : 0) + (transform_ ? transform_->held() : 0);
}

void Runner::pump() {
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

void Runner::release_held() {
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

void Runner::grant_upstream_if_room() {
  if (dispatcher_ && dispatcher_->buffered() >= buffer_bound_) return;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    auto n = std::exchange(inputs_[i].pending_ask, 0);
    ask_upstream(i, n);
  }
  note_buffered();
}

void Runner::handle_eos(std::size_t input) {
  inputs_[input].eos = true;
  ended_ = true;
  for (const auto& in : inputs_)
    if (!in.eos) return;
  if (role() == Role::sink) {
    guard([&] { sink_->drain(); });
    return;
  }
  if (transform_ && transform_->held() > 0) {
    end_deferred_ = true;  // pump() ends it once everything held is handed on
    return;
  }
  end_transform();
}

void Runner::end_transform() {
  Batch out;
  if (guard([&] { transform_->finish(out); })) dispatch_output(std::move(out));
  finish_output();
}

void Runner::source_finished() {
  if (source_ended_ || output_done_) return;  // finish() is idempotent for every source
  source_ended_ = true;
  if (replacing_) return;  // stopped for a reconfiguration: no end of stream downstream
  if (config().restart == RestartPolicy::permanent && !stopping_) {
    handle_failure(std::make_exception_ptr(std::runtime_error("source ended (restart: permanent)")));
    return;
  }
  finish_output();
}

void Runner::finish_output() {
  output_done_ = true;
  ended_ = true;
  maybe_send_eos();
}

void Runner::maybe_send_eos() {
  if (!output_done_ || eos_sent_ || (dispatcher_ && dispatcher_->buffered() > 0)) return;
  eos_sent_ = true;
  for (auto& group : outputs_)
    for (auto& out : group)
      asio::post(out.consumer->strand_, [c = out.consumer, idx = out.input_index] { c->on_eos(idx); });
}

void Runner::observe_since(std::chrono::steady_clock::time_point t0) {
  processing_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void Runner::sink_done(std::size_t n) {
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

void Runner::sink_drained() {
  if (replacing_) {
    retired_ = true;
    return;
  }
  if (drained_) return;
  drained_ = true;
  pipeline_.sink_drained();
}

}  // namespace etld
