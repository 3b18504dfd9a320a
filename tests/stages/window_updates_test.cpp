// emit: updates: one partial per (source partition, window, group) per input batch, carrying
// exactly its inputs' acks and its partition's coordinates, and no state between batches.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "stages/engine/registry.hpp"
#include "tests/support/window_harness.hpp"

namespace etld {
namespace {

using test::contains;
using test::WindowHarness;

std::string at(std::int64_t ms, const std::string& page) {
  return R"({"ts": )" + std::to_string(ms) + R"(, "page": ")" + page + R"("})";
}

std::string shape(Event& e) {
  const Value& r = e.record();
  return r.find("window_start")->as_string() + " " + r.find("page")->as_string() +
         " n=" + std::to_string(r.find("n")->as_int()) + " @" + e.topic.str() + "/" +
         std::to_string(e.partition) + ":" + std::to_string(e.offset);
}

TEST_CASE("updates: a partial per (partition, window, group) of the batch, with exactly its inputs' acks") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, group_by: [page], aggregates: {n: count}})");
  auto out = h.feed({at(1, "a"), at(2, "b"), at(3, "a"), at(60'000, "a")}, 3);
  REQUIRE(out.size() == 3);
  CHECK(shape(out[0]) == "1970-01-01T00:00:00.000Z a n=2 @t/3:2");
  CHECK(shape(out[1]) == "1970-01-01T00:00:00.000Z b n=1 @t/3:1");
  CHECK(shape(out[2]) == "1970-01-01T00:01:00.000Z a n=1 @t/3:3");
  CHECK(out[0].record().find("window_end")->as_string() == "1970-01-01T00:01:00.000Z");
  out[0].ack.settle(AckStatus::done);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(2, AckStatus::done));
  CHECK(h.acks->total() == 2);
  test::settle(out);
  CHECK(h.acks->exactly_once(4, AckStatus::done));

  // The next batch's partials hold only its own events, per partition.
  auto more = h.feed({at(60'001, "a")}, 3);
  auto other = h.feed({at(60'002, "a")}, 4);
  REQUIRE(more.size() == 1);
  REQUIRE(other.size() == 1);
  CHECK(shape(more[0]) == "1970-01-01T00:01:00.000Z a n=1 @t/3:4");
  CHECK(shape(other[0]) == "1970-01-01T00:01:00.000Z a n=1 @t/4:0");
}

TEST_CASE("updates: two partitions in one batch make separate partials") {
  WindowHarness h(R"({window: global, aggregates: {n: count}})");
  Batch in = test::make_events({"{}", "{}", "{}"}, h.acks);
  in[0].topic = in[1].topic = in[2].topic = "t";
  in[0].partition = 0;
  in[1].partition = 1;
  in[2].partition = 0;
  in[0].offset = 10;
  in[1].offset = 5;
  in[2].offset = 11;
  Batch out;
  h.stage->process(in, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].partition == 0);
  CHECK(out[0].offset == 11);
  CHECK(out[0].record().find("n")->as_int() == 2);
  CHECK(out[0].record().find("window_start") == nullptr);
  CHECK(out[1].partition == 1);
  CHECK(out[1].offset == 5);
}

TEST_CASE("updates: late events are rejected; events within the allowance make a partial for their window") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, allowed_lateness: 10s, group_by: [page], aggregates: {n: count}})");
  h.feed({at(69'999, "a")});
  auto out = h.feed({at(59'999, "a"), at(70'000, "a"), at(59'999, "a")});
  REQUIRE(out.size() == 2);
  CHECK(shape(out[0]) == "1970-01-01T00:00:00.000Z a n=1 @t/0:1");
  CHECK(shape(out[1]) == "1970-01-01T00:01:00.000Z a n=1 @t/0:2");
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0], "late: event time 1970-01-01T00:00:59.999Z (59999)"));
  CHECK(h.acks->settled_once(3, AckStatus::dead_lettered));
}

TEST_CASE("updates: the stage declares its columns and per-partition partials") {
  auto factory = test::configure_stage("window", R"({window: sliding, size: 1m, slide: 30s, event_time: ts,
      group_by: [page.name, _key], aggregates: {n: count}})");
  CHECK(factory->partials_per_partition());
  auto columns = factory->output_columns();
  REQUIRE(columns.size() >= 5);
  CHECK(columns[0].name == "window_start");
  CHECK(columns[0].sql_type == "timestamptz");
  CHECK(columns[0].key);
  CHECK(columns[1].name == "window_end");
  CHECK(columns[2].name == "name");
  CHECK(columns[2].sql_type == "text");
  CHECK(columns[3].name == "_key");
  CHECK(columns[4].name == "n");
  CHECK_FALSE(columns[4].key);
  CHECK_FALSE(factory->ack_holding().holds());

  auto global = test::configure_stage("window", R"({window: global, aggregates: {n: count}})");
  CHECK(global->output_columns()[0].name == "n");
  auto results =
      test::configure_stage("window", R"({window: global, aggregates: {n: count}, emit: results})");
  CHECK_FALSE(results->partials_per_partition());
  CHECK(results->ack_holding().until_end_of_input);
  auto timed = test::configure_stage(
      "window", R"({window: tumbling, size: 1s, event_time: ts, aggregates: {n: count}, emit: results})");
  CHECK(timed->ack_holding().until_window_closes);
  auto counted = test::configure_stage(
      "window", R"({window: count, size: 3, aggregates: {n: count}, emit: results, max_groups: 10})");
  CHECK(counted->ack_holding().max_held == 20);
}

}  // namespace
}  // namespace etld
