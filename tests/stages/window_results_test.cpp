// emit: results on hand-made event sequences, one instance driven directly with test clocks:
// each window type's exact output, out-of-order events, lateness to the millisecond, session gap
// boundaries, early triggers, idle partitions, the state caps with their metric, and the acks a
// final result carries.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/window_harness.hpp"

namespace etld {
namespace {

using namespace std::chrono_literals;
using test::contains;
using test::texts;
using test::WindowHarness;

std::string at(std::int64_t ms) { return R"({"ts": )" + std::to_string(ms) + "}"; }
std::string at(std::int64_t ms, const std::string& group) {
  return R"({"ts": )" + std::to_string(ms) + R"(, "g": ")" + group + R"("})";
}

TEST_CASE("tumbling by event time: out-of-order events fold in, the watermark closes the window, exactly") {
  WindowHarness h(R"(
window: tumbling
size: 1m
event_time: ts
group_by: [page]
aggregates: {n: count}
emit: results
)");
  auto first = h.feed({R"({"ts": "2026-12-06T12:00:10Z", "page": "a"})",
                       R"({"ts": "2026-12-06T12:00:50Z", "page": "a"})",
                       R"({"ts": "2026-12-06T12:00:05.250+00:00", "page": "b"})"});
  CHECK(first.empty());  // the watermark (12:00:50) has not reached 12:01
  auto closed = h.feed({R"({"ts": "2026-12-06T13:01:00+01:00", "page": "a"})"});  // 12:01:00Z
  CHECK(
      texts(closed) ==
      std::vector<std::string>{
          R"({"window_start":"2026-12-06T12:00:00.000Z","window_end":"2026-12-06T12:01:00.000Z","page":"a","n":2})",
          R"({"window_start":"2026-12-06T12:00:00.000Z","window_end":"2026-12-06T12:01:00.000Z","page":"b","n":1})"});
  // Nothing settles before the results do; then exactly the window's three inputs.
  CHECK(h.acks->total() == 0);
  test::settle(closed);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(1, AckStatus::done));
  CHECK(h.acks->settled_once(2, AckStatus::done));
  CHECK(h.acks->total() == 3);

  CHECK(h.feed({R"({"ts": "2026-12-06T12:00:59.999Z", "page": "a"})"}).empty());
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0], "stage 'win': late: event time 2026-12-06T12:00:59.999Z"));
  CHECK(h.metric("etld_window_late_records_total") == "1");

  auto rest = h.finish();
  CHECK(
      texts(rest) ==
      std::vector<std::string>{
          R"({"window_start":"2026-12-06T12:01:00.000Z","window_end":"2026-12-06T12:02:00.000Z","page":"a","n":1})"});
  test::settle(rest);
  CHECK(h.acks->total() == 5);
}

TEST_CASE(
    "allowed_lateness to the millisecond: end + lateness - 1 still updates the window, end + lateness is "
    "late") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, allowed_lateness: 10s, aggregates: {n: count}, emit: results})");
  // The watermark 69999 = end 60000 + 10000 - 1: the window [0, 60000) is still open.
  auto out = h.feed({at(0), at(69'999), at(59'999)});
  CHECK(out.empty());
  CHECK(h.rejections.empty());
  // 70000 closes it: the same event time is now late, in the same batch and after.
  out = h.feed({at(70'000), at(59'999)});
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","n":2})"});
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0],
                 "late: event time 1970-01-01T00:00:59.999Z (59999) belongs to window "
                 "[1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z)"));
  CHECK(contains(h.rejections[0], "watermark 1970-01-01T00:01:10.000Z (70000)"));
  CHECK(contains(h.rejections[0], "allowed_lateness 10000ms"));
  CHECK(h.acks->settled_once(4, AckStatus::dead_lettered));
  CHECK(texts(h.finish()) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:01:00.000Z","window_end":"1970-01-01T00:02:00.000Z","n":2})"});
}

