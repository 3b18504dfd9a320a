// parse_test_suite: the test cases of `etld test` as written (docs/testing.md), and every mistake
// in them reported at its file:line:column; a pipeline file's own `tests:` section, which the
// loader accepts without weakening its check of the other top-level keys.
#include "config/test_spec.hpp"

#include <doctest/doctest.h>

#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"

using namespace etld;

namespace {

std::optional<TestSuite> parse(const std::string& text, Diagnostics& diags) {
  return parse_test_suite(text, "dir/p.test.yaml", diags);
}

// The diagnostics as text, for a test that expects an error.
std::string errors_of(const std::string& text) {
  Diagnostics diags("dir/p.test.yaml");
  auto suite = parse(text, diags);
  CHECK_FALSE(suite.has_value());
  return diags.format();
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

const char* kSuite = R"(pipeline: ../pipelines/p.yaml
env: {PG_DSN: "postgresql://unused/"}
tests:
  - name: first
    stage: double
    inputs:
      - value: {id: 1, price: 1.10, note: "007", tags: [a, b], gone: ~}
        key: k1
        topic: orders
        partition: 3
        offset: 42
        timestamp: "2026-12-06T12:00:00.5Z"
        headers: {trace: abc}
      - raw: "{not json"
        timestamp: 1700000000000
      - tombstone: true
    outputs:
      - value: {id: 2}
      - fields: {id: 2, "tags.0": a}
        check: ["id > 1", "_key == 'k1'"]
    dead_letters:
      - reason_contains: "not JSON"
  - name: second
    stages: [double, sum]
    ordered: false
    inputs: []
)";

}  // namespace

TEST_CASE("a test file: its pipeline, env and cases with inputs, outputs and dead letters") {
  Diagnostics diags("dir/p.test.yaml");
  auto suite = parse(kSuite, diags);
  INFO(diags.format());
  REQUIRE(suite.has_value());
  CHECK(suite->pipeline_file == "pipelines/p.yaml");  // relative to the test file's directory
  REQUIRE(suite->env.size() == 1);
  CHECK(suite->env[0] == std::pair<std::string, std::string>{"PG_DSN", "postgresql://unused/"});
  REQUIRE(suite->cases.size() == 2);

  const TestCase& first = suite->cases[0];
  CHECK(first.name == "first");
  CHECK(first.mark.line + 1 == 4);  // the line a failure names
  CHECK(first.stages == std::vector<std::string>{"double"});
  CHECK(first.ordered);
  REQUIRE(first.inputs.size() == 3);
  const TestInput& in = first.inputs[0];
  // Numbers keep their digits, quoted scalars stay text, ~ is null.
  CHECK(in.payload == R"({"id":1,"price":1.10,"note":"007","tags":["a","b"],"gone":null})");
  CHECK(in.key == std::optional<std::string>("k1"));
  CHECK(in.topic == "orders");
  CHECK(in.partition == 3);
  CHECK(in.offset == 42);
  CHECK(in.timestamp_ms == 1796558400500);
  REQUIRE(in.headers.size() == 1);
  CHECK(in.headers[0].name == "trace");
  CHECK(in.headers[0].value == "abc");
  CHECK(first.inputs[1].payload == "{not json");
  CHECK(first.inputs[1].timestamp_ms == 1700000000000);
  CHECK_FALSE(first.inputs[1].key.has_value());
  CHECK(first.inputs[2].tombstone);

  REQUIRE(first.outputs.size() == 2);
  CHECK(first.outputs[0].describe() == R"({"id":2})");
  CHECK(first.outputs[1].describe() == R"(id = 2, tags.0 = "a", check "id > 1", check "_key == 'k1'")");
  CHECK(first.outputs[1].mark.line + 1 == 19);
  REQUIRE(first.dead_letters.size() == 1);
  CHECK(first.dead_letters[0].describe() == R"(reason contains "not JSON")");

  const TestCase& second = suite->cases[1];
  CHECK(second.stages == std::vector<std::string>{"double", "sum"});
  CHECK_FALSE(second.ordered);
  CHECK(second.inputs.empty());
  CHECK(second.outputs.empty());  // nothing listed: nothing may come out
}

