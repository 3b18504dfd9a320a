// The running pipeline's internals, shared by stages/engine/*.cpp only: StageGroup (the instances
// of one configured stage), Pipeline::Impl (the graph, its lifecycle and reconfiguration) and
// Runner (one stage instance on its strand: the consumer side (subscriptions with credits) and
// the producer side (dispatcher) of whatever role the stage has).
// Threading: a Runner's methods run on its strand unless noted; Impl's are thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

class Runner;

// The stage's settings as reconfigure() compares them (stages/engine/reconfigure.cpp).
std::string canonical(const YAML::Node& node);

// All instances of one configured stage.
struct StageGroup {
  const StageConfig* config = nullptr;
  const StageType* type = nullptr;
  std::shared_ptr<StageFactory> factory;
  // Sources: the offset store of the sink they feed, when it keeps their positions (bound by
  // bind_offset_stores when the graph is built or reconfigured).
  std::shared_ptr<OffsetStore> offset_store;
  std::vector<std::unique_ptr<Runner>> instances;
  std::vector<StageGroup*> consumers;  // downstream stages, in file order
  std::string settings;                // canonical(config->node), ${...} expanded when built
};

class Pipeline::Impl {
 public:
  Impl(std::shared_ptr<const PipelineConfig> config, std::shared_ptr<metrics::Registry> metrics);
  ~Impl();
  void start();
  void stop();
  void fail(const std::string& error);
  void sink_drained();
  void source_closed();
  Reconfiguration reconfigure(std::shared_ptr<const PipelineConfig> next, std::chrono::milliseconds timeout);
  bool wait_quiet(std::chrono::steady_clock::time_point deadline) const;
  bool quiet() const;
  std::vector<Runner*> runners() const;
  // The source groups feeding each sink whose factory (factories[i] for groups_[i]) keeps its
  // source's positions, with that store. Validation made sure each such sink has one source.
  std::map<StageGroup*, std::shared_ptr<OffsetStore>> offset_store_bindings(
      const std::vector<std::shared_ptr<StageFactory>>& factories) const;

  std::shared_ptr<const PipelineConfig> config_;  // guarded by mu_ once started
  // Configurations replaced by reconfigure(): unchanged stages' factories may still refer to them.
  std::vector<std::shared_ptr<const PipelineConfig>> retired_configs_;
  std::shared_ptr<metrics::Registry> metrics_;  // before the stages: they keep series of it
  Readiness readiness_;
  asio::thread_pool pool_;
  std::vector<std::unique_ptr<StageGroup>> groups_;
  std::vector<Runner*> sources_, sinks_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false, stopping_ = false, finished_ = false;
  // stop() during a reconfiguration waits for its end: a stage being rebuilt must not drain.
  bool reconfiguring_ = false, stop_deferred_ = false;
  std::optional<std::string> error_;
  std::size_t sinks_left_ = 0, sources_left_ = 0;
};

// One stage instance on its strand: the consumer side (subscriptions with credits) and the
// producer side (dispatcher) of whatever role the stage has.
class Runner {
 public:
  Runner(Pipeline::Impl& pipeline, StageGroup& group, int instance);

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

  // --- lifecycle, each posted onto the strand ---
  void start();
  void stop();
  void close();

  // --- messages from other runners ---
  void on_ask(SubscriberId id, std::size_t n);
  void on_events(std::size_t input, Batch&& batch);
  void on_eos(std::size_t input);
  StageStats stats() const;

  // --- reconfiguration; each runs on the strand (Pipeline::Impl::reconfigure posts them) ---
  bool ended() const { return ended_; }
  // Nothing handed to this instance is unfinished and nothing waits in its dispatcher.
  bool quiet() const { return inbox_ == 0 && sink_held_ == 0 && buffered_ == 0; }
  bool retired() const { return retired_; }

  // A paused source sees no demand, so it emits nothing until resumed.
  void set_paused(bool paused);

  // Ends the instance before it is rebuilt: a transform emits what it holds back, a sink flushes
  // and settles everything (retired() once it has), a source stops and commits.
  void retire();

  // Takes the new configuration; with `rebuild`, replaces the stage with one from `factory`,
  // bound to `offset_store` (sources).
  void adopt(const StageConfig* config, const StageType* type, std::shared_ptr<StageFactory> factory,
             std::shared_ptr<OffsetStore> offset_store, bool rebuild);