TEST_CASE(
    "sliding: an event counts in every window that holds it; each input settles once its last window's "
    "result does") {
  WindowHarness h(
      R"({window: sliding, size: 10s, slide: 5s, event_time: ts, aggregates: {n: count}, emit: results})");
  auto closed = h.feed({at(7000), at(12'000)});  // the watermark 12000 closes [0, 10000)
  CHECK(texts(closed) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:00:10.000Z","n":1})"});
  auto out = h.finish();
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:05.000Z","window_end":"1970-01-01T00:00:15.000Z","n":2})",
            R"({"window_start":"1970-01-01T00:00:10.000Z","window_end":"1970-01-01T00:00:20.000Z","n":1})"});
  REQUIRE(out.size() == 2);
  closed[0].ack.settle(AckStatus::done);
  CHECK(h.acks->total() == 0);  // 7000 is also in [5000, 15000)
  out[0].ack.settle(AckStatus::done);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->total() == 1);  // 12000 waits for [10000, 20000)
  out[1].ack.settle(AckStatus::done);
  CHECK(h.acks->exactly_once(2, AckStatus::done));
}

TEST_CASE("session gap boundary: gap - 1 joins the session, gap starts a new one") {
  WindowHarness h(
      R"({window: session, gap: 10s, event_time: ts, group_by: [g], aggregates: {n: count}, emit: results})");
  auto out = h.feed({at(0, "u"), at(9999, "u"), at(19'999, "u")});
  // 19999 = last 9999 + gap: a new session, and the watermark 19999 closes the first at its end.
  CHECK(
      texts(out) ==
      std::vector<std::string>{
          R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:00:19.999Z","g":"u","n":2})"});
  CHECK(
      texts(h.finish()) ==
      std::vector<std::string>{
          R"({"window_start":"1970-01-01T00:00:19.999Z","window_end":"1970-01-01T00:00:29.999Z","g":"u","n":1})"});
}

TEST_CASE("session: an event closer than the gap to two open sessions merges them, with their acks") {
  WindowHarness h(
      R"({window: session, gap: 10s, event_time: ts, allowed_lateness: 10s, group_by: [g], aggregates: {n: count}, emit: results})");
  CHECK(h.feed({at(0, "u"), at(15'000, "u"), at(1000, "v")}).empty());
  CHECK(h.feed({at(7000, "u")}).empty());  // within 10s of 0 and of 15000
  auto out = h.finish();
  CHECK(
      texts(out) ==
      std::vector<std::string>{
          R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:00:25.000Z","g":"u","n":3})",
          R"({"window_start":"1970-01-01T00:00:01.000Z","window_end":"1970-01-01T00:00:11.000Z","g":"v","n":1})"});
  out[0].ack.settle(AckStatus::done);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(1, AckStatus::done));
  CHECK(h.acks->settled_once(3, AckStatus::done));
  CHECK(h.acks->total() == 3);
}

TEST_CASE("count windows: every size events of a group, numbered from 0; the rest at end of input") {
  WindowHarness h(R"({window: count, size: 2, group_by: [g], aggregates: {n: count}, emit: results})");
  auto out = h.feed({R"({"g": "a"})", R"({"g": "b"})", R"({"g": "a"})", R"({"g": "a"})"});
  CHECK(texts(out) == std::vector<std::string>{R"({"window":0,"g":"a","n":2})"});
  CHECK(texts(h.finish()) ==
        std::vector<std::string>{R"({"window":1,"g":"a","n":1})", R"({"window":0,"g":"b","n":1})"});
}

TEST_CASE("global: one result per group at end of input, without window fields") {
  WindowHarness h(R"({window: global, group_by: [g], aggregates: {n: count}, emit: results})");
  CHECK(h.feed({R"({"g": "a"})", R"({"g": "b"})", R"({"g": "a"})"}).empty());
  auto out = h.finish();
  CHECK(texts(out) == std::vector<std::string>{R"({"g":"a","n":2})", R"({"g":"b","n":1})"});
  test::settle(out);
  CHECK(h.acks->exactly_once(3, AckStatus::done));
}

TEST_CASE("trigger_every_events: the window's current result every N events, state kept, no acks carried") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, aggregates: {n: count}, emit: results, trigger_every_events: 2})");
  auto out = h.feed({at(1), at(2), at(3)});
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","n":2})"});
  CHECK_FALSE(out[0].ack.pending());
  out = h.feed({at(4)});
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","n":4})"});
  auto last = h.finish();
  CHECK(texts(last) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","n":4})"});
  test::settle(last);
  CHECK(h.acks->exactly_once(4, AckStatus::done));
}

