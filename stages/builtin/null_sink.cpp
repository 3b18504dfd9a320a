// null: a sink that discards events, settling each as done. With `delay` or `rate` it is a slow
// consumer for backpressure tests and benchmarks: a batch's done() waits for an asio timer.
// Threading: one instance per strand; timer callbacks run on ctx.executor().

#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

struct NullSettings {
  std::chrono::milliseconds delay{};  // the option's default is its spec's
  std::optional<double> rate;         // events per second
};

class NullSink : public Sink {
 public:
  explicit NullSink(NullSettings s) : s_(s) {}

  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    timer_.emplace(ctx.executor());
  }

  void consume(Batch&& batch) override {
    received_ += batch.size();
    if (s_.delay.count() == 0 && !s_.rate) {
      settle_all(batch, AckStatus::done);
      ctx_->done(batch.size());
      return;
    }
    pending_.push_back(std::move(batch));
    if (!waiting_) {
      // Idle until now: the schedule restarts here (idle time earns no burst).
      auto now = std::chrono::steady_clock::now();
      if (next_due_ < now) next_due_ = now;
      wait_for_front();
    }
  }

  void drain() override {
    if (pending_.empty()) return finish_drain();
    drain_requested_ = true;
  }

 private:
  // The front batch completes `delay` plus its size at `rate` after the previous one was due, not
  // after its timer fired: a timer that fires late (a busy machine) is caught up on the next
  // batches instead of lowering the rate.
  void wait_for_front() {
    std::chrono::duration<double> cost = s_.delay;
    if (s_.rate)
      cost += std::chrono::duration<double>(static_cast<double>(pending_.front().size()) / *s_.rate);
    next_due_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(cost);
    waiting_ = true;
    timer_->start_at(next_due_, [this] {
      waiting_ = false;
      Batch batch = std::move(pending_.front());
      pending_.pop_front();
      settle_all(batch, AckStatus::done);
      ctx_->done(batch.size());
      if (!pending_.empty()) return wait_for_front();
      if (drain_requested_) finish_drain();
    });
  }

  void finish_drain() {
    drain_requested_ = false;
    ctx_->log().debug("discarded {} events", received_);
    ctx_->drained();
  }

  NullSettings s_;
  SinkContext* ctx_ = nullptr;
  std::optional<StrandTimer> timer_;  // its callback never runs once the sink is gone
  std::deque<Batch> pending_;         // received, waiting for their delay; bounded by upstream credits
  std::chrono::steady_clock::time_point next_due_{};
  std::uint64_t received_ = 0;
  bool waiting_ = false, drain_requested_ = false;
};

class NullFactory : public StageFactory {
 public:
  explicit NullFactory(NullSettings s) : s_(s) {}
  std::unique_ptr<Sink> make_sink(int) override { return std::make_unique<NullSink>(s_); }

 private:
  NullSettings s_;
};

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig&) {
  const Options& o = cfg.options;
  NullSettings s;
  s.delay = o.get_duration("delay");
  if (s.delay.count() < 0) throw ConfigError(o.mark("delay"), "delay must not be negative");
  if (o.has("rate")) {
    auto rate = o.get_number("rate");
    if (!(rate > 0) || !std::isfinite(rate))
      throw ConfigError(o.mark("rate"), "rate must be a positive number of events per second");
    s.rate = rate;
  }
  return std::make_unique<NullFactory>(s);
}

const StageRegistration reg{StageType{
    "null",
    Role::sink,
    "Discards events (settling them as done); optionally slow, to test backpressure",
    {
        {"delay",
         OptionKind::duration,
         "Artificial processing time per batch before it counts as done: a slow consumer.",
         false,
         "0",
         {}},
        {"rate",
         OptionKind::number,
         "Most events per second this instance handles, paced by a timer; omit for no limit.",
         false,
         "",
         {}},
    },
    configure,
    nullptr,  // check_live: nothing external to check
}};

}  // namespace
}  // namespace etld
