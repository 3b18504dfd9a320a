// The progress check that feeds the systemd watchdog: a stage instance holding work without
// progress for a period is wedged; idle stages and stages waiting for demand are not. How long
// each has been stalled (the etld_stage_stalled_seconds metric).
#include "stages/engine/progress.hpp"

#include <doctest/doctest.h>

#include <map>
#include <thread>

#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace etld::test;
using namespace std::chrono_literals;

namespace {
StageStats sample(const std::string& name, std::uint64_t pending, std::uint64_t progress) {
  StageStats s;
  s.name = name;
  s.pending = pending;
  s.progress = progress;
  return s;
}
}  // namespace

TEST_CASE("progress check: holding work without progress for a whole period is wedged, nothing else") {
  ProgressWatch watch(1000ms);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(watch.check({sample("busy", 5, 1), sample("idle", 0, 7)}, t0).empty());
  // Progress moves: healthy however long it runs.
  CHECK(watch.check({sample("busy", 5, 2), sample("idle", 0, 7)}, t0 + 900ms).empty());
  CHECK(watch.check({sample("busy", 5, 3), sample("idle", 0, 7)}, t0 + 1900ms).empty());
  // Holding 5 events with the counter standing still: wedged once a full period has passed.
  CHECK(watch.check({sample("busy", 5, 3), sample("idle", 0, 7)}, t0 + 2800ms).empty());
  auto wedged = watch.check({sample("busy", 5, 3), sample("idle", 0, 7)}, t0 + 2900ms);
  REQUIRE(wedged.size() == 1);
  CHECK(wedged[0].find("stage 'busy' (instance 0) holds 5 unfinished events") != std::string::npos);
  // The idle stage never counted; the busy one recovers as soon as its counter moves.
  CHECK(watch.check({sample("busy", 5, 4), sample("idle", 0, 7)}, t0 + 5000ms).empty());
}

TEST_CASE("progress check: stalls() says how long each instance has held work without progress") {
  ProgressWatch watch(1000ms);
  auto t0 = std::chrono::steady_clock::now();
  auto stalled = [&](std::chrono::steady_clock::time_point now) {
    std::map<std::string, long> out;
    for (const auto& s : watch.stalls(now))
      out[s.stage + "#" + std::to_string(s.instance)] = s.stalled.count();
    return out;
  };
  CHECK(watch.stalls(t0).empty());  // nothing sampled yet
  watch.check({sample("busy", 5, 1), sample("idle", 0, 7)}, t0);
  // Between samples nothing is known: a stage that progresses between them is not stalled.
  CHECK(stalled(t0 + 300ms) == std::map<std::string, long>{{"busy#0", 0}, {"idle#0", 0}});
  watch.check({sample("busy", 5, 2), sample("idle", 0, 7)}, t0 + 500ms);
  CHECK(stalled(t0 + 900ms) == std::map<std::string, long>{{"busy#0", 0}, {"idle#0", 0}});
  // A sample without progress: counted from the last one that saw progress. Holding nothing
  // keeps the idle one at zero however long.
  watch.check({sample("busy", 5, 2), sample("idle", 0, 7)}, t0 + 1000ms);
  CHECK(stalled(t0 + 5500ms) == std::map<std::string, long>{{"busy#0", 5000}, {"idle#0", 0}});
  // Progress again: back to zero at once.
  watch.check({sample("busy", 5, 3), sample("idle", 0, 7)}, t0 + 5600ms);
  CHECK(stalled(t0 + 5700ms) == std::map<std::string, long>{{"busy#0", 0}, {"idle#0", 0}});
  // Once it has nothing left to do, it is not stalled any more.
  watch.check({sample("busy", 0, 2), sample("idle", 0, 7)}, t0 + 6000ms);
  CHECK(stalled(t0 + 9000ms) == std::map<std::string, long>{{"busy#0", 0}, {"idle#0", 0}});
  watch.reset();
  CHECK(watch.stalls(t0 + 9000ms).empty());
}

TEST_CASE(
    "progress check on a live pipeline: a stage blocking its strand is found, and clears when it unblocks") {
  reset_bucket("wedge");
  auto gate = test::gate("wedge");
  Pipeline p(config_from(R"yaml(
threads: 3
stages:
  producer: { type: generate, count: 5000, batch: 100 }
  stuck: { type: test_block, inputs: [producer], gate: wedge, at: 1000, max_demand: 200, min_demand: 100 }
  sink: { type: test_collect, inputs: [stuck], bucket: wedge }
)yaml"));
  ProgressWatch watch(300ms);
  p.start();
  // Until the gate the pipeline flows; sampled like the supervisor does, nothing is wedged.
  while (!gate->reached) {
    CHECK(watch.check(p.stats(), std::chrono::steady_clock::now()).empty());
    std::this_thread::sleep_for(5ms);
  }
  std::vector<std::string> wedged;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (wedged.empty() && std::chrono::steady_clock::now() < deadline) {
    wedged = watch.check(p.stats(), std::chrono::steady_clock::now());
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(wedged.size() == 1);  // the blocked stage only: the source waits for demand, the sink is idle
  CHECK(wedged[0].find("stage 'stuck' (instance 0)") != std::string::npos);
  gate->open();
  REQUIRE(p.wait_for(30s));
  CHECK_FALSE(p.error());
  CHECK(bucket("wedge")->count() == 5000);
  CHECK(watch.check(p.stats(), std::chrono::steady_clock::now()).empty());
}
