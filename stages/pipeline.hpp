// A running pipeline: the stage graph of a PipelineConfig, each stage instance on its own strand
// of the pipeline's thread pool, connected by credit-based subscriptions.
//
// Lifecycle: start() subscribes consumers to producers and starts sinks, then transforms, then
// sources. stop() asks the sources to stop; their end of stream follows their last events
// downstream, every sink drains, and once every event is settled the sources close (commit).
// A stage that throws is restarted per its `restart:` policy, or the pipeline stops with the
// error. All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "config/pipeline.hpp"
#include "stages/metrics.hpp"

namespace etld {

struct StageStats {
  std::string name;
  int instance = 0;
  std::uint64_t events_in = 0, events_out = 0, batches_in = 0, restarts = 0;
  std::uint64_t failed = 0;              // dropped by a failing instance, settled as failed
  std::uint64_t buffered = 0;            // held by the dispatcher, waiting for demand
  std::uint64_t outstanding_demand = 0;  // granted upstream, not yet received
  std::uint64_t acked = 0;               // sinks: events reported handled (ctx.done)
  std::uint64_t dead_lettered = 0;       // transforms: events rejected; sinks: rejected events settled
  metrics::HistogramSnapshot processing_seconds;  // per batch: process() or consume()
};

class Pipeline {
 public:
  explicit Pipeline(std::shared_ptr<const PipelineConfig> config);
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
  const PipelineConfig& config() const;

  class Impl;  // public only so that the runtime's internal classes can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace etld
