// load_pipeline: every kind of mistake is reported at its file:line:column, all at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <unistd.h>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/registry.hpp"

namespace {

using namespace etld;

class NullFactory : public StageFactory {};

using Configure = std::function<std::unique_ptr<StageFactory>(const StageConfig&, const PipelineConfig&)>;

StageType make_type(std::string name, Role role, std::string summary, std::vector<OptionSpec> options,
                    Configure configure) {
  StageType t;
  t.name = std::move(name);
  t.role = role;
  t.summary = std::move(summary);
  t.options = std::move(options);
  t.configure = std::move(configure);
  return t;
}

// Test-only stage types, named so that they cannot clash with real ones.
const StageRegistration source_reg{
    make_type("test_config_source", Role::source, "A source for the config tests.",
              {{"rate", OptionKind::integer, "Events per second.", false, "10", {}},
               {"fail_with", OptionKind::string, "Makes configure throw this message.", false, "", {}}},
              [](const StageConfig& stage, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                if (stage.options.has("fail_with"))
                  throw ConfigError(stage.options.mark("fail_with"), stage.options.get_string("fail_with"),
                                    "a test hint");
                return std::make_unique<NullFactory>();
              })};

const StageRegistration transform_reg{make_type(
    "test_config_transform", Role::transform, "A transform for the config tests, with options of every kind.",
    {{"name", OptionKind::string, "A required string.", true, "", {}},
     {"count", OptionKind::integer, "An integer.", false, "1", {}},
     {"ratio", OptionKind::number, "A number.", false, "0.5", {}},
     {"enabled", OptionKind::boolean, "A boolean.", false, "true", {}},
     {"interval", OptionKind::duration, "A duration.", false, "1s", {}},
     {"tags", OptionKind::string_list, "A list of strings.", false, "", {}},
     {"labels", OptionKind::string_map, "A map of strings.", false, "", {}},
     {"mode", OptionKind::choice, "A choice.", false, "fast", {"fast", "slow", "careful"}},
     {"extra", OptionKind::mapping, "A mapping.", false, "", {}},
     {"items", OptionKind::sequence, "A sequence.", false, "", {}}},
    [](const StageConfig&, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
      return std::make_unique<NullFactory>();
    })};

const StageRegistration sink_reg{
    make_type("test_config_sink", Role::sink, "A sink for the config tests.",
              {{"target", OptionKind::string, "Where to write.", false, "", {}}},
              [](const StageConfig& stage, const PipelineConfig&) -> std::unique_ptr<StageFactory> {
                if (stage.options.has("target") && stage.options.get_string("target") == "unmarked")
                  throw ConfigError("the target is not reachable");
                return std::make_unique<NullFactory>();
              })};

struct Loaded {
  Diagnostics diags{"p.yaml"};
  std::unique_ptr<PipelineConfig> config;
};

std::unique_ptr<Loaded> load(const std::string& text) {
  auto l = std::make_unique<Loaded>();
  l->config = load_pipeline_text(text, "p.yaml", l->diags);
  return l;
}

// True when some diagnostic is at line:col and its message (or hint) contains each fragment.
bool has_error(const Diagnostics& diags, int line, int col, const std::string& message,
               const std::string& hint = {}) {
  for (const auto& d : diags.items())
    if (d.line == line && d.column == col && d.message.find(message) != std::string::npos &&
        d.hint.find(hint) != std::string::npos)
      return true;
  return false;
}

#define CHECK_ERROR(loaded, line, col, ...)                    \
  do {                                                         \
    INFO((loaded)->diags.format());                            \
    CHECK((loaded)->config == nullptr);                        \
    CHECK(has_error((loaded)->diags, line, col, __VA_ARGS__)); \
  } while (0)

}  // namespace