TEST_CASE("trigger_every: the windows updated since the last trigger emit their current result") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, group_by: [g], aggregates: {n: count}, emit: results,
                      trigger_every: 1s})");
  CHECK(h.feed({at(1, "a"), at(2, "b")}).empty());
  auto early = h.clock(true);
  CHECK(texts(early).size() == 2);
  CHECK(h.clock(true).empty());  // nothing new since
  h.feed({at(3, "b")});
  early = h.clock(true);
  CHECK(
      texts(early) ==
      std::vector<std::string>{
          R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","g":"b","n":2})"});
}

TEST_CASE("trigger_every runs on a timer: its results are held and the runner is woken") {
  WindowHarness h(
      R"({window: tumbling, size: 1h, event_time: ts, aggregates: {n: count}, emit: results, trigger_every: 20ms})",
      true);
  h.feed({at(1)});
  test::run_until(
      h.ctx.io(), [&] { return h.stage->held() > 0; }, 5s);
  REQUIRE(h.stage->held() == 1);
  CHECK(h.ctx.wakes >= 1);
  Batch out;
  h.stage->resume(out, 10);
  REQUIRE(out.size() == 1);
  CHECK(out[0].record().find("n")->as_int() == 1);
}

TEST_CASE("processing time: a window closes when the clock passes its end, with no further event") {
  WindowHarness h(R"({window: tumbling, size: 1s, aggregates: {n: count}, emit: results})", true);
  // Windows are aligned to the wall clock: feed early in one, so that both events fall in it and
  // it is still open when the feed returns, however slow the machine (under TSan a 100 ms window
  // once closed during the feed).
  const auto into = std::chrono::system_clock::now().time_since_epoch() % std::chrono::seconds(1);
  if (into > std::chrono::milliseconds(400))
    std::this_thread::sleep_for(std::chrono::seconds(1) - into + std::chrono::milliseconds(10));
  CHECK(h.feed({"{}", "{}"}).empty());
  test::run_until(
      h.ctx.io(), [&] { return h.stage->held() > 0; }, 5s);
  REQUIRE(h.stage->held() == 1);
  Batch out;
  h.stage->resume(out, 10);
  auto r = out[0].record().to_json();
  CHECK(contains(r, R"("n":2)"));
  out[0].ack.settle(AckStatus::done);
  CHECK(h.acks->exactly_once(2, AckStatus::done));
}

TEST_CASE("idle partitions: a quiet partition stops holding the watermark back after idle_timeout") {
  WindowHarness h(
      R"({window: tumbling, size: 10s, event_time: ts, idle_timeout: 5s, aggregates: {n: count}, emit: results})");
  h.feed({at(1000)}, 0);
  h.feed({at(2000)}, 1);
  h.steady += 4s;
  CHECK(h.feed({at(25'000)}, 0).empty());  // partition 1 (at 2000) holds the watermark
  h.steady += 999ms;
  CHECK(h.clock(false).empty());  // 4.999s of silence: not idle yet
  h.steady += 1ms;
  auto out = h.clock(false);  // 5s: partition 1 is idle, the watermark is partition 0's 25000
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:00:10.000Z","n":2})"});
  CHECK(h.metric("etld_window_watermark_lag_ms", R"(partition="1")") != "");
  // An event of the idle partition wakes it, but the watermark does not go back: it is late.
  h.feed({at(3000)}, 1);
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0], "late:"));
}

