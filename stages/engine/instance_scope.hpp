// Posts, timers and completion handlers that die with the stage instance that made them: one that
// would run after the instance is destroyed does nothing, so no stage needs a hand-made liveness
// token. All of them run their function on the instance's strand (stages/engine/stage.hpp), where
// the instance is also destroyed, so a function never runs half-way through or after that.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace etld {

// Owned by the instance (a member, made with its strand): what it posts or binds runs only while
// the scope is alive.
class InstanceScope {
 public:
  explicit InstanceScope(boost::asio::any_io_executor strand) : strand_(std::move(strand)) {}
  InstanceScope(const InstanceScope&) = delete;
  InstanceScope& operator=(const InstanceScope&) = delete;

  const boost::asio::any_io_executor& strand() const { return strand_; }

  // Runs `f` on the strand unless the scope is gone by then. Thread-safe.
  template <class F>
  void post(F&& f) const {
    boost::asio::post(strand_, guard(std::forward<F>(f)));
  }

  // `f` as a completion handler that does nothing once the scope is gone: for asynchronous
  // operations (a read on a stream descriptor, a wait) and callbacks another component keeps (the
  // kafka source's waker), whose completion may already be queued when the instance goes, so
  // cancelling the operation is not enough. Its associated executor is the strand, so asio runs
  // it there whatever executor the I/O object has. The handler outlives the scope safely (it is
  // copyable when `f` is), but must be invoked on the strand: through asio, or by a post to it.
  // Thread-safe.
  template <class F>
  auto bind(F&& f) const {
    return boost::asio::bind_executor(strand_, guard(std::forward<F>(f)));
  }

 private:
  template <class F>
  auto guard(F&& f) const {
    return [alive = weak_, f = std::forward<F>(f)](auto&&... args) mutable {
      if (!alive.expired()) f(std::forward<decltype(args)>(args)...);
    };
  }

  boost::asio::any_io_executor strand_;
  std::shared_ptr<int> token_ = std::make_shared<int>(0);
  const std::weak_ptr<int> weak_ = token_;  // copied from other threads, never written
};

// A one-shot timer on the strand. start() replaces a pending wait; cancel() and the timer's
// destruction guarantee the function does not run, even when its expiry was already queued
// (which cancelling a steady_timer does not: its handler then runs with success).
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

}  // namespace etld