TEST_CASE("a valid file loads with every field populated") {
  ::setenv("ETLD_CONFIG_TEST_NAME", "from-env", 1);
  auto l = load(R"(pipeline: orders
threads: 4
log_level: debug
log_format: json
shutdown_timeout: 45s
on_poison: pause_partition
stages:
  out:
    type: test_config_sink
    inputs: [shape]
    concurrency: 3
    partition_by: customer.id
    max_demand: 200
    restart: permanent
    max_restarts: 7
    restart_window: 2m
    restart_backoff: 250ms
    buffer_size: 64
    target: "${ETLD_CONFIG_TEST_NAME}"
  shape:
    type: test_config_transform
    inputs: in
    name: ${ETLD_CONFIG_TEST_NAME}
    count: 12
    ratio: 0.25
    enabled: false
    interval: 1500
    tags: [a, b]
    labels: {k: v}
    mode: careful
    extra: {x: 1}
    items: [1, 2]
    dispatch: demand
  in:
    type: test_config_source
    min_demand: 10
)");
  INFO(l->diags.format());
  REQUIRE(l->config != nullptr);
  const auto& p = *l->config;
  CHECK(p.file == "p.yaml");
  CHECK(p.name == "orders");
  CHECK(p.threads == 4);
  CHECK(p.log_level == "debug");
  CHECK(p.log_format == "json");
  CHECK(p.shutdown_timeout == std::chrono::seconds(45));
  CHECK(p.on_poison == PoisonPolicy::pause_partition);
  CHECK(p.text.find("pipeline: orders") == 0);
  REQUIRE(p.stages.size() == 3);
  // Topological order: inputs before consumers.
  CHECK(p.stages[0].name == "in");
  CHECK(p.stages[1].name == "shape");
  CHECK(p.stages[2].name == "out");

  const StageConfig* out = p.find("out");
  REQUIRE(out != nullptr);
  CHECK(out->type == "test_config_sink");
  CHECK(out->inputs == std::vector<std::string>{"shape"});
  CHECK(out->concurrency == 3);
  CHECK(out->partition_by == "customer.id");
  CHECK(out->max_demand == 200);
  CHECK(out->min_demand == 100);  // max_demand / 2
  CHECK(out->buffer_size == 64);
  CHECK(out->restart == RestartPolicy::permanent);
  CHECK(out->max_restarts == 7);
  CHECK(out->restart_window == std::chrono::minutes(2));
  CHECK(out->restart_backoff == std::chrono::milliseconds(250));
  CHECK(out->dispatch == DispatchMode::broadcast);
  CHECK(out->mark.line == 7);  // 0-based: line 8
  CHECK(out->node.IsMap());
  CHECK(out->options.get_string("target") == "from-env");

  const StageConfig* shape = p.find("shape");
  REQUIRE(shape != nullptr);
  CHECK(shape->inputs == std::vector<std::string>{"in"});
  CHECK(shape->dispatch == DispatchMode::demand);
  CHECK(shape->restart == RestartPolicy::transient);
  const Options& o = shape->options;
  CHECK(o.get_string("name") == "from-env");
  CHECK(o.get_int("count") == 12);
  CHECK(o.get_number("ratio") == doctest::Approx(0.25));
  CHECK(o.get_bool("enabled") == false);
  CHECK(o.get_duration("interval") == std::chrono::milliseconds(1500));
  CHECK(o.get_string_list("tags") == std::vector<std::string>{"a", "b"});
  CHECK(o.get_string_map("labels") == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});
  CHECK(o.get_string("mode") == "careful");
  CHECK(o.node("extra").IsMap());
  CHECK(o.node("items").IsSequence());

  const StageConfig* in = p.find("in");
  REQUIRE(in != nullptr);
  CHECK(in->inputs.empty());
  CHECK(in->max_demand == 1000);
  CHECK(in->min_demand == 10);
  CHECK(in->concurrency == 1);
  CHECK(p.find("nope") == nullptr);
}

