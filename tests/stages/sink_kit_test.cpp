// The sink kit (stages/sink/) without services: batching, bisect, retry, the ratio guard,
// cancellation, and a whole sink written with it (tests/support/memory_sink.hpp).
#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <optional>
#include <set>
#include <thread>

#include "stages/sink/batcher.hpp"
#include "stages/sink/bisect.hpp"
#include "stages/sink/blocking_worker.hpp"
#include "stages/sink/dead_letter.hpp"
#include "stages/sink/ratio_guard.hpp"
#include "stages/sink/retry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/memory_sink.hpp"

using namespace etld;
using namespace std::chrono_literals;

namespace {

using Rows = std::vector<int>;

struct BatcherFixture {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  int due = 0;
  std::optional<sink::Batcher<Rows>> batcher;
  int next = 0;

  explicit BatcherFixture(sink::BatchLimits limits) {
    batcher.emplace(
        strand, limits, [] { return std::make_unique<Rows>(); }, [this] { ++due; });
  }
  void add(int n, std::size_t bytes = 1) {
    for (int i = 0; i < n; ++i) {
      batcher->open().push_back(next++);
      batcher->added(1, bytes);
    }
  }
  Rows take() {
    auto b = batcher->take_ready();
    return b ? *b : Rows{};
  }
};

}  // namespace

TEST_CASE("batcher cuts batches at max_rows and keeps the rest until they are due") {
  BatcherFixture f({.max_rows = 3, .max_bytes = 0, .linger = 1h, .credit_limit = 100});
  f.add(7);
  CHECK(f.take() == Rows{0, 1, 2});
  CHECK(f.take() == Rows{3, 4, 5});
  CHECK(f.take().empty());  // one row, not full, linger far away
  CHECK(f.batcher->rows() == 1);
  f.batcher->drain();
  CHECK(f.take() == Rows{6});
  CHECK(f.batcher->empty());
}

TEST_CASE("batcher cuts a batch once it reaches max_bytes") {
  BatcherFixture f({.max_rows = 1000, .max_bytes = 10, .linger = 1h, .credit_limit = 1000});
  f.add(5, 4);  // 4, 8, 12 bytes: the third row fills the first batch
  CHECK(f.take() == Rows{0, 1, 2});
  CHECK(f.take().empty());
  f.add(1, 4);
  CHECK(f.take() == Rows{3, 4, 5});
}

TEST_CASE("batcher: a batch is due after the linger time, or at once when the credit is all in") {
  BatcherFixture f({.max_rows = 1000, .max_bytes = 0, .linger = 30ms, .credit_limit = 5});
  f.add(2);
  CHECK(f.take().empty());
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::run_until(f.io, [&] { return f.due == 1; }));
  CHECK(std::chrono::steady_clock::now() - t0 >= 25ms);
  CHECK(f.take() == Rows{0, 1});
  f.add(5);  // the sink holds all the credit upstream has: nothing more can come
  CHECK(f.take() == Rows{2, 3, 4, 5, 6});
  test::run_idle(f.io);
  CHECK(f.due == 1);  // the linger of a batch taken early does not fire
}

TEST_CASE("bisect finds exactly the bad records and writes every good one once, in order") {
  const std::set<std::size_t> bad_ones{0, 3, 50, 51, 99};
  std::vector<std::size_t> written, found;
  int attempts = 0;
  auto write = [&](std::size_t lo, std::size_t hi) -> std::optional<std::string> {
    ++attempts;
    for (auto i = lo; i < hi; ++i)
      if (bad_ones.count(i)) return "bad " + std::to_string(i);
    for (auto i = lo; i < hi; ++i) written.push_back(i);
    return std::nullopt;
  };
  auto bad = [&](std::size_t i, std::string&& why) {
    CHECK(why == "bad " + std::to_string(i));
    found.push_back(i);
  };
  sink::bisect(0, 100, write, bad);
  CHECK(std::set<std::size_t>(found.begin(), found.end()) == bad_ones);
  CHECK(found.size() == bad_ones.size());
  CHECK(written.size() == 95);
  CHECK(std::is_sorted(written.begin(), written.end()));
  CHECK(attempts < 100);  // slices, not one write per record

  attempts = 0;
  written.clear();
  found.clear();
  sink::bisect(0, 0, write, bad);
  sink::bisect(5, 50, write, bad);  // no bad record: one write
  CHECK(attempts == 1);
  CHECK(written.size() == 45);
}

