// Runner, whatever the role: how events move through a stage instance: credits granted upstream,
// batches arriving (held while the stage restarts), demand from downstream, the dispatcher's
// output, and end of stream. What the stage does with a batch is its role's (source_runner.cpp,
// transform_runner.cpp, sink_runner.cpp).
#include <algorithm>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "stages/engine/pipeline_impl.hpp"
#include "stages/engine/runner_base.hpp"

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
  demand_grew();
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

void Runner::note_buffered() { buffered_ = (dispatcher_ ? dispatcher_->buffered() : 0) + held_by_stage(); }

void Runner::handle_eos(std::size_t input) {
  inputs_[input].eos = true;
  ended_ = true;
  for (const auto& in : inputs_)
    if (!in.eos) return;
  end_of_input();
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

}  // namespace etld