TEST_CASE("defaults apply when keys are absent") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  out: {type: test_config_sink, inputs: [in]}
)");
  INFO(l->diags.format());
  REQUIRE(l->config != nullptr);
  CHECK(l->config->name == "etld");
  CHECK(l->config->threads == 0);
  CHECK(l->config->log_level == "info");
  CHECK(l->config->log_format == "text");
  CHECK(l->config->shutdown_timeout == std::chrono::seconds(30));
  CHECK(l->config->on_poison == PoisonPolicy::dead_letter);
  const StageConfig* out = l->config->find("out");
  REQUIRE(out != nullptr);
  CHECK(out->max_demand == 1000);
  CHECK(out->min_demand == 500);
  CHECK(out->restart_window == std::chrono::seconds(60));
  CHECK(out->restart_backoff == std::chrono::milliseconds(100));
  CHECK_FALSE(out->options.has("target"));  // no default: reading it is a programming error
  CHECK_THROWS_AS(out->options.get_string("target"), std::logic_error);
  const StageConfig* in = l->config->find("in");
  REQUIRE(in != nullptr);
  CHECK(in->options.get_int("rate") == 10);  // the spec's default
}

TEST_CASE("topological order is stable with respect to file order") {
  auto l = load(R"(stages:
  z_sink: {type: test_config_sink, inputs: [b, a]}
  b: {type: test_config_transform, name: x, inputs: [a]}
  c: {type: test_config_source}
  a: {type: test_config_source}
  d: {type: test_config_sink, inputs: [c]}
)");
  INFO(l->diags.format());
  REQUIRE(l->config != nullptr);
  std::vector<std::string> names;
  for (const auto& s : l->config->stages) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"c", "a", "b", "z_sink", "d"});
}

TEST_CASE("YAML syntax error") {
  auto l = load("stages:\n  in: {type: test_config_source\n  out: x\n");
  CHECK_ERROR(l, 3, 6, "invalid YAML: ");
  CHECK(l->diags.items().size() == 1);
  CHECK(l->diags.format().rfind("p.yaml:3:6: error: invalid YAML: ", 0) == 0);
}

TEST_CASE("type: null, YAML's null, is the null sink; a type with no value says what to write") {
  auto l = load(
      "stages:\n  in: {type: test_config_source}\n  out:\n    type: null   # the sink\n    inputs: [in]\n");
  INFO(l->diags.format());
  REQUIRE(l->config != nullptr);
  CHECK(l->config->find("out")->type == "null");
  auto flow = load("stages:\n  in: {type: test_config_source}\n  out: {type: NULL, inputs: [in]}\n");
  INFO(flow->diags.format());
  CHECK(flow->config != nullptr);
  auto tilde = load("stages:\n  in: {type: test_config_source}\n  out:\n    type: ~\n    inputs: [in]\n");
  CHECK_ERROR(tilde, 4, 11, "'type' has no value", "e.g. type: stdout");
  auto nullable =
      load("stages:\n  in: {type: test_config_source}\n  out:\n    type: nullish\n    inputs: [in]\n");
  CHECK_ERROR(nullable, 4, 11, "unknown stage type 'nullish'");
}

