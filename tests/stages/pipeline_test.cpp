// The engine end to end inside one process: real thread pool, strands, credits, dispatchers.
#include "stages/engine/pipeline.hpp"

#include <doctest/doctest.h>

#include <map>
#include <thread>

#include "stages/engine/value.hpp"
#include "tests/support/test_stages.hpp"

using namespace etld;
using namespace etld::test;
using namespace std::chrono_literals;

namespace {
std::optional<std::string> run_to_end(const std::string& yaml, std::vector<StageStats>* stats = nullptr) {
  Pipeline p(config_from(yaml));
  p.start();
  REQUIRE_MESSAGE(p.wait_for(60s), "pipeline did not finish");
  if (stats) *stats = p.stats();
  return p.error();
}
const StageStats& stage(const std::vector<StageStats>& all, const std::string& name, int instance = 0) {
  for (const auto& s : all)
    if (s.name == name && s.instance == instance) return s;
  throw std::runtime_error("no stage " + name);
}
}  // namespace

TEST_CASE("a counter producer emits 0, 1, 2, ... under demand, never beyond max_demand") {
  reset_bucket("counter");
  auto error = run_to_end(R"yaml(
threads: 2
stages:
  producer: { type: generate, count: 25 }
  consumer: { type: test_collect, inputs: [producer], bucket: counter, max_demand: 3, min_demand: 1 }
)yaml");
  CHECK_FALSE(error);
  auto got = bucket("counter")->snapshot();
  REQUIRE(got.size() == 25);
  for (int i = 0; i < 25; ++i) CHECK(got[static_cast<std::size_t>(i)].text == std::to_string(i));
  for (auto n : bucket("counter")->sizes()) CHECK(n <= 3);
  CHECK(bucket("counter")->max_held <= 3);
}

TEST_CASE("min_demand sets when more is asked: batches stay within max - min after the first grant") {
  reset_bucket("min");
  auto error = run_to_end(R"yaml(
threads: 1
stages:
  producer: { type: generate, count: 1000 }
  consumer: { type: test_collect, inputs: [producer], bucket: min, max_demand: 100, min_demand: 75, delay: 1ms }
)yaml");
  CHECK_FALSE(error);
  auto sizes = bucket("min")->sizes();
  REQUIRE(sizes.size() > 2);
  // The first grant is max_demand; every later grant is (max - min) = 25 events.
  for (std::size_t i = 1; i < sizes.size(); ++i) CHECK(sizes[i] <= 100);
  std::size_t total = 0;
  for (auto n : sizes) total += n;
  CHECK(total == 1000);
  CHECK(bucket("min")->max_held <= 100);
}

TEST_CASE("the seed's numbers 1..1000, doubled, partitioned over 4 reducers, sum to 1001000") {
  reset_bucket("sums");
  auto error = run_to_end(R"yaml(
stages:
  numbers: { type: generate, start: 1, count: 1000 }
  double: { type: map, inputs: [numbers], set: { ".": ". * 2" } }
  sum:
    type: reduce
    inputs: [double]
    concurrency: 4
    partition_by: "."
    aggregates: { total: "sum(.)", n: count }
  out: { type: test_collect, inputs: [sum], bucket: sums }
)yaml");
  CHECK_FALSE(error);
  auto got = bucket("sums")->snapshot();
  REQUIRE(got.size() == 4);
  std::int64_t total = 0, n = 0;
  for (auto& r : got) {
    auto v = parse_json(r.text);
    total += v.find("total")->as_int();
    n += v.find("n")->as_int();
  }
  CHECK(total == 1001000);
  CHECK(n == 1000);
}

TEST_CASE("partition_by keeps per-key order across parallel instances end to end") {
  reset_bucket("order");
  auto error = run_to_end(R"yaml(
threads: 2
stages:
  gen: { type: generate, count: 6000, template: '{"k": {{seq % 13}}, "n": {{seq}}}', max_demand: 50 }
  touch:
    type: map
    inputs: [gen]
    concurrency: 3
    partition_by: k
    max_demand: 40
    set: { m: "n * 2" }
  out: { type: test_collect, inputs: [touch], bucket: order, concurrency: 4, partition_by: k, max_demand: 30 }
)yaml");
  CHECK_FALSE(error);
  auto got = bucket("order")->snapshot();
  REQUIRE(got.size() == 6000);
  std::map<std::int64_t, std::int64_t> last;
  std::map<std::int64_t, int> instance_of;
  for (auto& r : got) {
    auto v = parse_json(r.text);
    auto k = v.find("k")->as_int(), n = v.find("n")->as_int();
    CHECK(v.find("m")->as_int() == n * 2);
    if (last.count(k)) CHECK(n > last[k]);
    last[k] = n;
    if (instance_of.count(k)) CHECK(instance_of[k] == r.instance);
    instance_of[k] = r.instance;
  }
  CHECK(last.size() == 13);
}

