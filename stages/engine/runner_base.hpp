// Runner: one stage instance on its strand, whatever its role: the consumer side (subscriptions
// with credits), the producer side (dispatcher), failures and the restart policy,
// reconfiguration (retire, adopt) and stats. One class per role adds the stage itself and is the
// context the stage is handed: SourceRunner (source_runner.hpp), TransformRunner
// (transform_runner.hpp), SinkRunner (sink_runner.hpp).
// Threading: a runner's methods run on its strand unless noted.
#pragma once

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "stages/engine/credit.hpp"
#include "stages/engine/dispatcher.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/restart_policy.hpp"

namespace etld {

namespace asio = boost::asio;
using Strand = asio::strand<asio::thread_pool::executor_type>;

struct StageGroup;
class TapPoint;

class Runner {
 public:
  Runner(Pipeline::Impl& pipeline, StageGroup& group, int instance);
  virtual ~Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Role role() const { return type_->role; }
  const StageConfig& config() const { return *config_; }

  template <class F>
  void run_on_strand(F&& f) {
    post(std::forward<F>(f));
  }

  struct Input {
    Runner* producer;
    SubscriberId id;  // how the producer knows us
    Credit credit;
    bool eos = false;
    std::size_t pending_ask = 0;
  };
  struct Output {
    Runner* consumer;
    std::size_t input_index;
  };

  std::size_t add_input(Runner* producer, SubscriberId id);
  void set_outputs(std::vector<std::vector<Output>> outputs, std::size_t buffer_bound);

  // Posted onto the strand: makes and starts the stage, then grants each input its credit.
  void start();

  // --- messages from other runners ---
  void on_ask(SubscriberId id, std::size_t n);
  void on_events(std::size_t input, Batch&& batch);
  void on_eos(std::size_t input);
  StageStats stats() const;  // any thread

  // --- reconfiguration; each runs on the strand (Pipeline::Impl::reconfigure posts them) ---
  bool ended() const { return ended_; }
  // Nothing handed to this instance is unfinished and nothing waits in its dispatcher.
  bool quiet() const { return inbox_ == 0 && sink_held_ == 0 && buffered_ == 0; }
  bool retired() const { return retired_; }

  // Ends the instance before it is rebuilt: a transform emits what it holds back, a sink flushes
  // and settles everything (retired() once it has), a source stops and commits.
  void retire() {
    replacing_ = true;
    retire_stage();
  }

  // Takes the new configuration; with `rebuild`, replaces the stage with one from `factory`,
  // bound to `offset_store` (sources).
  void adopt(const StageConfig* config, const StageType* type, std::shared_ptr<StageFactory> factory,
             std::shared_ptr<OffsetStore> offset_store, bool rebuild);

 protected:
  // --- what each role does with its stage ---
  // Makes the stage from factory_ and starts it; false when that threw (then handle_failure ran).
  virtual bool create_stage() = 0;
  // Destroys the stage (failed, or being rebuilt) and releases the credit of what it held.
  virtual void teardown() = 0;
  virtual void retire_stage() = 0;
  // A batch from inputs_[input], counted in inbox_ until the stage has taken it or handed it on.
  // Roles with inputs only.
  virtual void deliver(std::size_t input, Batch&& batch) {
    (void)input;
    (void)batch;
  }
  // Every input has ended. Roles with inputs only.
  virtual void end_of_input() {}
  // Consumers asked for more. Roles with outputs only.
  virtual void demand_grew() {}
  // What the stage itself holds for downstream besides the dispatcher's buffer.
  virtual std::size_t held_by_stage() const { return 0; }
  // The stage was made again after a failure and what arrived meanwhile was replayed.
  virtual void restarted() {}

  template <class F>
  void post(F&& f) {
    asio::post(strand_, std::forward<F>(f));
  }

  // Runs stage code; an exception goes to the restart policy.
  template <class F>
  bool guard(F&& f) {
    try {
      f();
      return true;
    } catch (...) {
      handle_failure(std::current_exception());
      return false;
    }
  }

  void handle_failure(std::exception_ptr error);
  void ask_upstream(std::size_t input, std::size_t n);
  // What this instance holds for downstream: its dispatcher's buffer and what its stage holds.
  void note_buffered();
  // No more output: end of stream goes downstream once the dispatcher's buffer is empty.
  void finish_output();
  void maybe_send_eos();
  void observe_since(std::chrono::steady_clock::time_point t0);
  // A probe of the running pipeline's readiness (RunnerOf::readiness; Impl is incomplete here).
  ReadinessProbe readiness_probe(std::string what);

  Pipeline::Impl& pipeline_;
  StageGroup& group_;
  const int instance_;
  Strand strand_;
  const std::string name_;
  // The stage's configuration, type and factory: replaced on the strand by adopt().
  const StageConfig* config_;
  const StageType* type_;
  std::shared_ptr<StageFactory> factory_;
  std::shared_ptr<OffsetStore> offset_store_;  // sources: see StageGroup::offset_store
  std::shared_ptr<spdlog::logger> log_;
  metrics::MetricsScope metrics_;
  TapPoint& tap_;  // its stage's: offer() what leaves the instance (tap.hpp)

  std::vector<Input> inputs_;
  std::vector<std::vector<Output>> outputs_;
  std::unique_ptr<Dispatcher> dispatcher_;  // null without outputs (sinks)
  std::size_t buffer_bound_ = 0;
  bool output_done_ = false;
  bool restarting_ = false;  // failed; a new stage is made when restart_timer_ fires
  bool replacing_ = false;   // retired for a rebuild: its end is no end of stream

  // Written on the strand, read by stats() from any thread: relaxed atomics.
  std::atomic<std::uint64_t> events_in_{0}, events_out_{0}, batches_in_{0}, restarts_total_{0},
      events_failed_{0};
  std::atomic<std::uint64_t> buffered_{0}, stats_outstanding_{0};
  // Read across runners by quiet() and the progress check: sequentially consistent, so that a
  // batch moving downstream is counted by its consumer before its producer lets go of it.
  std::atomic<std::uint64_t> inbox_{0};      // events posted to this instance, not yet handed on
  std::atomic<std::uint64_t> sink_held_{0};  // sink: events consumed, not yet done
  std::atomic<std::uint64_t> progress_{0};
  std::atomic<bool> ended_{false};  // end of stream sent or received: no live reconfiguration
  std::atomic<bool> retired_{false};
  std::atomic<std::uint64_t> events_acked_{0}, events_dead_lettered_{0};
  metrics::Histogram processing_seconds_{metrics::latency_buckets()};

 private:
  void send_to(SubscriberId id, Batch&& batch);
  void handle_eos(std::size_t input);
  void restart();
  // What arrived while the stage was down, in order, until it fails again.
  void replay_held();

  asio::steady_timer restart_timer_;
  bool eos_sent_ = false;
  std::deque<std::pair<std::size_t, std::optional<Batch>>> held_;  // arrivals while restarting
  RestartHistory restart_history_;
};

// What every context answers the same way, from the runner: a role's runner derives from
// RunnerOf<its context> and is the context its stage is handed.
template <class Context>
class RunnerOf : public Runner, protected Context {
 public:
  using Runner::Runner;

 protected:
  const std::string& stage_name() const override { return name_; }
  int instance() const override { return instance_; }
  asio::any_io_executor executor() const override { return strand_; }
  spdlog::logger& log() const override { return *log_; }
  const metrics::MetricsScope& metrics() const override { return metrics_; }
  ReadinessProbe readiness(std::string what) override { return readiness_probe(std::move(what)); }
  void fail(std::exception_ptr e) override { handle_failure(e); }
};

}  // namespace etld
