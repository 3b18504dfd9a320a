// run_case, what `etld test` runs: the real transforms of the registered stage types, driven as
// the transform runner drives them (held events handed on, rejected events passing later stages
// untouched, end of input stage by stage), with what went wrong beyond the data as errors.
#include "daemon/test_run.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;

namespace {

// Drops every event without settling it: what run_case must catch.
class DroppingTransform : public Transform {
 public:
  void process(Batch& in, Batch&) override { in.clear(); }
};
class DroppingFactory : public StageFactory {
 public:
  std::unique_ptr<Transform> make_transform(int) override { return std::make_unique<DroppingTransform>(); }
};
const StageRegistration drop_reg{
    StageType{.name = "test_run_drop",
              .role = Role::transform,
              .summary = "test transform that loses its input",
              .configure = [](const StageConfig&, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                return std::make_unique<DroppingFactory>();
              }}};

StageConfig stage(const std::string& name, const std::string& type, const std::string& options) {
  StageConfig c = test::stage_config(type, options, name);
  c.factory = find_stage_type(type)->configure(c, PipelineConfig{});
  return c;
}

TestCase case_of(const std::vector<std::string>& records) {
  TestCase c;
  c.name = "a case";
  for (std::size_t i = 0; i < records.size(); ++i) {
    TestInput in;
    in.payload = records[i];
    in.partition = 0;
    in.offset = static_cast<std::int64_t>(i);
    c.inputs.push_back(std::move(in));
  }
  return c;
}

std::vector<std::string> texts(std::vector<Event>& events) {
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.record().to_json());
  return out;
}

}  // namespace

TEST_CASE("a flat_map's held outputs are all handed on, and every input is settled") {
  auto explode = stage("explode", "flat_map", "{explode: items, as: item}");
  CaseRun run = run_case(case_of({R"({"id":1,"items":[1,2,3]})", R"({"id":2,"items":[]})"}), {&explode});
  INFO(run.errors.size());
  CHECK(run.errors.empty());
  CHECK(texts(run.outputs) ==
        std::vector<std::string>{R"({"id":1,"item":1})", R"({"id":1,"item":2})", R"({"id":1,"item":3})"});
  CHECK(run.dead_letters.empty());
}

TEST_CASE("an event a stage of a path rejects passes the later stages untouched, with its reason") {
  auto parse = stage("parse", "map", R"({set: {total: "price * 2"}})");
  auto big = stage("big", "filter", R"({where: "total > 5"})");
  CaseRun run =
      run_case(case_of({R"({"price":1})", R"({"price":"x"})", R"({"price":4})", "{oops"}), {&parse, &big});
  CHECK(run.errors.empty());
  CHECK(texts(run.outputs) == std::vector<std::string>{R"({"price":4,"total":8})"});
  REQUIRE(run.dead_letters.size() == 2);
  CHECK(run.dead_letters[0].rejection.rfind("stage 'parse': map: set 'total':", 0) == 0);
  CHECK(run.dead_letters[0].offset == 1);
  CHECK(run.dead_letters[1].value == "{oops");  // the payload's own bytes
  CHECK(run.dead_letters[1].rejection.rfind("stage 'parse': ", 0) == 0);
}

TEST_CASE("end of input flushes a window's open windows and a reduce's groups, stage by stage") {
  auto win = stage("per_minute", "window",
                   "{window: tumbling, size: 1m, event_time: ts, emit: results, group_by: [page], "
                   "aggregates: {views: count}}");
  auto total = stage("total", "reduce", "{aggregates: {windows: count, views: sum(views)}}");
  CaseRun run = run_case(
      case_of({R"({"ts":"2026-12-06T12:00:01Z","page":"a"})", R"({"ts":"2026-12-06T12:00:02Z","page":"a"})",
               R"({"ts":"2026-12-06T12:00:03Z","page":"b"})"}),
      {&win, &total});
  CHECK(run.errors.empty());
  REQUIRE(run.outputs.size() == 1);
  CHECK(run.outputs[0].record().at_path("windows")->to_json() == "2");
  CHECK(run.outputs[0].record().at_path("views")->to_json() == "3");
}

TEST_CASE("a stage that throws, or loses an input without settling it, fails the case") {
  auto boom = stage("run_case_boom", "test_throw", "{at: 2}");
  CaseRun thrown = run_case(case_of({"1", "2"}), {&boom});
  REQUIRE(thrown.errors.size() == 1);
  CHECK(thrown.errors[0] == "stage 'run_case_boom' threw: test_throw: boom at 2");

  auto drop = stage("drop", "test_run_drop", "{}");
  CaseRun lost = run_case(case_of({"1"}), {&drop});
  REQUIRE(lost.errors.size() == 1);
  CHECK(lost.errors[0].rfind("input 1 was dropped without being settled", 0) == 0);
  CHECK(lost.outputs.empty());
}