 private:
  // Contexts handed to the stage; they forward to the runner.
  template <class Base>
  struct ContextOf : Base {
    Runner* r = nullptr;
    const std::string& stage_name() const override { return r->name_; }
    int instance() const override { return r->instance_; }
    asio::any_io_executor executor() const override { return r->strand_; }
    spdlog::logger& log() const override { return *r->log_; }
    const metrics::MetricsScope& metrics() const override { return r->metrics_; }
    ReadinessProbe readiness(std::string what) override {
      return r->pipeline_.readiness_.probe(std::move(what));
    }
    void fail(std::exception_ptr e) override { r->handle_failure(e); }
  };
  struct SourceCtx : ContextOf<SourceContext> {
    void emit(Batch&& events) override { r->emit(std::move(events)); }
    std::size_t demand() const override {
      return r->stopping_ || r->output_done_ || r->paused_ ? 0 : r->dispatcher_->demand();
    }
    void finish() override { r->source_finished(); }
    std::shared_ptr<OffsetStore> offset_store() const override { return r->offset_store_; }
  };
  struct SinkCtx : ContextOf<SinkContext> {
    void done(std::size_t n) override {
      r->events_acked_ += n;
      r->sink_done(n);
    }
    void drained() override { r->sink_drained(); }
  };
  using TransformCtx = ContextOf<StageContext>;

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

  bool create_stage();
  void ask_upstream(std::size_t input, std::size_t n);
  void send_to(SubscriberId id, Batch&& batch);
  void emit(Batch&& events);

  // The batch leaves the inbox only once it is handed on (dispatched, buffered or held by the
  // sink), so that a quiet() pipeline has nothing in flight.
  void deliver(std::size_t input, Batch&& batch);

  // Rejected events pass through transforms untouched, on their way to a dead-letter destination.
  static void pass_rejected(Batch& in, Batch& out);

  // For a sink with no dead-letter destination: rejected events are settled (the rejecting stage
  // logged them) and their credit returned. Returns how many.
  std::size_t settle_rejected(std::size_t input, Batch& batch);
  void dispatch_output(Batch&& out);

  // What this instance holds for downstream: its dispatcher's buffer and a transform's held events.
  void note_buffered();

  // A transform holding events (flat_map's outputs of one input) hands on what its consumers
  // accept now; only once it holds none does it take more input and, after end of input, finish.
  void pump();
  void release_held();
  void grant_upstream_if_room();
  void handle_eos(std::size_t input);
  void end_transform();

  // A source ran out of input. Under `restart: permanent` (OTP's meaning: a child that should
  // never end), that counts as a failure and restarts it; otherwise its end of stream follows.
  void source_finished();
  void finish_output();
  void maybe_send_eos();
  void observe_since(std::chrono::steady_clock::time_point t0);
  void sink_done(std::size_t n);
  void sink_drained();
  void handle_failure(std::exception_ptr error);
  void teardown();
  void restart();

  // What arrived while the stage was down, in order, until it fails again.
  void replay_held();

  Pipeline::Impl& pipeline_;
  StageGroup& group_;
  int instance_;
  Strand strand_;
  asio::steady_timer restart_timer_;
  std::string name_;
  // The stage's configuration, type and factory: replaced on the strand by adopt().
  const StageConfig* config_;
  const StageType* type_;
  std::shared_ptr<StageFactory> factory_;
  std::shared_ptr<OffsetStore> offset_store_;  // sources: see StageGroup::offset_store
  std::shared_ptr<spdlog::logger> log_;
  metrics::MetricsScope metrics_;
  SourceCtx source_ctx_;
  SinkCtx sink_ctx_;
  TransformCtx transform_ctx_;

  std::unique_ptr<Source> source_;
  std::unique_ptr<Transform> transform_;
  std::unique_ptr<Sink> sink_;

  std::vector<Input> inputs_;
  std::deque<std::pair<std::size_t, std::size_t>> arrivals_;  // sink: (input, events) FIFO
  std::vector<std::vector<Output>> outputs_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::size_t buffer_bound_ = 0;
  bool output_done_ = false, eos_sent_ = false, stopping_ = false, drained_ = false, source_ended_ = false;
  bool end_deferred_ = false;  // a transform's end of input waits for what it holds to be handed on

  bool restarting_ = false;
  bool paused_ = false, replacing_ = false;
  std::deque<std::pair<std::size_t, std::optional<Batch>>> held_;  // arrivals while restarting
  RestartHistory restart_history_;

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
};

}  // namespace etld