TEST_CASE("an unclosed bracket is reported with where it opened") {
  auto l = load(R"(pipeline: x
stages:
  in:
    type: test_config_source
  shape:
    type: test_config_transform
    inputs: [in]
    labels: {
      a: "x",
      b: "y"

  out:
    type: test_config_sink
    inputs: [shape]
)");
  INFO(l->diags.format());
  CHECK(l->config == nullptr);
  REQUIRE(l->diags.items().size() == 1);
  CHECK(l->diags.items()[0].hint == "the '{' opened at 8:13 is not closed; add '}' where it ends");
  auto seq = load("stages:\n  in: {type: test_config_source, tags: [a, b}\n");
  REQUIRE(seq->diags.items().size() == 1);
  CHECK(seq->diags.items()[0].hint.find("opened at 2:") != std::string::npos);
}

TEST_CASE("deep nesting is refused before the YAML parser recurses, at the bracket that goes too deep") {
  auto l = load("stages: " + std::string(100000, '['));
  CHECK_ERROR(l, 1, 73, "brackets nest deeper than 64 levels");
  // A plain scalar's brackets in block context open nothing.
  auto expr = load(
      "stages:\n  in: {type: test_config_source}\n  out:\n    type: test_config_sink\n    inputs: [in]\n"
      "    target: a" +
      std::string(100, '[') + "\n");
  INFO(expr->diags.format());
  CHECK(expr->config != nullptr);
  // Block nesting is yaml-cpp's to guard: named, not "bad file".
  std::string block = "stages:\n";
  for (int i = 1; i <= 3000; ++i) block += std::string(static_cast<std::size_t>(i), ' ') + "-\n";
  auto deep = load(block);
  REQUIRE(deep->diags.items().size() == 1);
  CHECK(deep->diags.items()[0].message.find("nests too deeply") != std::string::npos);
}

TEST_CASE("a tab in indentation is named as the cause") {
  auto l = load("stages:\n  in:\n    type: test_config_source\n\t  rate: 5\n");
  INFO(l->diags.format());
  REQUIRE(l->diags.items().size() == 1);
  CHECK(l->diags.items()[0].hint == "line 4 is indented with a tab; YAML indents with spaces only");
}

TEST_CASE("': ' inside an unquoted value: quote it") {
  auto l = load("stages:\n  in:\n    type: test_config_source\n    fail_with: a == \"x: y\"\n");
  REQUIRE(l->diags.items().size() == 1);
  CHECK(l->diags.items()[0].message == "invalid YAML: illegal map value");
  CHECK(l->diags.items()[0].hint ==
        "the value of 'fail_with' holds ': ', which YAML reads as another key; quote the value: fail_with: "
        "'a == \"x: y\"'");
  auto nested = load("stages:\n  in:\n    type: test_config_source\n    fail_with: it's: odd\n");
  REQUIRE(nested->diags.items().size() == 1);
  CHECK(nested->diags.items()[0].hint.find("fail_with: \"it's: odd\"") != std::string::npos);
}

TEST_CASE("unknown top-level key with did-you-mean") {
  auto l = load(R"(pipeline: x
stagse:
  in: {type: test_config_source}
)");
  CHECK_ERROR(l, 2, 1, "unknown top-level key 'stagse'", "did you mean 'stages'?");
  CHECK(
      l->diags.format().find("p.yaml:2:1: error: unknown top-level key 'stagse' (did you mean 'stages'?)") !=
      std::string::npos);
}

TEST_CASE("bad top-level values") {
  auto l = load(R"(threads: many
log_level: infoo
log_format: xml
shutdown_timeout: soon
stages:
  in: {type: test_config_source}
  out: {type: test_config_sink, inputs: [in]}
)");
  CHECK_ERROR(l, 1, 10, "option 'threads': expected an integer; got 'many'");
  CHECK_ERROR(
      l, 2, 12,
      "option 'log_level': expected one of trace, debug, info, warn, error, critical, off; got 'infoo'",
      "did you mean 'info'?");
  CHECK_ERROR(l, 3, 13, "option 'log_format': expected one of text, json; got 'xml'");
  CHECK_ERROR(l, 4, 19, "expected a duration such as 100ms, 5s, 2m; got 'soon'");
  CHECK(l->diags.items().size() == 4);
}

TEST_CASE("missing or empty stages") {
  auto missing = load("pipeline: x\n");
  CHECK_ERROR(missing, 1, 1, "missing required key 'stages'");
  auto empty = load("stages: {}\n");
  CHECK_ERROR(empty, 1, 9, "'stages' is empty");
  auto not_map = load("stages: [a, b]\n");
  CHECK_ERROR(not_map, 1, 9, "option 'stages': expected a map; got a list");
  auto null_stages = load("pipeline: x\nstages:\n");
  CHECK_ERROR(null_stages, 2, 1, "option 'stages': has no value; expected a mapping");
  auto empty_file = load("");
  CHECK_ERROR(empty_file, 1, 1, "the pipeline file is empty");
  auto scalar_file = load("hello\n");
  CHECK_ERROR(scalar_file, 1, 1, "must be a YAML map");
}

TEST_CASE("unknown stage type with did-you-mean") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  out:
    type: test_config_snk
    inputs: [in]
)");
  CHECK_ERROR(l, 4, 11, "unknown stage type 'test_config_snk'", "did you mean 'test_config_sink'?");
}