TEST_CASE("idle_timeout runs on a timer: windows close with no event arriving") {
  WindowHarness h(
      R"({window: tumbling, size: 10s, event_time: ts, idle_timeout: 50ms, aggregates: {n: count}, emit: results})",
      true);
  h.feed({at(1000)}, 0);
  h.feed({at(25'000)}, 1);
  CHECK(h.stage->held() == 0);
  test::run_until(
      h.ctx.io(), [&] { return h.stage->held() > 0; }, 5s);
  CHECK(h.stage->held() == 1);  // partition 0 idle: the watermark 25000 closes [0, 10000)
}

TEST_CASE("state caps: max_groups rejects the event that would open a new group, and counts it") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, group_by: [g], aggregates: {n: count}, emit: results,
                      max_groups: 2})");
  CHECK(h.feed({at(1, "a"), at(2, "b"), at(3, "c"), at(4, "a")}).empty());
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0], "stage 'win': state full: max_groups 2 reached"));
  CHECK(h.acks->settled_once(2, AckStatus::dead_lettered));
  CHECK(h.metric("etld_window_state_full_total") == "1");
  CHECK(h.metric("etld_window_groups") == "2");
  CHECK(h.metric("etld_window_open_windows") == "1");
  CHECK(texts(h.finish()).size() == 2);
}

TEST_CASE("state caps: max_open_windows rejects the event that would open a new window") {
  WindowHarness h(
      R"({window: tumbling, size: 1m, event_time: ts, allowed_lateness: 1h, aggregates: {n: count},
                      emit: results, max_open_windows: 1})");
  h.feed({at(1), at(60'001), at(2)});
  REQUIRE(h.rejections.size() == 1);
  CHECK(contains(h.rejections[0], "state full: max_open_windows 1 reached"));
  CHECK(h.metric("etld_window_state_full_total") == "1");
  auto out = h.finish();
  CHECK(texts(out) ==
        std::vector<std::string>{
            R"({"window_start":"1970-01-01T00:00:00.000Z","window_end":"1970-01-01T00:01:00.000Z","n":2})"});
}

TEST_CASE("state caps: on_state_full: fail fails the stage and counts it") {
  WindowHarness h(R"({window: global, group_by: [g], aggregates: {n: count}, emit: results, max_groups: 1,
                      on_state_full: fail})");
  h.feed({R"({"g": "a"})"});
  CHECK_THROWS_WITH_AS(h.feed({R"({"g": "b"})"}), doctest::Contains("state full: max_groups 1 reached"),
                       std::runtime_error);
  CHECK(h.metric("etld_window_state_full_total") == "1");
}

TEST_CASE("an event whose time cannot be read is rejected with why") {
  WindowHarness h(R"({window: tumbling, size: 1m, event_time: ts, aggregates: {n: count}, emit: results})");
  h.feed({R"({"x": 1})", R"({"ts": "yesterday"})", R"({"ts": true})", R"({"ts": "2026-02-30T00:00:00Z"})",
          "not json", R"({"ts": 9223372036854775807})"});
  REQUIRE(h.rejections.size() == 6);
  CHECK(contains(h.rejections[0], "event_time 'ts' is missing"));
  CHECK(contains(h.rejections[1], "\"yesterday\" is not RFC 3339 text"));
  CHECK(contains(h.rejections[2], "expected epoch milliseconds (an integer) or RFC 3339 text, got boolean"));
  CHECK(contains(h.rejections[3], "is not RFC 3339 text"));
  CHECK(contains(h.rejections[5], "outside the years 0000 to 9999"));
  CHECK(h.acks->exactly_once(6, AckStatus::dead_lettered));
}

}  // namespace
}  // namespace etld