TEST_CASE("an expectation matches an event, or says what differs") {
  Diagnostics diags("dir/p.test.yaml");
  auto suite = parse(kSuite, diags);
  REQUIRE(suite.has_value());
  const auto& outputs = suite->cases[0].outputs;

  Event e;
  e.value = R"({"tags":["a"],"id":2})";
  e.key = "k1";
  e.has_key = true;
  std::string why;
  CHECK(outputs[0].matches(e, why) == false);  // the whole record must be equal
  CHECK(why == "its record differs");
  CHECK(outputs[1].matches(e, why));

  e.key = "k2";
  CHECK_FALSE(outputs[1].matches(e, why));
  CHECK(why == R"(check "_key == 'k1'" is false)");
  e.set_record(parse_json(R"({"id":3,"tags":["a"]})"));
  CHECK_FALSE(outputs[1].matches(e, why));
  CHECK(why == "field 'id' is 3, not 2");

  Event same;
  same.value = R"({"id":2.0})";
  CHECK(outputs[0].matches(same, why));  // numbers compare as numbers

  Event rejected;
  rejected.value = "{not json";
  rejected.rejection = "stage 'parse': map: the payload is not JSON";
  CHECK(suite->cases[0].dead_letters[0].matches(rejected, why));
  rejected.rejection = "stage 'parse': map: something else";
  CHECK_FALSE(suite->cases[0].dead_letters[0].matches(rejected, why));
  CHECK(why == R"(the reason does not contain "not JSON")");
}

TEST_CASE("mistakes in a test file are reported at their file:line:column") {
  SUBCASE("an unknown key, with the key meant") {
    auto text =
        errors_of("pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs: []\n    outptus: []\n");
    CHECK(contains(
        text,
        "dir/p.test.yaml:6:5: error: unknown key 'outptus' in the test case (did you mean 'outputs'?)"));
  }
  SUBCASE("an input needs exactly one payload") {
    auto text = errors_of(
        "pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs:\n      - {value: 1, raw: x}\n");
    CHECK(contains(text, "dir/p.test.yaml:6:9: error: an input needs exactly one of 'value:'"));
    text = errors_of("pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs:\n      - {key: k}\n");
    CHECK(contains(text, "dir/p.test.yaml:6:9: error: an input needs exactly one of 'value:'"));
  }
  SUBCASE("a check that is no expression") {
    auto text = errors_of(
        "pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs: []\n    outputs:\n      - check: "
        "\"a >\"\n");
    CHECK(contains(text, "dir/p.test.yaml:7:16: error: check: invalid expression"));
  }
  SUBCASE("metadata of the wrong kind") {
    auto text = errors_of(
        "pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs:\n      - {value: 1, partition: -1, "
        "offset: x}\n");
    CHECK(contains(
        text, "dir/p.test.yaml:6:31: error: 'partition' must be a whole number of at least 0; got '-1'"));
    CHECK(contains(text,
                   "dir/p.test.yaml:6:43: error: 'offset' must be a whole number of at least 0; got 'x'"));
  }
  SUBCASE("reason is for dead letters only") {
    auto text = errors_of(
        "pipeline: p.yaml\ntests:\n  - name: a\n    stage: s\n    inputs: []\n    outputs:\n      - reason: "
        "x\n");
    CHECK(contains(text, "dir/p.test.yaml:7:9: error: unknown key 'reason' in the expected output"));
  }
  SUBCASE("a case without a name, a stage or inputs; two cases of one name") {
    auto text = errors_of(
        "pipeline: p.yaml\ntests:\n  - {}\n  - {name: b, stage: s, stages: [s], inputs: []}\n"
        "  - {name: b, stage: s, inputs: []}\n");
    CHECK(contains(text, "dir/p.test.yaml:3:5: error: a test case needs a 'name'"));
    CHECK(contains(text, "dir/p.test.yaml:3:5: error: a test case needs exactly one of 'stage:'"));
    CHECK(contains(text, "dir/p.test.yaml:3:5: error: a test case needs 'inputs:'"));
    CHECK(contains(text, "dir/p.test.yaml:4:5: error: a test case needs exactly one of 'stage:'"));
    CHECK(contains(text, "dir/p.test.yaml:5:5: error: two test cases are named 'b' (the other is at line 4"));
  }
  SUBCASE("a test file without its pipeline or its tests") {
    auto text = errors_of("env: {A: b}\n");
    CHECK(contains(text, "dir/p.test.yaml:1:1: error: missing 'pipeline:'"));
    CHECK(contains(text, "dir/p.test.yaml:1:1: error: missing 'tests:'"));
  }
  SUBCASE("YAML that does not parse") {
    auto text = errors_of("pipeline: p.yaml\ntests: [\n");
    CHECK(contains(text, "dir/p.test.yaml:"));
    CHECK(contains(text, "error:"));
  }
}

