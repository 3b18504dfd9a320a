// The window stage's configuration: every option documented, and each bad combination refused at
// the option that makes it bad (file:line:column), saying what to do.
#include <doctest/doctest.h>

#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

struct Located {
  int line = 0, column = 0;
  std::string message, hint, text;
};

// Loads a pipeline whose window stage has `options` (one per line, indented under it, starting on
// line 5) and returns its first error.
Located first_error(const std::string& options) {
  std::string text = "stages:\n  src: {type: generate, count: 10}\n  win:\n    type: window\n" + options +
                     "    inputs: [src]\n  out: {type: \"null\", inputs: [win]}\n";
  Diagnostics diags("w.yaml");
  auto config = load_pipeline_text(text, "w.yaml", diags);
  INFO(text);
  REQUIRE_FALSE(config);
  REQUIRE(!diags.items().empty());
  const auto& d = diags.items().front();
  return {d.line, d.column, d.message, d.hint, diags.format()};
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST_CASE("window is registered with every option documented") {
  const StageType* type = find_stage_type("window");
  REQUIRE(type);
  CHECK(type->role == Role::transform);
  for (const char* name : {"window", "size", "slide", "gap", "event_time", "allowed_lateness", "idle_timeout",
                           "group_by", "aggregates", "emit", "trigger_every_events", "trigger_every",
                           "max_open_windows", "max_groups", "on_state_full"}) {
    auto it = std::find_if(type->options.begin(), type->options.end(),
                           [&](const OptionSpec& o) { return o.name == name; });
    REQUIRE_MESSAGE(it != type->options.end(), name);
    CHECK(!it->doc.empty());
  }
}

TEST_CASE("a valid window loads") {
  Diagnostics diags("w.yaml");
  auto config = load_pipeline_text(R"(stages:
  src: {type: generate, count: 10, template: '{"ts": {{seq}}, "page": "p{{seq % 3}}"}'}
  win:
    type: window
    inputs: [src]
    window: sliding
    size: 1m
    slide: 10s
    event_time: ts
    allowed_lateness: 5s
    idle_timeout: 30s
    group_by: [page]
    aggregates: {views: count}
  out: {type: "null", inputs: [win]}
)",
                                   "w.yaml", diags);
  CHECK_MESSAGE(config, diags.format());
}

TEST_CASE("bad window options are refused where they are written") {
  SUBCASE("an unknown window type") {
    auto e = first_error("    window: hopping\n    aggregates: {n: count}\n");
    CHECK(e.line == 5);
    CHECK(e.column == 13);
    CHECK(contains(e.text, "w.yaml:5:13"));
    CHECK(contains(e.message, "hopping"));
  }
  SUBCASE("size missing") {
    auto e = first_error("    window: tumbling\n    aggregates: {n: count}\n");
    CHECK(e.line == 5);
    CHECK(contains(e.message, "tumbling needs 'size'"));
  }
  SUBCASE("size for a session") {
    auto e = first_error(
        "    window: session\n    gap: 1m\n    size: 1m\n    aggregates: {n: count}\n    emit: results\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "only tumbling, sliding and count windows take a size, not session"));
  }
  SUBCASE("slide for a tumbling window") {
    auto e = first_error("    window: tumbling\n    size: 1m\n    slide: 10s\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "only sliding windows take a slide"));
  }
  SUBCASE("slide longer than size") {
    auto e = first_error("    window: sliding\n    size: 1m\n    slide: 2m\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(e.column == 12);
    CHECK(contains(e.message, "slide: 120000ms is longer than size 60000ms"));
  }
  SUBCASE("gap missing for a session") {
    auto e = first_error("    window: session\n    aggregates: {n: count}\n    emit: results\n");
    CHECK(contains(e.message, "session needs 'gap'"));
  }
  SUBCASE("allowed_lateness without event_time") {
    auto e = first_error(
        "    window: tumbling\n    size: 1m\n    allowed_lateness: 5s\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "allowed_lateness: needs event_time"));
  }
  SUBCASE("idle_timeout without event_time") {
    auto e =
        first_error("    window: tumbling\n    size: 1m\n    idle_timeout: 5s\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "idle_timeout: needs event_time"));
  }
  SUBCASE("session with emit: updates") {
    auto e = first_error("    window: session\n    gap: 1m\n    aggregates: {n: count}\n    emit: updates\n");
    CHECK(e.line == 8);
    CHECK(contains(e.message, "emit: updates cannot carry session windows"));
    CHECK(e.hint == "use emit: results");
  }
  SUBCASE("count with emit: updates by default") {
    auto e = first_error("    window: count\n    size: 10\n    aggregates: {n: count}\n");
    CHECK(e.line == 5);
    CHECK(contains(e.message, "cannot carry count windows"));
    CHECK(e.hint == "use emit: results");
  }
  SUBCASE("trigger_every with emit: updates") {
    auto e = first_error(
        "    window: tumbling\n    size: 1m\n    trigger_every: 5s\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "trigger_every: only with emit: results"));
  }
  SUBCASE("trigger_every_events with emit: updates") {
    auto e = first_error("    window: global\n    trigger_every_events: 5\n    aggregates: {n: count}\n");
    CHECK(e.line == 6);
    CHECK(contains(e.message, "trigger_every_events: only with emit: results"));
  }
  SUBCASE("a bad aggregate") {
    auto e = first_error("    window: global\n    aggregates:\n      n: count\n      m: median(x)\n");
    CHECK(e.line == 8);
    CHECK(contains(e.message, "median"));
  }
  SUBCASE("a group_by field written under an aggregate's name") {
    auto e = first_error("    window: global\n    group_by: [a.n]\n    aggregates: {n: count}\n");
    CHECK(e.line == 6);
    CHECK(contains(e.message, "group_by: 'a.n' would be written as 'n'"));
  }
  SUBCASE("a group_by field written under window_start") {
    auto e = first_error(
        "    window: tumbling\n    size: 1m\n    group_by: [x.window_start]\n    aggregates: {n: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "the window writes itself"));
  }
  SUBCASE("an aggregate named window_end") {
    auto e = first_error("    window: tumbling\n    size: 1m\n    aggregates: {window_end: count}\n");
    CHECK(e.line == 7);
    CHECK(contains(e.message, "'window_end' is also a field the window writes"));
  }
}

}  // namespace
}  // namespace etld