TEST_CASE("stage without type, or not a map") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  out:
    inputs: [in]
  other: 42
)");
  CHECK_ERROR(l, 3, 3, "stage 'out' has no 'type'", "test_config_sink");
  CHECK_ERROR(l, 5, 10, "stage 'other' must be a map with at least a 'type' key; got a scalar");
}

TEST_CASE("unknown option with did-you-mean") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  shape:
    type: test_config_transform
    inputs: [in]
    name: x
    intreval: 5s
    concurency: 2
    zzzzzzzzzz: 1
)");
  CHECK_ERROR(l, 7, 5, "unknown option 'intreval' for stage type test_config_transform",
              "did you mean 'interval'?");
  CHECK_ERROR(l, 8, 5, "unknown option 'concurency'", "did you mean 'concurrency'?");
  CHECK_ERROR(l, 9, 5, "unknown option 'zzzzzzzzzz'", "options of test_config_transform: name, count");
}

TEST_CASE("wrong kinds: integer, number, boolean, list, map, mapping, sequence") {
  auto l = load(R"(stages:
  in: {type: test_config_source, rate: fast}
  shape:
    type: test_config_transform
    inputs: [in]
    name: [not, a, string]
    count: 1.5
    ratio: half
    enabled: maybe
    tags: {a: b}
    labels: [x]
    extra: 3
    items: {a: 1}
  out: {type: test_config_sink, inputs: [shape], concurrency: two}
)");
  CHECK_ERROR(l, 2, 40, "option 'rate': expected an integer; got 'fast'");
  CHECK_ERROR(l, 6, 11, "option 'name': expected a string; got a list");
  CHECK_ERROR(l, 7, 12, "option 'count': expected an integer; got '1.5'");
  CHECK_ERROR(l, 8, 12, "option 'ratio': expected a number; got 'half'");
  CHECK_ERROR(l, 9, 14, "option 'enabled': expected true or false; got 'maybe'");
  CHECK_ERROR(l, 10, 11, "option 'tags': expected a list of strings such as [a, b]; got a map");
  CHECK_ERROR(l, 11, 13, "option 'labels': expected a map of strings such as {key: value}; got a list");
  CHECK_ERROR(l, 12, 12, "option 'extra': expected a map; got '3'");
  CHECK_ERROR(l, 13, 12, "option 'items': expected a list; got a map");
  CHECK_ERROR(l, 14, 63, "option 'concurrency': expected an integer; got 'two'");
  CHECK(l->diags.items().size() == 10);
}

TEST_CASE("bad duration") {
  auto l = load(R"(stages:
  in: {type: test_config_source, restart_backoff: 5x}
  out: {type: test_config_sink, inputs: [in]}
)");
  CHECK_ERROR(l, 2, 51, "option 'restart_backoff': expected a duration such as 100ms, 5s, 2m; got '5x'");
}

TEST_CASE("bad choice with did-you-mean") {
  auto l = load(R"(stages:
  in: {type: test_config_source, restart: permanant}
  shape: {type: test_config_transform, inputs: [in], name: n, mode: fsat}
  out: {type: test_config_sink, inputs: [shape], dispatch: everyone}
)");
  CHECK_ERROR(l, 2, 43, "option 'restart': expected one of permanent, transient, temporary; got 'permanant'",
              "did you mean 'permanent'?");
  CHECK_ERROR(l, 3, 69, "option 'mode': expected one of fast, slow, careful; got 'fsat'",
              "did you mean 'fast'?");
  CHECK_ERROR(l, 4, 60, "option 'dispatch': expected one of broadcast, demand; got 'everyone'");
}

TEST_CASE("missing required option") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  shape:
    type: test_config_transform
    inputs: [in]
  out: {type: test_config_sink, inputs: [shape]}
)");
  CHECK_ERROR(l, 3, 3, "missing required option 'name' for stage type test_config_transform");
}

TEST_CASE("option without a value") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  shape:
    type: test_config_transform
    inputs: [in]
    name:
)");
  CHECK_ERROR(l, 6, 5, "option 'name': has no value; expected a string");
}

