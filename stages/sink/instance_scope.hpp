// Posts and timers that die with the sink instance that made them: a completion or a timer
// that fires after the instance is destroyed does nothing, so no hand-made liveness token is
// needed. Both run their function on the instance's strand (stages/engine/stage.hpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace etld::sink {

// Owned by the instance (a member): post() from any thread runs `f` on the strand only while
// the scope is alive. The instance is destroyed on its strand, so `f` never runs half-way
// through or after the destruction.
class InstanceScope {
 public:
  explicit InstanceScope(boost::asio::any_io_executor strand) : strand_(std::move(strand)) {}
  InstanceScope(const InstanceScope&) = delete;
  InstanceScope& operator=(const InstanceScope&) = delete;

  const boost::asio::any_io_executor& strand() const { return strand_; }

  // Thread-safe.
  template <class F>
  void post(F&& f) const {
    boost::asio::post(strand_, [alive = weak_, f = std::forward<F>(f)]() mutable {
      if (alive.lock()) f();
    });
  }

 private:
  boost::asio::any_io_executor strand_;
  std::shared_ptr<int> token_ = std::make_shared<int>(0);
  const std::weak_ptr<int> weak_ = token_;  // copied by post() from other threads, never written
};

// A one-shot timer on the strand. start() replaces a pending wait; cancel() and the timer's
// destruction guarantee the function does not run, even when its expiry was already queued.
// Strand-bound.
class StrandTimer {
 public:
  explicit StrandTimer(const boost::asio::any_io_executor& strand)
      : state_(std::make_shared<State>(strand)) {}
  ~StrandTimer() { cancel(); }
  StrandTimer(const StrandTimer&) = delete;
  StrandTimer& operator=(const StrandTimer&) = delete;

  void start(std::chrono::milliseconds after, std::function<void()> f) {
    start_at(std::chrono::steady_clock::now() + after, std::move(f));
  }
  void start_at(std::chrono::steady_clock::time_point at, std::function<void()> f) {
    const std::uint64_t gen = ++state_->generation;
    state_->armed = true;
    state_->timer.expires_at(at);
    state_->timer.async_wait(
        [weak = std::weak_ptr<State>(state_), gen, f = std::move(f)](const boost::system::error_code& ec) {
          auto state = weak.lock();
          if (ec || !state || gen != state->generation) return;
          state->armed = false;
          f();
        });
  }
  void cancel() {
    ++state_->generation;  // an expiry already queued must not run
    state_->armed = false;
    state_->timer.cancel();
  }
  bool armed() const { return state_->armed; }

 private:
  struct State {
    explicit State(const boost::asio::any_io_executor& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    std::uint64_t generation = 0;
    bool armed = false;
  };
  std::shared_ptr<State> state_;
};

}  // namespace etld::sink
