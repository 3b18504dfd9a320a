#include "stages/pipeline.hpp"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "stages/credit.hpp"
#include "stages/dispatcher.hpp"
#include "stages/expr.hpp"
#include "stages/loggers.hpp"
#include "stages/registry.hpp"

namespace etld {

namespace asio = boost::asio;
using Strand = asio::strand<asio::thread_pool::executor_type>;

namespace {

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// The stage's settings as compared by reconfigure(); defined below.
std::string canonical(const YAML::Node& node);

}  // namespace

class Runner;

// All instances of one configured stage.
struct StageGroup {
  const StageConfig* config = nullptr;
  const StageType* type = nullptr;
  std::shared_ptr<StageFactory> factory;
  std::vector<std::unique_ptr<Runner>> instances;
  std::vector<StageGroup*> consumers;  // downstream stages, in file order
  std::optional<Expr> partition_key;   // this stage's partition_by, compiled
  std::string settings;                // canonical(config->node), ${...} expanded when built
};

class Pipeline::Impl {
 public:
  explicit Impl(std::shared_ptr<const PipelineConfig> config);
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

  std::shared_ptr<const PipelineConfig> config_;  // guarded by mu_ once started
  // Configurations replaced by reconfigure(): unchanged stages' factories may still refer to them.
  std::vector<std::shared_ptr<const PipelineConfig>> retired_configs_;
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
  Runner(Pipeline::Impl& pipeline, StageGroup& group, int instance)
      : pipeline_(pipeline),
        group_(group),
        instance_(instance),
        strand_(asio::make_strand(pipeline.pool_.get_executor())),
        restart_timer_(strand_),
        name_(group.config->name),
        config_(group.config),
        type_(group.type),
        factory_(group.factory) {
    auto label = group.config->concurrency > 1 ? name_ + "#" + std::to_string(instance) : name_;
    log_ = make_stage_logger(label);
    source_ctx_.r = this;
    sink_ctx_.r = this;
    transform_ctx_.r = this;
  }

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

  std::size_t add_input(Runner* producer, SubscriberId id) {
    inputs_.push_back(Input{producer, id, Credit(config().max_demand, config().min_demand)});
    return inputs_.size() - 1;
  }
  void set_outputs(std::vector<std::vector<Output>> outputs, std::size_t buffer_bound) {
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
      if (consumer_group->partition_key) {
        const Expr* key = &*consumer_group->partition_key;
        children.push_back(make_partition_dispatcher(
            static_cast<int>(g), n,
            [key](Event& e) -> std::uint64_t {
              try {
                auto v = key->eval(e);
                return hash_bytes(v.kind() == Value::Kind::string ? v.as_string() : v.to_json());
              } catch (const std::exception&) {
                return 0;  // unreadable events all go to one instance, whose stage reports them
              }
            },
            send));
      } else {
        children.push_back(make_demand_dispatcher(static_cast<int>(g), n, send));
      }
    }
    if (config().dispatch == DispatchMode::demand && outputs_.size() > 1)
      dispatcher_ = make_demand_dispatcher(std::move(all), send);
    else
      dispatcher_ = make_broadcast_dispatcher(std::move(children));
  }

