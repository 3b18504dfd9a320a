// A stop request shared between a sink's strand and its blocking worker thread: the strand asks
// once, and the worker's waits (backoff, polling a client library) end at once instead of
// sleeping out their delay. Threading: every method is thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace etld::sink {

// Thrown on the worker thread when a stop interrupted what it was doing: the work in hand is
// left unsettled (its acks settle as failed when it is destroyed).
struct Stopped {};

class StopSignal {
 public:
  void request() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }
  bool stopping() const {
    std::lock_guard lock(mu_);
    return stopping_;
  }
  void throw_if_stopping() const {
    if (stopping()) throw Stopped{};
  }
  // Sleeps for `d` unless a stop comes first; throws Stopped if it did.
  void sleep_for(std::chrono::milliseconds d) const {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopping_; });
    if (stopping_) throw Stopped{};
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace etld::sink
