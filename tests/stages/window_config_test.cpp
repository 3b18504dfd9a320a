// The window stage's configuration: every option documented, and each bad combination refused at
// the option that makes it bad (file:line:column), saying what to do.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>

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

// emit: updates folds a whole input batch into one partial per (partition, window, group): it
// asks for big batches unless told otherwise; emit: results keeps the engine's default.
TEST_CASE("a window's default demand follows its emit mode") {
  auto demand = [](const std::string& extra) {
    Diagnostics diags("w.yaml");
    auto config = load_pipeline_text(
        "stages:\n  src: {type: generate, count: 10}\n  win:\n    type: window\n"
        "    inputs: [src]\n    window: global\n    aggregates: {n: count}\n" +
            extra + "  out: {type: \"null\", inputs: [win]}\n",
        "w.yaml", diags);
    REQUIRE_MESSAGE(config, diags.format());
    auto it = std::find_if(config->stages.begin(), config->stages.end(),
                           [](const StageConfig& s) { return s.name == "win"; });
    REQUIRE(it != config->stages.end());
    return std::make_pair(it->max_demand, it->min_demand);
  };
  CHECK(demand("") == std::make_pair(std::size_t{10000}, std::size_t{5000}));
  CHECK(demand("    emit: updates\n") == std::make_pair(std::size_t{10000}, std::size_t{5000}));
  CHECK(demand("    emit: results\n") == std::make_pair(StageConfig{}.max_demand, StageConfig{}.min_demand));
  CHECK(demand("    max_demand: 300\n") == std::make_pair(std::size_t{300}, std::size_t{150}));
}

// Each case: the window's options, where the first error must be (line; column, 0 = any), what it
// says, and its hint ("" = any).
struct BadCase {
  const char* what;
  const char* options;
  int line, column;
  const char* message;
  const char* hint;
};

const BadCase kBadCases[] = {
    {"an unknown window type", "    window: hopping\n    aggregates: {n: count}\n", 5, 13, "hopping", ""},
    {"size missing", "    window: tumbling\n    aggregates: {n: count}\n", 5, 0, "tumbling needs 'size'", ""},
    {"size for a session",
     "    window: session\n    gap: 1m\n    size: 1m\n    aggregates: {n: count}\n    emit: results\n", 7, 0,
     "only tumbling, sliding and count windows take a size, not session", ""},
    {"slide for a tumbling window",
     "    window: tumbling\n    size: 1m\n    slide: 10s\n    aggregates: {n: count}\n", 7, 0,
     "only sliding windows take a slide", ""},
    {"slide longer than size",
     "    window: sliding\n    size: 1m\n    slide: 2m\n    aggregates: {n: count}\n", 7, 12,
     "slide: 120000ms is longer than size 60000ms", ""},
    {"a slide that puts each event in too many windows",
     "    window: sliding\n    size: 1h\n    slide: 3s\n    aggregates: {n: count}\n", 7, 12,
     "every event would belong to 1200 windows; at most 1000", "make slide at least size / 1000"},
    {"gap missing for a session", "    window: session\n    aggregates: {n: count}\n    emit: results\n", 5,
     0, "session needs 'gap'", ""},
    {"allowed_lateness without event_time",
     "    window: tumbling\n    size: 1m\n    allowed_lateness: 5s\n    aggregates: {n: count}\n", 7, 0,
     "allowed_lateness: needs event_time", ""},
    {"idle_timeout without event_time",
     "    window: tumbling\n    size: 1m\n    idle_timeout: 5s\n    aggregates: {n: count}\n", 7, 0,
     "idle_timeout: needs event_time", ""},
    {"session with emit: updates",
     "    window: session\n    gap: 1m\n    aggregates: {n: count}\n    emit: updates\n", 8, 0,
     "emit: updates cannot carry session windows", "use emit: results"},
    {"count with emit: updates by default", "    window: count\n    size: 10\n    aggregates: {n: count}\n",
     5, 0, "cannot carry count windows", "use emit: results"},
    {"trigger_every with emit: updates",
     "    window: tumbling\n    size: 1m\n    trigger_every: 5s\n    aggregates: {n: count}\n", 7, 0,
     "trigger_every: only with emit: results", ""},
    {"trigger_every_events with emit: updates",
     "    window: global\n    trigger_every_events: 5\n    aggregates: {n: count}\n", 6, 0,
     "trigger_every_events: only with emit: results", ""},
    {"a bad aggregate", "    window: global\n    aggregates:\n      n: count\n      m: median(x)\n", 8, 0,
     "median", ""},
    {"a group_by field written under an aggregate's name",
     "    window: global\n    group_by: [a.n]\n    aggregates: {n: count}\n", 6, 0,
     "group_by: 'a.n' would be written as 'n'", ""},
    {"a group_by field written under window_start",
     "    window: tumbling\n    size: 1m\n    group_by: [x.window_start]\n    aggregates: {n: count}\n", 7, 0,
     "the window writes itself", ""},
    {"an aggregate named window_end",
     "    window: tumbling\n    size: 1m\n    aggregates: {window_end: count}\n", 7, 0,
     "'window_end' is also a field the window writes", ""},
};

TEST_CASE("bad window options are refused where they are written") {
  for (const auto& c : kBadCases) {
    INFO(c.what);
    auto e = first_error(c.options);
    if (c.line > 0) CHECK(e.line == c.line);
    if (c.column > 0) CHECK(e.column == c.column);
    CHECK(
        contains(e.text, "w.yaml:" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": error: "));
    CHECK(contains(e.message, c.message));
    if (*c.hint) CHECK(e.hint == c.hint);
  }
}

}  // namespace
}  // namespace etld