TEST_CASE("missing input stage with did-you-mean") {
  auto l = load(R"(stages:
  orders: {type: test_config_source}
  out:
    type: test_config_sink
    inputs:
      - orders
      - ordres
)");
  CHECK_ERROR(l, 7, 9, "input 'ordres' of stage 'out' is not a stage in this pipeline",
              "did you mean 'orders'?");
  CHECK(l->diags.items().size() == 1);
}

TEST_CASE("source with inputs") {
  auto l = load(R"(stages:
  a: {type: test_config_source}
  b: {type: test_config_source, inputs: [a]}
  out: {type: test_config_sink, inputs: [a, b]}
)");
  CHECK_ERROR(l, 3, 41, "source stage 'b' (type test_config_source) cannot have inputs");
}

TEST_CASE("sink or transform without inputs") {
  auto l = load(R"(stages:
  a: {type: test_config_source}
  shape: {type: test_config_transform, name: x}
  out:
    type: test_config_sink
)");
  CHECK_ERROR(l, 3, 3, "transform stage 'shape' (type test_config_transform) needs at least one input");
  CHECK_ERROR(l, 4, 3, "sink stage 'out' (type test_config_sink) needs at least one input", "add 'inputs:");
}

TEST_CASE("input naming a sink, itself, or twice") {
  auto l = load(R"(stages:
  a: {type: test_config_source}
  out1: {type: test_config_sink, inputs: [a]}
  out2: {type: test_config_sink, inputs: [out1, out2, a, a]}
)");
  CHECK_ERROR(l, 4, 43, "input 'out1' of stage 'out2' is a sink (type test_config_sink)",
              "sinks produce no events");
  CHECK_ERROR(l, 4, 49, "stage 'out2' lists itself as an input");
  CHECK_ERROR(l, 4, 58, "stage 'out2' lists input 'a' twice");
}

TEST_CASE("cycle") {
  auto l = load(R"(stages:
  src: {type: test_config_source}
  a: {type: test_config_transform, name: x, inputs: [src, c]}
  b: {type: test_config_transform, name: x, inputs: [a]}
  c: {type: test_config_transform, name: x, inputs: [b]}
  out: {type: test_config_sink, inputs: [c]}
)");
  CHECK_ERROR(l, 3, 3, "stages form a cycle: a -> b -> c -> a");
  CHECK(l->diags.items().size() == 1);
}

TEST_CASE("demand limits") {
  auto l = load(R"(stages:
  a: {type: test_config_source, max_demand: 100, min_demand: 100}
  b: {type: test_config_source, min_demand: 2000}
  c: {type: test_config_source, max_demand: 0}
  d: {type: test_config_source, concurrency: 0}
  e: {type: test_config_source, min_demand: -1}
  out: {type: test_config_sink, inputs: [a, b, c, d, e]}
)");
  CHECK_ERROR(l, 2, 62, "option 'min_demand' (100) must be less than max_demand (100)");
  CHECK_ERROR(l, 3, 45, "option 'min_demand' (2000) must be less than max_demand (1000)",
              "max_demand defaults to 1000");
  CHECK_ERROR(l, 4, 45, "option 'max_demand' must be at least 1; got 0");
  CHECK_ERROR(l, 5, 46, "option 'concurrency' must be between 1 and 10000; got 0");
  CHECK_ERROR(l, 6, 45, "option 'min_demand' must not be negative; got -1");
}

TEST_CASE("partition_by on a source") {
  auto l = load(R"(stages:
  a: {type: test_config_source, partition_by: id}
  out: {type: test_config_sink, inputs: [a], partition_by: id, concurrency: 1}
)");
  CHECK_ERROR(l, 2, 47, "option 'partition_by' is not allowed on source stage 'a'");
  CHECK(l->diags.items().size() == 1);
}

TEST_CASE("unset ${VAR} without default") {
  ::unsetenv("ETLD_CONFIG_TEST_UNSET");
  auto l = load(R"(pipeline: "${ETLD_CONFIG_TEST_UNSET}"
stages:
  a: {type: test_config_source}
  out:
    type: test_config_sink
    inputs: [a]
    target: "db-${ETLD_CONFIG_TEST_UNSET}"
)");
  CHECK_ERROR(l, 1, 11, "environment variable 'ETLD_CONFIG_TEST_UNSET' is not set",
              "${ETLD_CONFIG_TEST_UNSET:-default}");
  CHECK_ERROR(l, 7, 13, "option 'target': environment variable 'ETLD_CONFIG_TEST_UNSET' is not set");
}

