// Retrying a blocking call with exponential backoff, and the split that decides whether an error
// is worth retrying: transient (the same call may pass later: connection lost, server restarting,
// broker unavailable) or permanent, either for the records (bad data: bisect them out, see
// bisect.hpp) or for the sink (its configuration is wrong: stop the pipeline).
// Threading: used on a sink's worker thread; the StopSignal ends a wait from any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <type_traits>

#include "stages/sink/stop_signal.hpp"

namespace etld::sink {

enum class Failure { transient, bad_data, fatal };

// Doubling delays from `initial` up to `max`; reset() after a success starts over.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), next_(initial) {}
  std::chrono::milliseconds next() const { return next_; }  // the delay wait() sleeps
  void wait(const StopSignal& stop) {
    stop.sleep_for(next_);
    next_ = std::min(max_, next_ * 2);
  }
  void reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, next_;
};

// Calls attempt() until it returns, and returns what it returned. When it throws an `Error`,
// classify(error) decides: transient -> on_transient(error, delay) (log it, drop a broken
// connection), wait out the backoff (throws Stopped if a stop comes) and call again; bad_data and
// fatal -> the error propagates for the caller to bisect or to stop on. Other exceptions
// propagate untouched. A success resets the backoff.
template <class Error, class Attempt, class Classify, class OnTransient>
auto retry(Backoff& backoff, const StopSignal& stop, Attempt&& attempt, Classify&& classify,
           OnTransient&& on_transient) -> decltype(attempt()) {
  for (;;) {
    stop.throw_if_stopping();
    try {
      if constexpr (std::is_void_v<decltype(attempt())>) {
        attempt();
        backoff.reset();
        return;
      } else {
        auto result = attempt();
        backoff.reset();
        return result;
      }
    } catch (const Error& e) {
      if (classify(e) != Failure::transient) throw;
      stop.throw_if_stopping();
      on_transient(e, backoff.next());
    }
    backoff.wait(stop);
  }
}

}  // namespace etld::sink
