// InstanceScope and StrandTimer (stages/engine/instance_scope.hpp): what a stage instance posts,
// binds or times does nothing once the instance is gone, including when it was already queued.
#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "stages/engine/instance_scope.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  test::run_until(
      io, [] { return false; }, d);
}

}  // namespace

TEST_CASE("InstanceScope::post runs on the strand while the scope lives, never after it is gone") {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  auto scope = std::make_unique<InstanceScope>(strand);
  int ran = 0;
  bool on_strand = false;
  std::thread([&] { scope->post([&] { ++ran, on_strand = strand.running_in_this_thread(); }); }).join();
  REQUIRE(test::run_until(io, [&] { return ran == 1; }));
  CHECK(on_strand);

  // Posted (from another thread) while alive, run after the scope went.
  std::thread([&] { scope->post([&] { ++ran; }); }).join();
  scope.reset();
  run_for(io, 50ms);
  CHECK(ran == 1);
}

TEST_CASE("a StrandTimer runs once when due; destroyed or cancelled before, never") {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  int ran = 0;
  {
    StrandTimer t(strand);
    t.start(1ms, [&] { ++ran; });
  }
  StrandTimer cancelled(strand);
  cancelled.start(1ms, [&] { ++ran; });
  cancelled.cancel();
  StrandTimer replaced(strand);
  replaced.start(1ms, [&] { ran += 100; });
  replaced.start(2ms, [&] { ++ran; });  // replaces the first wait
  REQUIRE(test::run_until(io, [&] { return ran == 1; }));
  CHECK_FALSE(replaced.armed());
  run_for(io, 20ms);
  CHECK(ran == 1);
}

TEST_CASE("a StrandTimer cancelled or destroyed after its expiry was queued does not run") {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  std::atomic<int> ran{0};
  StrandTimer cancelled(strand);
  auto destroyed = std::make_unique<StrandTimer>(strand);
  boost::asio::steady_timer probe(strand);  // a plain timer due with them: tells when they were queued
  std::size_t probe_cancelled = 1;
  const auto due = std::chrono::steady_clock::now() + 5ms;
  // This holds the strand past the expiries while another thread serves the timers, which
  // queues their completions on the strand behind it; then it cancels and destroys.
  boost::asio::post(strand, [&] {
    cancelled.start_at(due, [&] { ++ran; });
    destroyed->start_at(due, [&] { ++ran; });
    probe.expires_at(due);
    probe.async_wait([](const boost::system::error_code&) {});
    std::this_thread::sleep_until(due + 100ms);
    probe_cancelled = probe.cancel();  // 0: its completion, and theirs, left the timer queue
    cancelled.cancel();
    destroyed.reset();
  });
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  CHECK(probe_cancelled == 0);  // the case under test did happen
  CHECK(ran == 0);
}

TEST_CASE(
    "InstanceScope::bind: a completion handler that runs on the strand, and does nothing once the scope is "
    "gone") {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  auto scope = std::make_unique<InstanceScope>(strand);
  int ran = 0;
  bool on_strand = false;
  boost::system::error_code got = boost::asio::error::timed_out;

  // An I/O object on the plain io_context: the binding still runs the handler on the strand.
  boost::asio::steady_timer on_io(io.get_executor());
  on_io.expires_after(1ms);
  on_io.async_wait(scope->bind([&](const boost::system::error_code& ec) {
    ++ran;
    got = ec;
    on_strand = strand.running_in_this_thread();
  }));
  REQUIRE(test::run_until(io, [&] { return ran == 1; }));
  CHECK(on_strand);
  CHECK_FALSE(got);

  // A callback another component keeps and calls later (as the kafka source's waker does): it is
  // copyable and outlives the scope.
  std::function<void(int)> kept = scope->bind([&](int n) { ran += n; });
  boost::asio::post(strand, [kept] { kept(10); });
  REQUIRE(test::run_until(io, [&] { return ran == 11; }));

  // A wait that completes with success after the scope went (nothing cancelled it).
  boost::asio::steady_timer late(io.get_executor());
  late.expires_after(1ms);
  late.async_wait(scope->bind([&](const boost::system::error_code&) { ++ran; }));
  std::this_thread::sleep_for(5ms);  // due before the scope goes
  scope.reset();
  boost::asio::post(strand, [kept] { kept(100); });
  run_for(io, 50ms);
  CHECK(ran == 11);
}