TEST_CASE("retry retries transient failures with doubling backoff; permanent ones propagate at once") {
  struct Err {
    sink::Failure kind;
  };
  sink::StopSignal stop;
  sink::Backoff backoff(2ms, 5ms);
  std::vector<long> delays;
  int calls = 0;
  auto classify = [](const Err& e) { return e.kind; };
  auto on_transient = [&](const Err&, std::chrono::milliseconds d) { delays.push_back(d.count()); };
  int got = sink::retry<Err>(
      backoff, stop,
      [&] {
        if (++calls <= 4) throw Err{sink::Failure::transient};
        return 42;
      },
      classify, on_transient);
  CHECK(got == 42);
  CHECK(delays == std::vector<long>{2, 4, 5, 5});  // capped at max
  CHECK(backoff.next() == 2ms);                    // reset by the success

  calls = 0;
  delays.clear();
  for (auto kind : {sink::Failure::bad_data, sink::Failure::fatal}) {
    CHECK_THROWS_AS(sink::retry<Err>(
                        backoff, stop, [&] { ++calls, throw Err{kind}; }, classify, on_transient),
                    Err);
  }
  CHECK(calls == 2);
  CHECK(delays.empty());
}

TEST_CASE("a stop ends a backoff wait at once") {
  sink::StopSignal stop;
  sink::Backoff backoff(1h, 1h);
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request();
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(
      sink::retry<int>(
          backoff, stop, [] { throw 1; }, [](int) { return sink::Failure::transient; }, [](int, auto) {}),
      sink::Stopped);
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
}

TEST_CASE("the ratio guard trips on a bad batch or a bad window, and its action decides") {
  sink::DeadLetterRatioGuard g(0.5, sink::GuardAction::pause);
  CHECK(g.check(100, 50, "t", "e").empty());  // not more than half
  const std::string why = g.check(100, 51, "t", "first");
  CHECK(why.find("51 of 100 records in a batch") != std::string::npos);
  CHECK(why.find("could not be written to t") != std::string::npos);
  CHECK(why.find("first error: first") != std::string::npos);
  CHECK(g.check(99, 99, "t", "e").empty());  // too small a batch alone

  sink::DeadLetterRatioGuard window(0.5, sink::GuardAction::stop);
  int tripped_at = -1;
  for (int i = 0; i < 20 && tripped_at < 0; ++i)
    if (!window.check(50, 30, "t", "e").empty()) tripped_at = i;
  CHECK(tripped_at == 19);  // the 1000th record: 600 of 1000 bad

  sink::DeadLetterRatioGuard off(1.0, sink::GuardAction::stop);
  CHECK(off.check(100, 100, "t", "e").empty());

  auto& log = test::null_logger();
  CHECK(sink::DeadLetterRatioGuard(0.5, sink::GuardAction::pause).act(why, log) == sink::GuardVerdict::hold);
  CHECK(sink::DeadLetterRatioGuard(0.5, sink::GuardAction::stop).act(why, log) == sink::GuardVerdict::stop);
  CHECK(sink::DeadLetterRatioGuard(0.5, sink::GuardAction::alert).act(why, log) ==
        sink::GuardVerdict::dead_letter);
}

TEST_CASE("a worker destroyed mid-job interrupts it and its completion never runs") {
  boost::asio::io_context io;
  test::Strand strand = boost::asio::make_strand(io);
  sink::StopSignal stop;
  std::atomic<bool> started{false}, interrupted{false};
  bool completed = false;
  auto worker = std::make_unique<sink::BlockingWorker>(strand, stop, [&] { interrupted = true; });
  worker->start();
  worker->submit(
      [&] {
        started = true;
        stop.sleep_for(1h);  // a blocking call that only a stop ends
      },
      [&] { completed = true; });
  CHECK(worker->busy());
  while (!started) std::this_thread::sleep_for(1ms);
  worker.reset();  // joins: the job ended by Stopped
  CHECK(interrupted);
  test::run_until(
      io, [] { return false; }, 20ms);
  CHECK_FALSE(completed);
}