TEST_CASE("broadcast fan-out gives every stage every event; demand dispatch splits them") {
  reset_bucket("fan_a");
  reset_bucket("fan_b");
  reset_bucket("lb_a");
  reset_bucket("lb_b");
  CHECK_FALSE(run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 500 }
  a: { type: test_collect, inputs: [gen], bucket: fan_a, max_demand: 10 }
  b: { type: test_collect, inputs: [gen], bucket: fan_b, max_demand: 100, delay: 1ms }
)yaml"));
  CHECK(bucket("fan_a")->count() == 500);
  CHECK(bucket("fan_b")->count() == 500);
  CHECK_FALSE(run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 500, dispatch: demand }
  a: { type: test_collect, inputs: [gen], bucket: lb_a, max_demand: 10, delay: 1ms }
  b: { type: test_collect, inputs: [gen], bucket: lb_b, max_demand: 10, delay: 1ms }
)yaml"));
  // Each consumer holds every batch (at most 10 events) for 1 ms: whichever subscribes first
  // needs at least 50 ms for all 500, long enough for the other's demand to arrive on a loaded
  // machine (sanitizers, parallel builds), where it once came too late.
  CHECK(bucket("lb_a")->count() + bucket("lb_b")->count() == 500);
  CHECK(bucket("lb_a")->count() > 0);
  CHECK(bucket("lb_b")->count() > 0);
}

TEST_CASE("fan-in: a sink with two inputs gets both streams and drains after both end") {
  reset_bucket("fanin");
  CHECK_FALSE(run_to_end(R"yaml(
stages:
  a: { type: generate, count: 300 }
  b: { type: generate, start: 1000, count: 200 }
  out: { type: test_collect, inputs: [a, b], bucket: fanin }
)yaml"));
  CHECK(bucket("fanin")->count() == 500);
}

TEST_CASE("a consumer 100x slower than its producer keeps every buffer within its bound") {
  reset_bucket("slow");
  Pipeline p(config_from(R"yaml(
threads: 2
stages:
  gen: { type: generate, max_demand: 200 }
  step: { type: map, inputs: [gen], set: { ".": ". + 1" }, max_demand: 100, buffer_size: 100 }
  out: { type: test_collect, inputs: [step], bucket: slow, max_demand: 50, min_demand: 25, delay: 5ms }
)yaml"));
  p.start();
  std::uint64_t max_inflight = 0, max_buffered = 0;
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(10ms);
    auto st = p.stats();
    auto produced = stage(st, "gen").events_out;
    std::uint64_t settled;
    {
      auto b = bucket("slow");
      std::lock_guard lock(b->mu);
      settled = b->events.size() - b->held;
    }
    max_inflight = std::max(max_inflight, produced - std::min(produced, settled));
    for (auto& s : st) max_buffered = std::max(max_buffered, s.buffered);
  }
  p.stop();
  REQUIRE(p.wait_for(30s));
  CHECK_FALSE(p.error());
  // Credits along the path: sink 50 + map's subscription 100 + map's output buffer 100 (+ one
  // batch in hand). The producer was never more than that ahead, however long it ran.
  CHECK(max_inflight <= 50 + 100 + 100 + 100);
  CHECK(max_buffered <= 100 + 100);
  CHECK(bucket("slow")->max_held <= 50);
  auto st = p.stats();
  CHECK(stage(st, "gen").events_out == bucket("slow")->count());  // drained: nothing in between lost
}

TEST_CASE("flat_map hands on its outputs as a slow consumer asks, then ends after the last of them") {
  reset_bucket("exploded");
  std::vector<StageStats> st;
  auto error = run_to_end(R"yaml(
threads: 2
stages:
  gen: { type: generate, count: 100, template: '{"xs": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39]}' }
  each: { type: flat_map, inputs: [gen], explode: xs, max_outputs: 30, max_demand: 10 }
  out: { type: test_collect, inputs: [each], bucket: exploded, max_demand: 20, min_demand: 10, delay: 1ms }
)yaml",
                          &st);
  CHECK_FALSE(error);
  // 30 outputs and one dead letter (the 10 elements past max_outputs) per input.
  CHECK(bucket("exploded")->count() == 100 * 30);
  CHECK(bucket("exploded")->max_held <= 20);
  CHECK(stage(st, "each").dead_lettered == 100);
  CHECK(stage(st, "each").buffered == 0);
}

