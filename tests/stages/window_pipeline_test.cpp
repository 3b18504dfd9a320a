// The window stage in a real pipeline built from YAML: keyed parallelism (concurrency 4 with
// partition_by on the group) gives exactly the single instance's results, and the per-batch
// partials of emit: updates add up to the same results.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/test_stages.hpp"

namespace etld {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> run_window(const std::string& bucket, const std::string& window, int concurrency) {
  test::reset_bucket(bucket);
  std::string yaml = R"(
threads: 2
stages:
  gen: {type: generate, count: 5000, template: '{"k": {{seq % 7}}, "ts": {{seq}}, "v": {{seq % 5}}}', max_demand: 64}
  win:
    type: window
    inputs: [gen]
    concurrency: )" + std::to_string(concurrency) +
                     R"(
    partition_by: k
    max_demand: 50
    event_time: ts
    group_by: [k]
)" + window + R"(
  out: {type: test_collect, inputs: [win], bucket: )" +
                     bucket + R"(}
)";
  Pipeline p(test::config_from(yaml));
  p.start();
  REQUIRE_MESSAGE(p.wait_for(60s), "pipeline did not finish");
  CHECK_FALSE(p.error());
  std::vector<std::string> texts;
  for (auto& r : test::bucket(bucket)->snapshot()) texts.push_back(r.text);
  std::sort(texts.begin(), texts.end());
  return texts;
}

TEST_CASE("concurrency 4 with partition_by on the group gives the single instance's results") {
  const std::string window = R"(    window: tumbling
    size: 100ms
    emit: results
    aggregates: {n: count, total: sum(v), top: max(v)})";
  auto one = run_window("win1", window, 1);
  auto four = run_window("win4", window, 4);
  CHECK(one.size() == 50 * 7);
  CHECK(one == four);
  CHECK(
      std::find(
          one.begin(), one.end(),
          R"({"window_start":"1970-01-01T00:00:00.100Z","window_end":"1970-01-01T00:00:00.200Z","k":3,"n":15,"total":30,"top":4})") !=
      one.end());
}

TEST_CASE("session windows: concurrency 4 equals 1") {
  const std::string window = R"(    window: session
    gap: 10ms
    emit: results
    aggregates: {n: count})";
  auto one = run_window("ses1", window, 1);
  CHECK(one.size() == 7);  // each k every 7ms: closer than the gap, one session each
  CHECK(one == run_window("ses4", window, 4));
}

TEST_CASE("emit: updates: the partials add up to the results") {
  auto results = run_window(
      "res",
      "    window: sliding\n    size: 100ms\n    slide: 50ms\n    emit: results\n    aggregates: {n: count}",
      1);
  auto partials = run_window(
      "upd", "    window: sliding\n    size: 100ms\n    slide: 50ms\n    aggregates: {n: count}", 4);
  std::map<std::string, std::int64_t> summed;
  for (const auto& text : partials) {
    auto v = parse_json(text);
    summed[v.find("window_start")->as_string() + " " + v.find("k")->to_json()] += v.find("n")->as_int();
  }
  std::map<std::string, std::int64_t> expected;
  for (const auto& text : results) {
    auto v = parse_json(text);
    expected[v.find("window_start")->as_string() + " " + v.find("k")->to_json()] = v.find("n")->as_int();
  }
  CHECK(expected.size() == 101 * 7);
  CHECK(summed == expected);
  CHECK(partials.size() > results.size());
}

TEST_CASE("processing time: a window's result reaches the sink when the clock closes it, before input ends") {
  test::reset_bucket("clock");
  Pipeline p(test::config_from(R"(
stages:
  gen: {type: generate, count: 3, rate: 1, batch: 1}
  win: {type: window, inputs: [gen], window: tumbling, size: 200ms, emit: results, aggregates: {n: count}}
  out: {type: test_collect, inputs: [win], bucket: clock}
)"));
  p.start();
  // 3 events at 1/s take 2s; the first window's result arrives while the source is quiet, woken by
  // nothing but the window's timer.
  auto deadline = std::chrono::steady_clock::now() + 900ms;
  while (test::bucket("clock")->count() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  CHECK(test::bucket("clock")->count() > 0);
  REQUIRE(p.wait_for(60s));
  CHECK_FALSE(p.error());
  std::int64_t total = 0;
  for (auto& r : test::bucket("clock")->snapshot()) total += parse_json(r.text).find("n")->as_int();
  CHECK(total == 3);
}

}  // namespace
}  // namespace etld

namespace etld {
namespace {

// The results of `yaml`'s sink, each without the hidden state fields ("name__...").
std::vector<std::string> visible_results(const std::string& bucket, const std::string& yaml) {
  test::reset_bucket(bucket);
  Pipeline p(test::config_from(yaml));
  p.start();
  REQUIRE_MESSAGE(p.wait_for(60s), "pipeline did not finish");
  CHECK_FALSE(p.error());
  std::vector<std::string> out;
  for (auto& r : test::bucket(bucket)->snapshot()) {
    Value v = parse_json(r.text);
    Object kept;
    for (auto& [name, value] : v.as_object())
      if (name.find("__") == std::string::npos) kept.emplace_back(name, value);
    out.push_back(Value(std::move(kept)).to_json());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string departition_pipeline(const std::string& bucket, int concurrency, bool departition) {
  return R"(
threads: 2
stages:
  gen: {type: generate, count: 3000, template: '{"k": {{seq % 3}}, "ts": {{seq}}, "v": {{seq % 11}}, "u": {{seq % 5}}}'}
  win:
    type: window
    inputs: [gen]
    concurrency: )" +
         std::to_string(concurrency) + R"(
    partition_by: v
    window: tumbling
    size: 500ms
    event_time: ts
    group_by: [k]
    emit: results
    aggregates: {n: count, total: sum(v), users: count_distinct(u), mean: avg(v)}
)" +
         (departition ? "  merge: {type: departition, inputs: [win]}\n  out: {type: test_collect, inputs: "
                        "[merge], bucket: " +
                            bucket + "}\n"
                      : "  out: {type: test_collect, inputs: [win], bucket: " + bucket + "}\n");
}

TEST_CASE(
    "departition merges the parts of each (window, group) that partitioned instances hold into the global "
    "result") {
  auto single = visible_results("dep1", departition_pipeline("dep1", 1, false));
  auto parts = visible_results("dep4parts", departition_pipeline("dep4parts", 4, false));
  auto merged = visible_results("dep4", departition_pipeline("dep4", 4, true));
  CHECK(single.size() == 6 * 3);
  CHECK(parts.size() > single.size());  // partitioned by v, each instance holds a part of every group
  CHECK(merged == single);
  const std::string first =
      R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:00:00.500Z","k":0,"n":167,"total":828,"users":5,"mean":)";
  CHECK(std::count_if(single.begin(), single.end(),
                      [&](const std::string& r) { return r.rfind(first, 0) == 0; }) == 1);
}

TEST_CASE("departition needs a window with emit: results and no early triggers") {
  Diagnostics diags("d.yaml");
  auto config = load_pipeline_text(R"(stages:
  gen: {type: generate, count: 10}
  win: {type: window, inputs: [gen], window: global, aggregates: {n: count}}
  merge: {type: departition, inputs: [win]}
  out: {type: "null", inputs: [merge]}
)",
                                   "d.yaml", diags);
  CHECK(config == nullptr);
  CHECK(diags.format().find("d.yaml:4:3: error: departition: window 'win' has emit: updates") !=
        std::string::npos);
}

}  // namespace
}  // namespace etld
