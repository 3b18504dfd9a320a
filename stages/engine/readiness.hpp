// What must hold for the process to count as ready (the admin endpoint's /readyz): a component
// that needs an outside system (a sink's database connection) holds a ReadinessProbe and marks it
// ready while connected. Probes that are destroyed stop counting.
// Threading: thread-safe; set() is one relaxed atomic store.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace etld {

class ReadinessProbe {
 public:
  explicit ReadinessProbe(std::string what);  // not ready until set(true)
  ~ReadinessProbe();
  ReadinessProbe(const ReadinessProbe&) = delete;
  ReadinessProbe& operator=(const ReadinessProbe&) = delete;
  void set(bool ready) { state_->ready.store(ready, std::memory_order_relaxed); }

  struct State {
    std::string what;
    std::atomic<bool> ready{false};
  };

 private:
  std::shared_ptr<State> state_;
};

// The `what` of every live probe that is not ready.
std::vector<std::string> unready_components();
// Why /readyz says no: the pipeline is not running, or the components not ready; "" when ready.
std::string unready_reason(bool pipeline_running);

}  // namespace etld
