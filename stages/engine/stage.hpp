// The three stage roles, after GenStage: Source (producer), Transform (producer-consumer) and
// Sink (consumer).
//
// Threading contract: every stage instance lives on its own strand of the pipeline's thread
// pool. Every method below, and every callback a stage posts to ctx.executor(), runs on that
// strand, so a stage needs no lock for its own state. A stage never blocks its thread: it waits
// on I/O through the executor. Context methods are strand-bound too, except where noted.
// A stage posts, waits and times through stages/engine/instance_scope.hpp, so that nothing it
// started runs once the instance is destroyed (on its strand).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include <spdlog/logger.h>

#include "stages/engine/event.hpp"
#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/readiness.hpp"

namespace etld {

class OffsetStore;

// A failure no restart can fix (a poison record under `on_poison: stop`, a table that does not
// exist): passed to StageContext::fail or thrown, it stops the pipeline at once, whatever the
// stage's restart policy.
struct FatalStageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class StageContext {
 public:
  virtual ~StageContext() = default;
  virtual const std::string& stage_name() const = 0;
  virtual int instance() const = 0;                           // 0..concurrency-1
  virtual boost::asio::any_io_executor executor() const = 0;  // this instance's strand
  virtual spdlog::logger& log() const = 0;
  // This instance's metrics, already labelled with its pipeline, stage and instance. Any thread.
  virtual const metrics::MetricsScope& metrics() const = 0;
  // A condition the running pipeline's /readyz waits for: not ready until set(true), counted
  // while the probe lives (keep it no longer than the stage instance). Any thread.
  virtual ReadinessProbe readiness(std::string what) = 0;
  // An asynchronous failure: the instance is torn down and handled by its restart policy.
  virtual void fail(std::exception_ptr error) = 0;
  // Transforms: outputs made outside process() (by a timer: a window the clock closed) and kept
  // (Transform::held) are handed on now, as far as consumers ask, as when they ask for more. May
  // call the transform's resume() before it returns: call it last.
  virtual void wake() {}
};

class SourceContext : public StageContext {
 public:
  // Hands events downstream. Never more than demand() at the time of the call.
  virtual void emit(Batch&& events) = 0;
  // Events downstream asked for and have not received yet.
  virtual std::size_t demand() const = 0;
  // No more events will come (end of input, or the answer to stop()). Calling it again is a no-op.
  virtual void finish() = 0;
  // Where this source's read positions are stored and claimed, when the sink it feeds commits
  // them with its own writes (exactly once): bound by the pipeline when it builds the graph.
  // nullptr: the source keeps its positions itself. Fixed for the life of the instance.
  virtual std::shared_ptr<OffsetStore> offset_store() const { return nullptr; }
};

class Source {
 public:
  virtual ~Source() = default;
  virtual void start(SourceContext& ctx) = 0;
  // Downstream demand grew; ctx.demand() is the new outstanding amount. Emit now or later.
  virtual void on_demand() = 0;
  // Stop producing (drain begins). Call ctx.finish() once nothing more will be emitted.
  virtual void stop() = 0;
  // The pipeline has drained: every event emitted is settled. Commit and release resources.
  virtual void close() {}
};

class Transform {
 public:
  virtual ~Transform() = default;
  virtual void start(StageContext& ctx) { (void)ctx; }
  // CPU-only work on one input batch. Events moved to `out` keep (or split) their acks; an event
  // a transform drops must be settled by it (done for filtered, dead_lettered for bad data).
  virtual void process(Batch& in, Batch& out) = 0;
  // End of input: emit whatever is held back (a reduce's accumulators).
  virtual void finish(Batch& out) { (void)out; }
  // A transform that makes many events from one input (flat_map) keeps them instead of putting
  // them all in `out`: held() says how many it keeps, and resume() hands on at most `room` of
  // them when its consumers ask for more. While it holds any, the runner takes no more input
  // from upstream and defers finish(), so what it holds stays within one batch of input.
  virtual std::size_t held() const { return 0; }
  virtual void resume(Batch& out, std::size_t room) {
    (void)out;
    (void)room;
  }
};

class SinkContext : public StageContext {
 public:
  // `n` more events are fully handled, in arrival order: releases their credit upstream.
  virtual void done(std::size_t n) = 0;
  // Answer to Sink::drain(): everything received is written and settled.
  virtual void drained() = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void start(SinkContext& ctx) = 0;
  // Takes ownership of the events; settle each one and report them with ctx.done() later.
  virtual void consume(Batch&& batch) = 0;
  // End of input: flush, settle everything, then call ctx.drained().
  virtual void drain() = 0;
};

}  // namespace etld
