// The running pipeline's internals, shared by stages/engine/*.cpp only: StageGroup (the instances
// of one configured stage) and Pipeline::Impl (the graph, its lifecycle and reconfiguration).
// The instances themselves are runners (runner_base.hpp and one per role).
// Threading: Impl's methods are thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "stages/engine/metrics.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/readiness.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/runner_base.hpp"
#include "stages/engine/tap.hpp"

namespace etld {

class SourceRunner;

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
  std::shared_ptr<TapPoint> tap;       // where its output batches pass (tap.hpp)
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
  std::unique_ptr<TapHub> taps_;  // before the stages: they offer to its points
  boost::asio::thread_pool pool_;
  std::vector<std::unique_ptr<StageGroup>> groups_;
  std::vector<SourceRunner*> sources_;
  std::vector<Runner*> sinks_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false, stopping_ = false, finished_ = false;
  // stop() during a reconfiguration waits for its end: a stage being rebuilt must not drain.
  bool reconfiguring_ = false, stop_deferred_ = false;
  std::optional<std::string> error_;
  std::size_t sinks_left_ = 0, sources_left_ = 0;
};

}  // namespace etld