TEST_CASE("stop drains: every event the source emitted reaches the sink") {
  reset_bucket("drain");
  Pipeline p(config_from(R"yaml(
stages:
  gen: { type: generate }
  m: { type: map, inputs: [gen], concurrency: 2, set: { ".": ". * 1" } }
  out: { type: test_collect, inputs: [m], bucket: drain, delay: 1ms }
)yaml"));
  p.start();
  std::this_thread::sleep_for(200ms);
  p.stop();
  REQUIRE(p.wait_for(30s));
  CHECK_FALSE(p.error());
  auto st = p.stats();
  auto emitted = stage(st, "gen").events_out;
  CHECK(emitted > 0);
  CHECK(bucket("drain")->count() == emitted);
}

TEST_CASE("a throwing transform is restarted per policy; its failed batch is reported, not lost silently") {
  SUBCASE("transient: restarted, the rest flows, the failure is reported at the end") {
    reset_bucket("restart1");
    std::vector<StageStats> st;
    auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 100, max_demand: 10 }
  boom: { type: test_throw, inputs: [gen], at: 50, times: 1, max_demand: 10, restart_backoff: 10ms }
  out: { type: test_collect, inputs: [boom], bucket: restart1, max_demand: 10 }
)yaml",
                            &st);
    CHECK(stage(st, "boom").restarts == 1);
    auto failed = stage(st, "boom").failed;
    CHECK(failed >= 1);
    CHECK(bucket("restart1")->count() == 100 - failed);
    REQUIRE(error);
    CHECK(error->find("not acknowledged") != std::string::npos);
  }
  SUBCASE("too many failures stop the pipeline with the stage's error") {
    reset_bucket("restart2");
    auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 1000, max_demand: 10 }
  boom2: { type: test_throw, inputs: [gen], at: 5, times: 1000, max_restarts: 2, restart_backoff: 1ms, max_demand: 1, min_demand: 0 }
  out: { type: test_collect, inputs: [boom2], bucket: restart2 }
)yaml");
    REQUIRE(error);
    CHECK(error->find("stage 'boom2' failed 3 times") != std::string::npos);
    CHECK(error->find("boom at 5") != std::string::npos);
  }
  SUBCASE("a FatalStageError is not restarted, whatever the policy") {
    reset_bucket("restart4");
    std::vector<StageStats> st;
    auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 100 }
  boom4: { type: test_throw, inputs: [gen], at: 3, fatal: true, restart: permanent }
  out: { type: test_collect, inputs: [boom4], bucket: restart4 }
)yaml",
                            &st);
    REQUIRE(error);
    CHECK(error->find("stage 'boom4' failed (not restartable): test_throw: fatal boom at 3") !=
          std::string::npos);
    CHECK(stage(st, "boom4").restarts == 0);
  }
  SUBCASE("temporary: not restarted") {
    reset_bucket("restart3");
    auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 100 }
  boom3: { type: test_throw, inputs: [gen], at: 3, restart: temporary }
  out: { type: test_collect, inputs: [boom3], bucket: restart3 }
)yaml");
    REQUIRE(error);
    CHECK(error->find("restart: temporary") != std::string::npos);
  }
}

TEST_CASE("a sink that fails its events holds back the source's done prefix and is reported") {
  reset_bucket("failing");
  auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 10 }
  out: { type: test_collect, inputs: [gen], bucket: failing, status: failed }
)yaml");
  CHECK(bucket("failing")->count() == 10);
  (void)error;  // generic sources only count failures; the kafka source pauses or stops on them
}

TEST_CASE("restart: permanent restarts a source that ends, up to max_restarts") {
  reset_bucket("permanent");
  auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 5, restart: permanent, max_restarts: 2, restart_backoff: 1ms }
  out: { type: test_collect, inputs: [gen], bucket: permanent }
)yaml");
  // Three runs of the source (the first and two restarts), then the pipeline gives up loudly.
  CHECK(bucket("permanent")->count() == 15);
  REQUIRE(error);
  CHECK(error->find("source ended (restart: permanent)") != std::string::npos);
}

TEST_CASE(
    "a rejected event passes later transforms untouched and is settled by a sink without dead letters") {
  reset_bucket("rejects");
  std::vector<StageStats> st;
  auto error = run_to_end(R"yaml(
stages:
  gen: { type: generate, count: 10, template: '{"x": {{seq}}}' }
  divide: { type: map, inputs: [gen], set: { y: "x / (x - 3)" } }
  again: { type: map, inputs: [divide], set: { z: "y + 1" } }
  out: { type: test_collect, inputs: [again], bucket: rejects }
)yaml",
                          &st);
  CHECK_FALSE(error);  // dead-lettered counts as done: nothing failed
  auto got = bucket("rejects")->snapshot();
  CHECK(got.size() == 9);
  for (auto& r : got) CHECK(parse_json(r.text).find("z") != nullptr);
  CHECK(stage(st, "again").events_in == 10);  // it saw the rejected event, and passed it on
}
