#include "stages/engine/readiness.hpp"

#include <algorithm>
#include <mutex>

namespace etld {

namespace {
std::mutex& probes_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::shared_ptr<ReadinessProbe::State>>& probes() {
  static std::vector<std::shared_ptr<ReadinessProbe::State>> all;
  return all;
}
}  // namespace

ReadinessProbe::ReadinessProbe(std::string what) : state_(std::make_shared<State>()) {
  state_->what = std::move(what);
  std::lock_guard lock(probes_mutex());
  probes().push_back(state_);
}

ReadinessProbe::~ReadinessProbe() {
  std::lock_guard lock(probes_mutex());
  std::erase(probes(), state_);
}

std::vector<std::string> unready_components() {
  std::vector<std::string> out;
  std::lock_guard lock(probes_mutex());
  for (const auto& p : probes())
    if (!p->ready.load(std::memory_order_relaxed)) out.push_back(p->what);
  return out;
}

std::string unready_reason(bool pipeline_running) {
  if (!pipeline_running) return "the pipeline is not running (starting, draining or stopped)";
  std::string out;
  for (const auto& what : unready_components()) out += (out.empty() ? "" : "; ") + what;
  return out;
}

}  // namespace etld