TEST_CASE("duplicate keys") {
  auto l = load(R"(stages:
  a: {type: test_config_source}
  a: {type: test_config_source}
  out: {type: test_config_sink, inputs: [a], inputs: [a]}
)");
  CHECK_ERROR(l, 3, 3, "duplicate key 'a' in 'stages'", "first defined at 2:3; please delete one");
  CHECK_ERROR(l, 4, 46, "duplicate key 'inputs' in stage 'out'");
}

TEST_CASE("a stage type's own checks run, located at the culprit or the stage") {
  auto l = load(R"(stages:
  a:
    type: test_config_source
    fail_with: no such broker
  out: {type: test_config_sink, inputs: [a], target: unmarked}
)");
  CHECK_ERROR(l, 4, 16, "no such broker", "a test hint");
  CHECK_ERROR(l, 5, 3, "the target is not reachable");
}

TEST_CASE("several errors are reported at once, in file order") {
  auto l = load(R"(pipeline: x
treads: 2
stages:
  in: {type: test_config_source, rate: lots}
  shape: {type: test_config_transfrom, inputs: [in]}
  out:
    type: test_config_sink
    inputs: [shaep]
    max_demand: 10
    min_demand: 20
)");
  INFO(l->diags.format());
  CHECK(l->config == nullptr);
  REQUIRE(l->diags.items().size() == 5);
  const auto& items = l->diags.items();
  CHECK(items[0].line == 2);
  CHECK(items[1].line == 4);
  CHECK(items[2].line == 5);
  CHECK(items[3].line == 8);
  CHECK(items[4].line == 10);
  CHECK(items[3].hint == "did you mean 'shape'?");
  std::string text = l->diags.format();
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);
}

TEST_CASE("a stage's several bad options (map's set expressions) are all reported, each located") {
  auto l = load(R"(stages:
  in: {type: test_config_source}
  shape:
    type: map
    inputs: [in]
    set:
      a: "1 +"
      fine: "2"
      b: "lower("
  out: {type: test_config_sink, inputs: [shape]}
)");
  INFO(l->diags.format());
  CHECK(l->config == nullptr);
  REQUIRE(l->diags.items().size() == 2);
  CHECK(l->diags.items()[0].line == 7);
  CHECK(l->diags.items()[0].message.find("set 'a'") != std::string::npos);
  CHECK(l->diags.items()[1].line == 9);
  CHECK(l->diags.items()[1].message.find("set 'b'") != std::string::npos);
}

