// A running pipeline: the stage graph of a PipelineConfig, each stage instance on its own strand
// of the pipeline's thread pool, connected by credit-based subscriptions.
//
// Lifecycle: start() subscribes consumers to producers and starts sinks, then transforms, then
// sources. stop() asks the sources to stop; their end of stream follows their last events
// downstream, every sink drains, and once every event is settled the sources close (commit).
// A stage that throws is restarted per its `restart:` policy, or the pipeline stops with the
// error. reconfigure() applies a changed configuration to the running graph, rebuilding only
// the stages whose configuration changed. All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "config/schema/pipeline.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/engine/readiness.hpp"

namespace etld {

struct StageStats {
  std::string name;
  int instance = 0;
  std::uint64_t events_in = 0, events_out = 0, batches_in = 0, restarts = 0;
  std::uint64_t failed = 0;              // dropped by a failing instance, settled as failed
  std::uint64_t buffered = 0;            // held by the dispatcher, waiting for demand
  std::uint64_t outstanding_demand = 0;  // granted upstream, not yet received
  // For the progress check (a wedged stage): work handed to this instance that it has not
  // finished (batches waiting for or inside its strand, events a sink holds unsettled), and a
  // counter of work finished that only grows. Holding work while the counter stands still means
  // the instance is stuck; waiting for downstream demand (`buffered`) does not count.
  std::uint64_t pending = 0;
  std::uint64_t progress = 0;
  std::uint64_t acked = 0;          // sinks: events reported handled (ctx.done)
  std::uint64_t dead_lettered = 0;  // transforms: events rejected; sinks: rejected events settled
  metrics::HistogramSnapshot processing_seconds;  // per batch: process() or consume()
};

// What Pipeline::reconfigure did.
struct Reconfiguration {
  // Why the new configuration cannot be applied to the running graph (a stage added or removed,
  // different inputs, concurrency, partitioning or threads...); "" when it could. When set,
  // nothing was changed and the caller may rebuild the whole pipeline instead.
  std::string needs_rebuild;
  bool applied = false;                // the running graph now runs the new configuration
  std::vector<std::string> restarted;  // stages rebuilt, in topological order
  std::string error;                   // what went wrong while applying; "" on success
};

class Tap;
struct TapLimits;

class Pipeline {
 public:
  // Stages register their metrics in `metrics` (the daemon passes one registry to every pipeline
  // it runs, so that counters go on across reloads); nullptr: a registry of the pipeline's own.
  explicit Pipeline(std::shared_ptr<const PipelineConfig> config,
                    std::shared_ptr<metrics::Registry> metrics = nullptr);
  ~Pipeline();  // stops the pool and joins it
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void start();
  void stop();  // graceful drain; idempotent
  // Blocks until the pipeline finished; returns the error that stopped it, if any.
  std::optional<std::string> wait();
  // false on timeout.
  bool wait_for(std::chrono::milliseconds timeout);
  bool finished() const;
  bool running() const;  // started, not stopping, not finished
  // The pool the stages run on, for control-plane I/O that must share it (the admin endpoint).
  // Valid until the Pipeline is destroyed.
  boost::asio::any_io_executor executor();
  std::optional<std::string> error() const;
  std::vector<StageStats> stats() const;
  std::shared_ptr<const PipelineConfig> config() const;  // the one running now
  metrics::Registry& metrics() const;                    // what its stages register
  // What this pipeline's stages wait for (their readiness probes not ready); see readiness.hpp.
  std::vector<std::string> unready_components() const;
  // A sample of the events leaving `stage` (stages/engine/tap.hpp), until the Tap is destroyed.
  // Throws TapRefused for an unknown stage or when kMaxTaps are open.
  std::shared_ptr<Tap> tap(const std::string& stage, const TapLimits& limits);

  // Applies `next` without stopping: sources hold their output, every event in flight settles,
  // changed sources are stopped and closed (committing), changed transforms finish and changed
  // sinks drain; then the changed stages are rebuilt from `next` and the sources resume. An
  // unchanged stage keeps its instance and state (a Kafka source keeps its consumer and group
  // membership). `timeout` bounds the wait for the graph to settle; on timeout before anything
  // changed, the old configuration resumes and `error` says so.
  Reconfiguration reconfigure(std::shared_ptr<const PipelineConfig> next, std::chrono::milliseconds timeout);

  class Impl;  // public only so that the runtime's internal classes can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace etld
