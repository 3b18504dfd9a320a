// Pipeline::Impl: building the graph of runners from a configuration (subscriptions, dispatchers,
// offset-store bindings), and its lifecycle: start, stop, failure, the end of sinks and sources.
#include "stages/engine/pipeline_impl.hpp"

#include <thread>

#include <spdlog/spdlog.h>

#include "stages/engine/offset_store.hpp"
#include "stages/engine/sink_runner.hpp"
#include "stages/engine/source_runner.hpp"
#include "stages/engine/transform_runner.hpp"
#include "stages/engine/upstream.hpp"

namespace etld {

Pipeline::Impl::Impl(std::shared_ptr<const PipelineConfig> config, std::shared_ptr<metrics::Registry> metrics)
    : config_(std::move(config)),
      metrics_(std::move(metrics)),
      pool_(static_cast<std::size_t>(
          config_->threads > 0 ? config_->threads : std::max(1u, std::thread::hardware_concurrency()))) {
  std::map<std::string, StageGroup*> by_name;
  std::vector<std::string> names;
  for (const auto& sc : config_->stages) names.push_back(sc.name);
  taps_ = std::make_unique<TapHub>(names);
  for (const auto& sc : config_->stages) {
    auto group = std::make_unique<StageGroup>();
    group->config = &sc;
    group->type = find_stage_type(sc.type);
    if (!group->type) throw std::runtime_error("unknown stage type '" + sc.type + "'");
    group->factory = sc.factory ? sc.factory : group->type->configure(sc, *config_);
    remember_secrets(*group->factory);  // this configuration runs now: mask what it holds
    group->settings = canonical(sc.node);
    group->tap = taps_->point(sc.name);
    if (!sc.partition_by.empty() && !sc.partition_hash)
      throw std::logic_error("stage '" + sc.name + "': partition_by is compiled by the loader");
    by_name[sc.name] = group.get();
    groups_.push_back(std::move(group));
  }
  for (auto& g : groups_)
    for (const auto& input : g->config->inputs) by_name.at(input)->consumers.push_back(g.get());
  std::vector<std::shared_ptr<StageFactory>> factories;
  for (auto& g : groups_) factories.push_back(g->factory);
  for (auto& [group, store] : offset_store_bindings(factories)) group->offset_store = store;
  for (auto& g : groups_)
    for (int i = 0; i < g->config->concurrency; ++i) {
      switch (g->type->role) {
        case Role::source: {
          auto r = std::make_unique<SourceRunner>(*this, *g, i);
          sources_.push_back(r.get());
          g->instances.push_back(std::move(r));
          break;
        }
        case Role::transform: g->instances.push_back(std::make_unique<TransformRunner>(*this, *g, i)); break;
        case Role::sink:
          g->instances.push_back(std::make_unique<SinkRunner>(*this, *g, i));
          sinks_.push_back(g->instances.back().get());
          break;
      }
    }
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

std::vector<Runner*> Pipeline::Impl::runners() const {
  std::vector<Runner*> out;
  for (const auto& g : groups_)
    for (const auto& r : g->instances) out.push_back(r.get());
  return out;
}

std::map<StageGroup*, std::shared_ptr<OffsetStore>> Pipeline::Impl::offset_store_bindings(
    const std::vector<std::shared_ptr<StageFactory>>& factories) const {
  std::map<std::string, StageGroup*> by_name;
  for (const auto& g : groups_) by_name[g->config->name] = g.get();
  std::map<StageGroup*, std::shared_ptr<OffsetStore>> out;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    auto store = factories[i]->offset_store();
    if (!store) continue;
    for (const StageConfig* source : sources_upstream_of(*groups_[i]->config, *config_))
      out[by_name.at(source->name)] = store;
  }
  return out;
}

}  // namespace etld