TEST_CASE("load_pipeline reads a file, and reports a missing one without a position") {
  auto dir = std::filesystem::temp_directory_path() / ("etld_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "p.yaml").string();
  {
    std::ofstream out(path);
    out << "stages:\n  a: {type: test_config_source}\n  b: {type: test_config_sink, inputs: [a]}\n";
  }
  Diagnostics diags(path);
  auto config = load_pipeline(path, diags);
  INFO(diags.format());
  REQUIRE(config != nullptr);
  CHECK(config->file == path);
  CHECK(config->stages.size() == 2);

  Diagnostics missing_diags((dir / "missing.yaml").string());
  CHECK(load_pipeline((dir / "missing.yaml").string(), missing_diags) == nullptr);
  REQUIRE(missing_diags.items().size() == 1);
  CHECK(missing_diags.items()[0].line == 0);
  CHECK(missing_diags.items()[0].message.find("cannot read pipeline file") != std::string::npos);
  CHECK(missing_diags.format() == (dir / "missing.yaml").string() + ": error: cannot read pipeline file '" +
                                      (dir / "missing.yaml").string() + "': No such file or directory\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("partition_by must be a valid expression, located at file:line:column") {
  etld::Diagnostics diags("p.yaml");
  auto config = etld::load_pipeline_text(R"yaml(stages:
  a: { type: test_config_source }
  b: { type: test_config_sink, inputs: [a], concurrency: 2, partition_by: "user.(" }
)yaml",
                                         "p.yaml", diags);
  CHECK(config == nullptr);
  REQUIRE(diags.items().size() == 1);
  CHECK(diags.items()[0].line == 3);
  CHECK(diags.items()[0].message.find("option 'partition_by'") != std::string::npos);
}

TEST_CASE("admin: address HOST:PORT, off when absent") {
  const std::string stages = "stages:\n  in: {type: test_config_source}\n";
  auto none = load(stages);
  REQUIRE(none->config);
  CHECK(none->config->admin_address.empty());
  auto v4 = load("admin:\n  address: 127.0.0.1:9187\n" + stages);
  INFO(v4->diags.format());
  REQUIRE(v4->config);
  CHECK(v4->config->admin_address == "127.0.0.1:9187");
  auto v6 = load("admin: {address: \"[::1]:0\"}\n" + stages);
  REQUIRE(v6->config);
  CHECK(v6->config->admin_address == "[::1]:0");
}

TEST_CASE("admin: every mistake at its line and column") {
  const std::string stages = "stages:\n  in: {type: test_config_source}\n";
  CHECK_ERROR(load("admin:\n  address: localhost\n" + stages), 2, 12,
              "admin address 'localhost' is not HOST:PORT", "127.0.0.1:9187");
  CHECK_ERROR(load("admin:\n  address: 127.0.0.1:70000\n" + stages), 2, 12, "port 0-65535");
  CHECK_ERROR(load("admin:\n  address: 127.0.0.1:http\n" + stages), 2, 12, "is not HOST:PORT");
  CHECK_ERROR(load("admin:\n  address: ::1:9187\n" + stages), 2, 12, "IPv6 host in brackets", "[::1]:9187");
  CHECK_ERROR(load("admin:\n  adress: 127.0.0.1:9187\n" + stages), 2, 3, "unknown key 'adress' in 'admin'",
              "did you mean 'address'?");
  CHECK_ERROR(load("admin:\n  address: 127.0.0.1:1\n  port: 2\n" + stages), 3, 3, "unknown key 'port'");
  CHECK_ERROR(load("admin: 127.0.0.1:9187\n" + stages), 1, 8, "admin");
  CHECK_ERROR(load("admin:\n  address: [a, b]\n" + stages), 2, 12, "HOST:PORT");
}

TEST_CASE("an expanded value in an error is named by what was written, and a secret variable is masked") {
  ::setenv("ETLD_TEST_STAGE_TYPE", "no-such-type-from-env", 1);
  ::setenv("ETLD_TEST_INPUT", "no-such-input-from-env", 1);
  ::setenv("ETLD_TEST_DB_PASSWORD", "pw-from-env-Xq81", 1);
  auto l = load(
      "stages:\n"
      "  in: {type: \"${ETLD_TEST_STAGE_TYPE}\"}\n"
      "  out: {type: stdout, inputs: [\"${ETLD_TEST_INPUT}\"]}\n");
  std::string shown = l->diags.format();
  INFO(shown);
  CHECK(shown.find("unknown stage type the expansion of '${ETLD_TEST_STAGE_TYPE}'") != std::string::npos);
  CHECK(shown.find("input the expansion of '${ETLD_TEST_INPUT}' of stage 'out'") != std::string::npos);
  CHECK(shown.find("no-such-type-from-env") == std::string::npos);
  CHECK(shown.find("no-such-input-from-env") == std::string::npos);

  auto e = load(
      "stages:\n"
      "  in: {type: test_config_source}\n"
      "  f: {type: filter, inputs: [in], where: \"${ETLD_TEST_DB_PASSWORD} +\"}\n"
      "  out: {type: stdout, inputs: [f]}\n");
  shown = e->diags.format();
  INFO(shown);
  CHECK(shown.find("invalid expression") != std::string::npos);
  CHECK(shown.find("pw-from-env-Xq81") == std::string::npos);
}