TEST_CASE("a pipeline file may hold its own tests, which the loader accepts and nothing else") {
  const std::string pipeline = R"(pipeline: inline
stages:
  numbers: {type: generate, count: 3}
  double: {type: map, inputs: [numbers], set: {".": ". * 2"}}
  out: {type: stdout, inputs: [double]}
tests:
  - name: doubles
    stage: double
    inputs: [{value: 2}]
    outputs: [{value: 4}]
)";
  Diagnostics loaded("inline.yaml");
  auto config = load_pipeline_text(pipeline, "inline.yaml", loaded);
  INFO(loaded.format());
  CHECK(config != nullptr);

  Diagnostics diags("inline.yaml");
  auto suite = parse_test_suite(pipeline, "inline.yaml", diags);
  INFO(diags.format());
  REQUIRE(suite.has_value());
  CHECK(suite->pipeline_file == "inline.yaml");
  REQUIRE(suite->cases.size() == 1);
  CHECK(suite->cases[0].mark.line + 1 == 7);

  // The loader's unknown-key check still holds, and tests: must be a list.
  Diagnostics typo("inline.yaml");
  CHECK(load_pipeline_text(pipeline + "testz: []\n", "inline.yaml", typo) == nullptr);
  CHECK(contains(typo.format(),
                 "inline.yaml:11:1: error: unknown top-level key 'testz' (did you mean 'tests'?)"));
  Diagnostics not_list("inline.yaml");
  std::string scalar_tests = pipeline.substr(0, pipeline.find("tests:")) + "tests: yes\n";
  CHECK(load_pipeline_text(scalar_tests, "inline.yaml", not_list) == nullptr);
  CHECK(contains(not_list.format(), "inline.yaml:6:"));

  Diagnostics none("plain.yaml");
  CHECK_FALSE(parse_test_suite(pipeline.substr(0, pipeline.find("tests:")), "plain.yaml", none).has_value());
  CHECK(contains(none.format(), "plain.yaml:1:1: error: the pipeline file has no 'tests:'"));
}

TEST_CASE("yaml_to_value reads YAML as the JSON it spells") {
  auto v = [](const char* text) { return yaml_to_value(YAML::Load(text)).to_json(); };
  CHECK(v("1") == "1");
  CHECK(v("\"1\"") == "\"1\"");
  CHECK(v("12345678901234567890.5") == "12345678901234567890.5");
  CHECK(v("true") == "true");
  CHECK(v("'true'") == "\"true\"");
  CHECK(v("~") == "null");
  CHECK(v("null") == "null");
  CHECK(v("0x1F") == "\"0x1F\"");  // not a JSON number: text
  CHECK(v("{a: [1, {b: c}], d: }") == R"({"a":[1,{"b":"c"}],"d":null})");
}