TEST_CASE("a sink written with the kit: batches, retries, bisects and dead-letters the bad records") {
  boost::asio::io_context io;
  test::FakeSinkContext ctx(io);
  auto table = std::make_shared<test::MemoryTable>();
  table->transient_failures = 2;
  auto dead = std::make_shared<test::MemoryDeadLetters>();
  test::MemorySinkOptions options;
  options.limits = {.max_rows = 4, .max_bytes = 0, .linger = 10ms, .credit_limit = 100};
  auto sink = test::make_memory_sink(options, table, dead);
  auto acks = std::make_shared<test::RecordingAcks>();
  ctx.start(*sink);
  ctx.consume(*sink, test::make_events({"a", "b", "bad1", "c", "d", "e", "bad2", "f", "g"}, acks));
  ctx.drain(*sink);
  REQUIRE(test::run_until(io, [&] { return ctx.drained_calls == 1; }));
  CHECK(ctx.done_total == 9);
  CHECK(table->rows() == std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"});
  CHECK(dead->reasons() == std::vector<std::string>{"bad1: refused bad1", "bad2: refused bad2"});
  CHECK(acks->count(AckStatus::done) == 7);
  CHECK(acks->settled_once(2, AckStatus::dead_lettered));
  CHECK(acks->settled_once(6, AckStatus::dead_lettered));
  CHECK(acks->total() == 9);
  CHECK(ctx.violations == 0);
}

TEST_CASE("a sink written with the kit: the tripped guard holds the bad records (pause)") {
  boost::asio::io_context io;
  test::FakeSinkContext ctx(io);
  auto table = std::make_shared<test::MemoryTable>();
  auto dead = std::make_shared<test::MemoryDeadLetters>();
  std::vector<std::string> values(100, "bad");
  for (std::size_t i = 0; i < 40; ++i) values[i] = "ok";
  test::MemorySinkOptions options;
  options.limits = {.max_rows = 100, .max_bytes = 0, .linger = 1h, .credit_limit = 1000};
  options.max_dead_letter_ratio = 0.5;
  auto sink = test::make_memory_sink(options, table, dead);
  auto acks = std::make_shared<test::RecordingAcks>();
  ctx.start(*sink);
  ctx.consume(*sink, test::make_events(values, acks));
  REQUIRE(test::run_until(io, [&] { return ctx.done_total == 100; }));
  CHECK(acks->count(AckStatus::failed) == 60);
  CHECK(acks->count(AckStatus::done) == 40);
  CHECK(dead->reasons().empty());
  CHECK(ctx.error == nullptr);
}

TEST_CASE("dead letters go to each destination in order; a retried one does not resend to the others") {
  struct Destination final : sink::DeadLetterDestination {
    explicit Destination(std::string name, int failures = 0, bool fatal = false)
        : name(std::move(name)), failures(failures), fatal(fatal) {}
    std::string describe() const override { return name; }
    std::string write(const std::vector<sink::DeadLetter>& letters, const sink::StopSignal&) override {
      ++calls;
      if (fatal) throw FatalStageError(name + " is misconfigured");
      if (failures > 0) return "unavailable " + std::to_string(failures--);
      for (const auto& l : letters) held.push_back(l.event->value + ": " + l.reason);
      return {};
    }
    std::string name;
    int failures;
    bool fatal;
    int calls = 0;
    std::vector<std::string> held;
  };
  Event a, b;
  a.value = "a";
  b.value = "b";
  const std::vector<sink::DeadLetter> letters{{&a, "too long", ""}, {&b, "not a number", "22P02"}};
  Destination topic("topic"), table("table", 2);
  sink::StopSignal stop;
  sink::Backoff backoff(1ms, 2ms);
  std::vector<std::string> retried;
  sink::write_dead_letters({&topic, nullptr, &table}, letters, backoff, stop,
                           [&](const sink::DeadLetterDestination& d, const std::string& error, auto) {
                             retried.push_back(d.describe() + ": " + error);
                           });
  CHECK(topic.calls == 1);  // not sent again while the table was retried
  CHECK(topic.held == std::vector<std::string>{"a: too long", "b: not a number"});
  CHECK(table.calls == 3);
  CHECK(table.held == topic.held);
  CHECK(retried == std::vector<std::string>{"table: unavailable 2", "table: unavailable 1"});

  Destination broken("broken", 0, true), after("after");
  CHECK_THROWS_WITH_AS(sink::write_dead_letters({&broken, &after}, letters, backoff, stop, [](auto&&...) {}),
                       "broken is misconfigured", FatalStageError);
  CHECK(after.calls == 0);
}
