// Pipeline::Impl::reconfigure: applying a changed configuration to the running graph, rebuilding
// only the stages whose settings changed (docs/engine.md, Lifecycle).
#include "stages/engine/pipeline_impl.hpp"

#include <latch>
#include <thread>

#include "stages/engine/offset_store.hpp"
#include "stages/engine/source_runner.hpp"

namespace etld {

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
template <class R, class F>
void on_strands(const std::vector<R*>& runners, F f) {
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

std::string canonical(const YAML::Node& node) {
  std::string out;
  canonical(node, out);
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
    std::shared_ptr<OffsetStore> offset_store;  // sources: the binding under `next`
  };
  std::vector<Change> changes;
  for (auto& g : groups_) {
    const auto* nc = next->find(g->config->name);
    Change c{g.get(), nc, find_stage_type(nc->type), nullptr, canonical(nc->node), nullptr};
    if (g->settings != c.settings) {
      try {
        c.factory = nc->factory ? nc->factory : c.type->configure(*nc, *next);
        remember_secrets(*c.factory);  // before anything of it runs (a rotated password, say)
      } catch (const std::exception& e) {
        result.error = "stage '" + nc->name + "': " + e.what();
        return result;
      }
    }
    changes.push_back(std::move(c));
  }
  // A sink rebuilt with a new offset store takes over its source's positions from the old one:
  // the source is rebuilt too (same settings), so that it claims its partitions again through the
  // new store instead of writing under claims the new sink never saw. A rebuilt source binds to
  // the store of the sink it feeds, rebuilt or not.
  {
    std::vector<std::shared_ptr<StageFactory>> next_factories;
    for (auto& c : changes) next_factories.push_back(c.factory ? c.factory : c.group->factory);
    auto next_stores = offset_store_bindings(next_factories);
    for (auto& c : changes) {
      auto it = next_stores.find(c.group);
      if (it != next_stores.end()) c.offset_store = it->second;
      if (!c.factory && c.offset_store != c.group->offset_store) c.factory = c.group->factory;
      if (c.factory) result.restarted.push_back(c.config->name);
    }
  }

  auto adopt_all = [&] {
    for (auto& c : changes) {
      std::vector<Runner*> rs;
      for (auto& r : c.group->instances) rs.push_back(r.get());
      on_strands(rs, [&c](Runner& r) {
        r.adopt(c.config, c.type, c.factory, c.offset_store, c.factory != nullptr);
      });
      c.group->config = c.config;
      c.group->settings = c.settings;
      if (c.factory) {
        c.group->type = c.type;
        c.group->factory = c.factory;
        c.group->offset_store = c.offset_store;
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
  on_strands(sources_, [](SourceRunner& r) { r.set_paused(true); });
  if (!wait_quiet(deadline)) {
    on_strands(sources_, [](SourceRunner& r) { r.set_paused(false); });
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
  on_strands(sources_, [](SourceRunner& r) { r.set_paused(false); });
  result.applied = true;
  if (!problems.empty()) result.error = problems.substr(2);
  return result;
}

}  // namespace etld