  // --- lifecycle, each posted onto the strand ---
  void start() {
    post([this] {
      if (!create_stage()) return;
      for (std::size_t i = 0; i < inputs_.size(); ++i) {
        auto n = inputs_[i].credit.grant_initial();
        ask_upstream(i, n);
      }
    });
  }
  void stop() {
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
  void close() {
    post([this] {
      if (source_) guard([&] { source_->close(); });
      pipeline_.source_closed();
    });
  }

  // --- messages from other runners ---
  void on_ask(SubscriberId id, std::size_t n) {
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

  void on_events(std::size_t input, Batch&& batch) {
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

  void on_eos(std::size_t input) {
    if (restarting_) {
      held_.emplace_back(input, std::nullopt);
      return;
    }
    handle_eos(input);
  }

  StageStats stats() const {
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

  // --- reconfiguration; each runs on the strand (Pipeline::Impl::reconfigure posts them) ---
  bool ended() const { return ended_; }
  // Nothing handed to this instance is unfinished and nothing waits in its dispatcher.
  bool quiet() const { return inbox_ == 0 && sink_held_ == 0 && buffered_ == 0; }
  bool retired() const { return retired_; }

  // A paused source sees no demand, so it emits nothing until resumed.
  void set_paused(bool paused) {
    paused_ = paused;
    if (!paused && role() == Role::source && source_ && !restarting_ && !output_done_ && !stopping_ &&
        dispatcher_->demand() > 0)
      guard([&] { source_->on_demand(); });
  }

  // Ends the instance before it is rebuilt: a transform emits what it holds back, a sink flushes
  // and settles everything (retired() once it has), a source stops and commits.
  void retire() {
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

  // Takes the new configuration; with `rebuild`, replaces the stage with one from `factory`.
  void adopt(const StageConfig* config, const StageType* type, std::shared_ptr<StageFactory> factory,
             bool rebuild) {
    config_ = config;
    if (!rebuild) return;
    type_ = type;
    factory_ = std::move(factory);
    if (restarting_) {  // a restart pending from a failure: the rebuild below replaces it
      restart_timer_.cancel();
      restarting_ = false;
    }
    teardown();  // a sink that did not drain in time releases the credit of what it held
    replacing_ = retired_ = false;
    source_ended_ = false;
    restarts_in_window_ = 0;
    create_stage();
    replay_held();
  }

 private:
  // Contexts handed to the stage; they forward to the runner.
  template <class Base>
  struct ContextOf : Base {
    Runner* r = nullptr;
    const std::string& stage_name() const override { return r->name_; }
    int instance() const override { return r->instance_; }
    asio::any_io_executor executor() const override { return r->strand_; }
    spdlog::logger& log() const override { return *r->log_; }
    void fail(std::exception_ptr e) override { r->handle_failure(e); }
  };
  struct SourceCtx : ContextOf<SourceContext> {
    void emit(Batch&& events) override { r->emit(std::move(events)); }
    std::size_t demand() const override {
      return r->stopping_ || r->output_done_ || r->paused_ ? 0 : r->dispatcher_->demand();
    }
    void finish() override { r->source_finished(); }
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

  bool create_stage() {
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

  void ask_upstream(std::size_t input, std::size_t n) {
    auto& in = inputs_[input];
    if (n == 0 || in.eos) return;
    asio::post(in.producer->strand_, [p = in.producer, id = in.id, n] { p->on_ask(id, n); });
  }

  void send_to(SubscriberId id, Batch&& batch) {
    auto& out = outputs_[static_cast<std::size_t>(id.group)][static_cast<std::size_t>(id.index)];
    events_out_ += batch.size();
    stats_outstanding_ -= std::min<std::size_t>(stats_outstanding_, batch.size());
    out.consumer->inbox_ += batch.size();  // before the post: the batch is never uncounted
    asio::post(out.consumer->strand_, [c = out.consumer, idx = out.input_index,
                                       b = std::move(batch)]() mutable { c->on_events(idx, std::move(b)); });
  }

  void emit(Batch&& events) {
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

  // The batch leaves the inbox only once it is handed on (dispatched, buffered or held by the
  // sink), so that a quiet() pipeline has nothing in flight.
  void deliver(std::size_t input, Batch&& batch) {
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

  // Rejected events pass through transforms untouched, on their way to a dead-letter destination.
  static void pass_rejected(Batch& in, Batch& out) {
    auto first = std::find_if(in.begin(), in.end(), [](const Event& e) { return e.rejected(); });
    if (first == in.end()) return;
    auto keep = std::stable_partition(first, in.end(), [](const Event& e) { return !e.rejected(); });
    for (auto it = keep; it != in.end(); ++it) out.push_back(std::move(*it));
    in.erase(keep, in.end());
  }

  // For a sink with no dead-letter destination: rejected events are settled (the rejecting stage
  // logged them) and their credit returned. Returns how many.
  std::size_t settle_rejected(std::size_t input, Batch& batch) {
    auto keep =
        std::stable_partition(batch.begin(), batch.end(), [](const Event& e) { return !e.rejected(); });
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

  void dispatch_output(Batch&& out) {
    if (outputs_.empty()) {  // a dead end: nothing downstream wants these
      settle_all(out, AckStatus::done);
      return;
    }
    if (!out.empty()) dispatcher_->dispatch(std::move(out));
    note_buffered();
  }

  // What this instance holds for downstream: its dispatcher's buffer and a transform's held events.
  void note_buffered() {
    buffered_ = (dispatcher_ ? dispatcher_->buffered() : 0) + (transform_ ? transform_->held() : 0);
  }

  // A transform holding events (flat_map's outputs of one input) hands on what its consumers
  // accept now; only once it holds none does it take more input and, after end of input, finish.
  void pump() {
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

  void release_held() {
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

  void grant_upstream_if_room() {
    if (dispatcher_ && dispatcher_->buffered() >= buffer_bound_) return;
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      auto n = std::exchange(inputs_[i].pending_ask, 0);
      ask_upstream(i, n);
    }
    note_buffered();
  }

  void handle_eos(std::size_t input) {
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

  void end_transform() {
    Batch out;
    if (guard([&] { transform_->finish(out); })) dispatch_output(std::move(out));
    finish_output();
  }

  // A source ran out of input. Under `restart: permanent` (OTP's meaning: a child that should
  // never end), that counts as a failure and restarts it; otherwise its end of stream follows.
  void source_finished() {
    if (source_ended_ || output_done_) return;  // finish() is idempotent for every source
    source_ended_ = true;
    if (replacing_) return;  // stopped for a reconfiguration: no end of stream downstream
    if (config().restart == RestartPolicy::permanent && !stopping_) {
      handle_failure(std::make_exception_ptr(std::runtime_error("source ended (restart: permanent)")));
      return;
    }
    finish_output();
  }

  void finish_output() {
    output_done_ = true;
    ended_ = true;
    maybe_send_eos();
  }

  void maybe_send_eos() {
    if (!output_done_ || eos_sent_ || (dispatcher_ && dispatcher_->buffered() > 0)) return;
    eos_sent_ = true;
    for (auto& group : outputs_)
      for (auto& out : group)
        asio::post(out.consumer->strand_, [c = out.consumer, idx = out.input_index] { c->on_eos(idx); });
  }

  void observe_since(std::chrono::steady_clock::time_point t0) {
    processing_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  void sink_done(std::size_t n) {
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

  void sink_drained() {
    if (replacing_) {
      retired_ = true;
      return;
    }
    if (drained_) return;
    drained_ = true;
    pipeline_.sink_drained();
  }

  void handle_failure(std::exception_ptr error) {
    auto what = describe(error);
    const auto& cfg = config();
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ > cfg.restart_window) {
      window_start_ = now;
      restarts_in_window_ = 0;
    }
    if (restarting_) return;  // already being replaced
    bool fatal = false;
    try {
      std::rethrow_exception(error);
    } catch (const FatalStageError&) {
      fatal = true;
    } catch (...) {
    }
    bool give_up =
        fatal || cfg.restart == RestartPolicy::temporary || restarts_in_window_ >= cfg.max_restarts;
    if (give_up) {
      log_->error("stage failed: {}", what);
      pipeline_.fail("stage '" + name_ + "' failed" +
                     (fatal ? std::string(" (not restartable)")
                      : cfg.restart == RestartPolicy::temporary
                          ? std::string(" (restart: temporary)")
                          : " " + std::to_string(restarts_in_window_ + 1) + " times within " +
                                std::to_string(cfg.restart_window.count()) + "ms") +
                     ": " + what);
      return;
    }
    auto backoff = cfg.restart_backoff * (1 << std::min(restarts_in_window_, 10));
    ++restarts_in_window_;
    ++restarts_total_;
    log_->warn("stage failed, restarting in {}ms (restart {} of {}): {}", backoff.count(),
               restarts_in_window_, cfg.max_restarts, what);
    restarting_ = true;
    // Defer the teardown: we may be inside a method of the stage being destroyed.
    post([this] { teardown(); });
    restart_timer_.expires_after(backoff);
    restart_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      restart();
    });
  }

  void teardown() {
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

  void restart() {
    restarting_ = false;
    if (!create_stage()) return;
    replay_held();
    if (role() == Role::transform && !restarting_) pump();  // credit withheld while the old one held events
  }

  // What arrived while the stage was down, in order, until it fails again.
  void replay_held() {
    while (!held_.empty() && !restarting_) {
      auto [input, batch] = std::move(held_.front());
      held_.pop_front();
      if (batch)
        deliver(input, std::move(*batch));
      else
        handle_eos(input);
    }
  }

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
  std::shared_ptr<spdlog::logger> log_;
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
  int restarts_in_window_ = 0;
  std::chrono::steady_clock::time_point window_start_{};

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

Pipeline::Impl::Impl(std::shared_ptr<const PipelineConfig> config)
    : config_(std::move(config)),
      pool_(static_cast<std::size_t>(
          config_->threads > 0 ? config_->threads : std::max(1u, std::thread::hardware_concurrency()))) {
  std::map<std::string, StageGroup*> by_name;
  for (const auto& sc : config_->stages) {
    auto group = std::make_unique<StageGroup>();
    group->config = &sc;
    group->type = find_stage_type(sc.type);
    if (!group->type) throw std::runtime_error("unknown stage type '" + sc.type + "'");
    group->factory = group->type->configure(sc, *config_);
    group->settings = canonical(sc.node);
    if (!sc.partition_by.empty()) group->partition_key.emplace(Expr::compile(sc.partition_by));
    by_name[sc.name] = group.get();
    groups_.push_back(std::move(group));
  }
  for (auto& g : groups_)
    for (const auto& input : g->config->inputs) by_name.at(input)->consumers.push_back(g.get());
  for (auto& g : groups_)
    for (int i = 0; i < g->config->concurrency; ++i)
      g->instances.push_back(std::make_unique<Runner>(*this, *g, i));
  // Wire every producer instance to every instance of each consumer stage.
  for (auto& g : groups_) {
    for (auto& producer : g->instances) {
      std::vector<std::vector<Runner::Output>> outputs;
      std::size_t bound = g->config->buffer_size;
      for (std::size_t cg = 0; cg < g->consumers.size(); ++cg) {
        auto* consumer_group = g->consumers[cg];
        std::vector<Runner::Output> outs;
        for (int ci = 0; ci < static_cast<int>(consumer_group->instances.size()); ++ci) {
          auto* consumer = consumer_group->instances[static_cast<std::size_t>(ci)].get();
          auto idx = consumer->add_input(producer.get(), SubscriberId{static_cast<int>(cg), ci});
          outs.push_back({consumer, idx});
        }
        if (g->config->buffer_size == 0) bound = std::max(bound, consumer_group->config->max_demand);
        outputs.push_back(std::move(outs));
      }
      producer->set_outputs(std::move(outputs), std::max<std::size_t>(bound, 1));
    }
  }
  for (auto& g : groups_)
    for (auto& r : g->instances) {
      if (g->type->role == Role::source) sources_.push_back(r.get());
      if (g->type->role == Role::sink) sinks_.push_back(r.get());
    }
  sinks_left_ = sinks_.size();
  sources_left_ = sources_.size();
}

Pipeline::Impl::~Impl() {
  pool_.stop();
  pool_.join();
}

void Pipeline::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
  }
  // Consumers first, so that demand is in place before any producer runs.
  for (auto it = groups_.rbegin(); it != groups_.rend(); ++it)
    for (auto& r : (*it)->instances) r->start();
  if (sinks_.empty()) fail("the pipeline has no sink");
}

void Pipeline::Impl::stop() {
  {
    std::lock_guard lock(mu_);
    if (reconfiguring_) {
      stop_deferred_ = true;
      return;
    }
    if (stopping_) return;
    stopping_ = true;
  }
  for (auto* s : sources_) s->stop();
}

void Pipeline::Impl::fail(const std::string& error) {
  std::string name;
  {
    std::lock_guard lock(mu_);
    if (!error_) error_ = error;
    name = config_->name;
  }
  spdlog::error("pipeline '{}' stopping: {}", name, error);
  stop();
}

void Pipeline::Impl::sink_drained() {
  bool all;
  {
    std::lock_guard lock(mu_);
    all = --sinks_left_ == 0;
  }
  if (!all) return;
  // Every event has reached a sink and been settled: let the sources commit.
  for (auto* s : sources_) s->close();
  if (sources_.empty()) source_closed();
}

void Pipeline::Impl::source_closed() {
  std::lock_guard lock(mu_);
  if (sources_left_ > 0) --sources_left_;
  if (sources_left_ == 0) {
    std::uint64_t failed = 0;
    std::string where;
    for (auto& g : groups_)
      for (auto& r : g->instances)
        if (auto s = r->stats(); s.failed > 0) {
          failed += s.failed;
          where = s.name;
        }
    if (failed > 0 && !error_)
      error_ = std::to_string(failed) + " events failed (last in stage '" + where +
               "') and were not acknowledged; their sources did not commit them";
    finished_ = true;
    cv_.notify_all();
  }
}

namespace {

// A YAML node as text that ignores style and key order, so that only a change of content counts.
// Scalars are compared expanded: a rotated ${file:/secret} changes the stage.
void canonical(const YAML::Node& node, std::string& out) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      out += '"';
      try {
        out += expand_vars(node.Scalar(), node.Mark());
      } catch (const std::exception&) {
        out += node.Scalar();  // not an expandable value (an option that takes ${ literally)
      }
      out += '"';
      break;
    case YAML::NodeType::Sequence:
      out += '[';
      for (const auto& item : node) {
        canonical(item, out);
        out += ',';
      }
      out += ']';
      break;
    case YAML::NodeType::Map: {
      std::map<std::string, YAML::Node> sorted;
      for (const auto& kv : node) sorted.emplace(kv.first.Scalar(), kv.second);
      out += '{';
      for (const auto& [key, value] : sorted) {
        out += key;
        out += ':';
        canonical(value, out);
        out += ',';
      }
      out += '}';
      break;
    }
    default: out += '~';
  }
}

std::string canonical(const YAML::Node& node) {
  std::string out;
  canonical(node, out);
  return out;
}

// Why `next` cannot run on the graph built for `now`: the wiring (stages, inputs, instances,
// partitioning, credits) or the thread pool would change. "" when only stages' own settings do.
std::string rebuild_reason(const PipelineConfig& now, const PipelineConfig& next) {
  if (now.threads != next.threads)
    return "threads changed from " + std::to_string(now.threads) + " to " + std::to_string(next.threads);
  if (now.on_poison != next.on_poison) return "on_poison changed";
  for (const auto& sc : next.stages)
    if (!now.find(sc.name)) return "stage '" + sc.name + "' was added";
  for (const auto& sc : now.stages) {
    const auto* nc = next.find(sc.name);
    if (!nc) return "stage '" + sc.name + "' was removed";
    auto what = [&]() -> std::string {
      const auto* a = find_stage_type(sc.type);
      const auto* b = find_stage_type(nc->type);
      if (!a || !b || a->role != b->role) return "role";
      if (sc.inputs != nc->inputs) return "inputs";
      if (sc.concurrency != nc->concurrency) return "concurrency";
      if (sc.partition_by != nc->partition_by) return "partition_by";
      if (sc.dispatch != nc->dispatch) return "dispatch";
      if (sc.max_demand != nc->max_demand || sc.min_demand != nc->min_demand) return "max_demand/min_demand";
      if (sc.buffer_size != nc->buffer_size) return "buffer_size";
      return {};
    }();
    if (!what.empty()) return "stage '" + sc.name + "': its " + what + " changed";
  }
  return {};
}

// Runs f(runner) on each runner's strand and waits until every one has.
template <class F>
void on_strands(const std::vector<Runner*>& runners, F f) {
  if (runners.empty()) return;
  std::latch done(static_cast<std::ptrdiff_t>(runners.size()));
  for (auto* r : runners)
    r->run_on_strand([&f, &done, r] {
      f(*r);
      done.count_down();
    });
  done.wait();
}

}  // namespace

std::vector<Runner*> Pipeline::Impl::runners() const {
  std::vector<Runner*> out;
  for (const auto& g : groups_)
    for (const auto& r : g->instances) out.push_back(r.get());
  return out;
}

// Read in topological order: a batch moving downstream is counted by its consumer before its
// producer lets go, so reading producers first cannot miss it.
bool Pipeline::Impl::quiet() const {
  for (const auto& g : groups_)
    for (const auto& r : g->instances)
      if (!r->quiet()) return false;
  return true;
}

bool Pipeline::Impl::wait_quiet(std::chrono::steady_clock::time_point deadline) const {
  int quiet_reads = 0;
  while (quiet_reads < 2) {  // twice in a row, a few ms apart: nothing was moving in between
    quiet_reads = quiet() ? quiet_reads + 1 : 0;
    if (quiet_reads == 0 && std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

Reconfiguration Pipeline::Impl::reconfigure(std::shared_ptr<const PipelineConfig> next,
                                            std::chrono::milliseconds timeout) {
  Reconfiguration result;
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_ || finished_ || reconfiguring_) {
      result.error = reconfiguring_ ? "another reconfiguration is under way" : "the pipeline is not running";
      return result;
    }
    reconfiguring_ = true;
  }
  struct EndReconfiguration {
    Impl& impl;
    ~EndReconfiguration() {
      bool stop;
      {
        std::lock_guard lock(impl.mu_);
        impl.reconfiguring_ = false;
        stop = std::exchange(impl.stop_deferred_, false);
      }
      if (stop) impl.stop();
    }
  } end_reconfiguration{*this};
  result.needs_rebuild = rebuild_reason(*config_, *next);
  if (!result.needs_rebuild.empty()) return result;
  for (auto* r : runners())
    if (r->ended()) {
      result.needs_rebuild = "stage '" + r->stats().name + "' already ended its stream";
      return result;
    }

  // Configure the changed stages first: a factory that refuses leaves everything as it was.
  struct Change {
    StageGroup* group;
    const StageConfig* config;
    const StageType* type;
    std::shared_ptr<StageFactory> factory;  // null: unchanged
    std::string settings;
  };
  std::vector<Change> changes;
  for (auto& g : groups_) {
    const auto* nc = next->find(g->config->name);
    Change c{g.get(), nc, find_stage_type(nc->type), nullptr, canonical(nc->node)};
    if (g->settings != c.settings) {
      try {
        c.factory = c.type->configure(*nc, *next);
      } catch (const std::exception& e) {
        result.error = "stage '" + nc->name + "': " + e.what();
        return result;
      }
      result.restarted.push_back(nc->name);
    }
    changes.push_back(std::move(c));
  }

  auto adopt_all = [&] {
    for (auto& c : changes) {
      std::vector<Runner*> rs;
      for (auto& r : c.group->instances) rs.push_back(r.get());
      on_strands(rs, [&c](Runner& r) { r.adopt(c.config, c.type, c.factory, c.factory != nullptr); });
      c.group->config = c.config;
      c.group->settings = c.settings;
      if (c.factory) {
        c.group->type = c.type;
        c.group->factory = c.factory;
      }
    }
    std::lock_guard lock(mu_);
    retired_configs_.push_back(std::exchange(config_, next));
  };
  if (result.restarted.empty()) {  // nothing to rebuild: the stages take the new settings
    adopt_all();
    result.applied = true;
    return result;
  }

  auto deadline = std::chrono::steady_clock::now() + timeout;
  on_strands(sources_, [](Runner& r) { r.set_paused(true); });
  if (!wait_quiet(deadline)) {
    on_strands(sources_, [](Runner& r) { r.set_paused(false); });
    result.error = "events in flight did not settle within " + std::to_string(timeout.count()) +
                   "ms; the running configuration stays";
    result.restarted.clear();
    return result;
  }
  // From here on the new configuration is applied; a problem is reported, not undone.
  auto instances_of = [](const Change& c) {
    std::vector<Runner*> rs;
    for (auto& r : c.group->instances) rs.push_back(r.get());
    return rs;
  };
  std::string problems;
  for (auto& c : changes) {  // transforms in topological order, each one's output settled
    if (!c.factory || c.group->type->role != Role::transform) continue;
    on_strands(instances_of(c), [](Runner& r) { r.retire(); });
    if (!wait_quiet(deadline))
      problems += "; what stage '" + c.config->name + "' emitted on finishing did not settle in time";
  }
  std::vector<Runner*> sinks, sources;
  for (auto& c : changes) {
    if (!c.factory) continue;
    auto rs = instances_of(c);
    auto& into = c.group->type->role == Role::sink ? sinks : sources;
    if (c.group->type->role != Role::transform) into.insert(into.end(), rs.begin(), rs.end());
  }
  on_strands(sinks, [](Runner& r) { r.retire(); });
  for (auto* r : sinks) {
    while (!r->retired() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!r->retired())
      problems +=
          "; sink '" + r->stats().name + "' did not drain in time (its unsettled events are not committed)";
  }
  on_strands(sources, [](Runner& r) { r.retire(); });
  adopt_all();
  on_strands(sources_, [](Runner& r) { r.set_paused(false); });
  result.applied = true;
  if (!problems.empty()) result.error = problems.substr(2);
  return result;
}

Pipeline::Pipeline(std::shared_ptr<const PipelineConfig> config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
Pipeline::~Pipeline() = default;
void Pipeline::start() { impl_->start(); }
void Pipeline::stop() { impl_->stop(); }
std::optional<std::string> Pipeline::wait() {
  std::unique_lock lock(impl_->mu_);
  impl_->cv_.wait(lock, [&] { return impl_->finished_; });
  return impl_->error_;
}
bool Pipeline::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, timeout, [&] { return impl_->finished_; });
}
bool Pipeline::finished() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->finished_;
}
std::optional<std::string> Pipeline::error() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->error_;
}
std::vector<StageStats> Pipeline::stats() const {
  std::vector<StageStats> out;
  for (auto& g : impl_->groups_)
    for (auto& r : g->instances) out.push_back(r->stats());
  return out;
}
std::shared_ptr<const PipelineConfig> Pipeline::config() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->config_;
}
Reconfiguration Pipeline::reconfigure(std::shared_ptr<const PipelineConfig> next,
                                      std::chrono::milliseconds timeout) {
  return impl_->reconfigure(std::move(next), timeout);
}
bool Pipeline::running() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->started_ && !impl_->stopping_ && !impl_->finished_;
}
boost::asio::any_io_executor Pipeline::executor() { return impl_->pool_.get_executor(); }

}  // namespace etld
