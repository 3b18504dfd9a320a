// What must hold for a pipeline to count as ready (the admin endpoint's /readyz): a stage that
// needs an outside system (a sink's database connection) asks its context for a ReadinessProbe
// (StageContext::readiness) and marks it ready while connected. The probes belong to the
// pipeline that runs the stage, so one pipeline's probes never make another unready; a probe
// stops counting when it is destroyed (with its stage instance).
// Threading: thread-safe; set() is one relaxed atomic store.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace etld {

class ReadinessProbe {
 public:
  ReadinessProbe() = default;  // counts for nothing
  ReadinessProbe(ReadinessProbe&&) noexcept = default;
  ReadinessProbe& operator=(ReadinessProbe&& other) noexcept;
  ~ReadinessProbe();
  void set(bool ready) {
    if (state_) state_->ready.store(ready, std::memory_order_relaxed);
  }

 private:
  friend class Readiness;
  struct State {
    std::string what;
    std::atomic<bool> ready{false};
  };
  struct Board {
    std::mutex mu;
    std::vector<std::shared_ptr<State>> probes;
  };
  ReadinessProbe(std::shared_ptr<Board> board, std::shared_ptr<State> state)
      : board_(std::move(board)), state_(std::move(state)) {}
  void release();

  std::shared_ptr<Board> board_;  // kept so that a probe may outlive the pipeline
  std::shared_ptr<State> state_;
};

// One pipeline's probes.
class Readiness {
 public:
  Readiness();
  // A probe that counts, not ready until set(true), for as long as it lives.
  ReadinessProbe probe(std::string what);
  // The `what` of every live probe that is not ready, in creation order.
  std::vector<std::string> unready() const;

 private:
  std::shared_ptr<ReadinessProbe::Board> board_;
};

// Why /readyz says no: the pipeline is not running, or the components not ready; "" when ready.
std::string unready_reason(bool pipeline_running, const std::vector<std::string>& unready);

}  // namespace etld
