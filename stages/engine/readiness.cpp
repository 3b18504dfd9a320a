#include "stages/engine/readiness.hpp"

#include <algorithm>
#include <utility>

namespace etld {

ReadinessProbe& ReadinessProbe::operator=(ReadinessProbe&& other) noexcept {
  if (this != &other) {
    release();
    board_ = std::move(other.board_);
    state_ = std::move(other.state_);
  }
  return *this;
}

ReadinessProbe::~ReadinessProbe() { release(); }

void ReadinessProbe::release() {
  if (!board_ || !state_) return;
  std::lock_guard lock(board_->mu);
  std::erase(board_->probes, state_);
  board_.reset();
  state_.reset();
}

Readiness::Readiness() : board_(std::make_shared<ReadinessProbe::Board>()) {}

ReadinessProbe Readiness::probe(std::string what) {
  auto state = std::make_shared<ReadinessProbe::State>();
  state->what = std::move(what);
  std::lock_guard lock(board_->mu);
  board_->probes.push_back(state);
  return ReadinessProbe(board_, std::move(state));
}

std::vector<std::string> Readiness::unready() const {
  std::vector<std::string> out;
  std::lock_guard lock(board_->mu);
  for (const auto& p : board_->probes)
    if (!p->ready.load(std::memory_order_relaxed)) out.push_back(p->what);
  return out;
}

std::string unready_reason(bool pipeline_running, const std::vector<std::string>& unready) {
  if (!pipeline_running) return "the pipeline is not running (starting, draining or stopped)";
  std::string out;
  for (const auto& what : unready) out += (out.empty() ? "" : "; ") + what;
  return out;
}

}  // namespace etld
