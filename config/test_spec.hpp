// The test cases `etld test` runs (docs/testing.md), read from a test file (`pipeline:` naming
// the pipeline file, `tests:`) or from the `tests:` section of a pipeline file itself. Every
// problem is reported with its file:line:column, like the loader's. Running the cases against
// the pipeline's stages is daemon/test_cmd.cpp's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "stages/engine/event.hpp"
#include "stages/engine/value.hpp"
#include "stages/expr/expr.hpp"

namespace etld {

// One input event, as a Kafka source would hand it on.
struct TestInput {
  std::string payload;     // `value:` written as JSON, or `raw:` byte for byte
  bool tombstone = false;  // `tombstone: true`: a Kafka record with no value
  std::optional<std::string> key;
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = 0;
  std::vector<Header> headers;
};

// What one expected event must be. Every part given must hold; dead letters also name their
// reason. Matching an event reads its record (Event::record), so it may parse the payload.
struct EventExpectation {
  YAML::Mark mark;
  std::optional<Value> value;  // the whole record, exactly
  // These field paths (or metadata: _key, _topic...) hold these values; a path is read as an
  // expression reads it, so "items.0.sku" indexes an array.
  std::vector<std::pair<std::shared_ptr<const Expr>, Value>> fields;
  std::vector<std::shared_ptr<const Expr>> checks;     // each of these is true of the event
  std::optional<std::string> reason, reason_contains;  // dead letters: the rejection's text
  // Whether `event` is what this expects; when not, `why` says what differs.
  bool matches(Event& event, std::string& why) const;
  std::string describe() const;  // what it expects, on one line, for a diff
};

struct TestCase {
  std::string name;
  YAML::Mark mark;                  // of the case's map: the line a failure names
  std::vector<std::string> stages;  // one transform, or a path of them fed in order
  std::vector<YAML::Mark> stage_marks;
  std::vector<TestInput> inputs;
  std::vector<EventExpectation> outputs, dead_letters;
  bool ordered = true;  // outputs in the order listed (`ordered: false`: in any order)
};

struct TestSuite {
  std::string file;           // where the cases are written
  std::string pipeline_file;  // the pipeline they test (this file itself, for `tests:` inside it)
  YAML::Mark pipeline_mark;
  std::vector<std::pair<std::string, std::string>> env;  // `env:` set while the pipeline loads
  std::vector<TestCase> cases;
};

// Parses the test cases in `text` (the file `file`). A file with a `stages:` key is a pipeline
// with its tests inside; any other needs `pipeline:`, a path relative to `file`'s directory.
// nullopt, with every problem in `diags`, when the cases cannot be read.
std::optional<TestSuite> parse_test_suite(const std::string& text, const std::string& file,
                                          Diagnostics& diags);

// A YAML node as the JSON value it spells: maps, lists, quoted scalars as strings, and plain
// scalars as null (null, ~ or nothing), true, false, a JSON number or else a string.
Value yaml_to_value(const YAML::Node& node);

}  // namespace etld
