// start_at / stop_at as written: times (seconds optional), earliest / end, explicit offsets, and
// the errors for anything else, at the culprit's position; the combinations the source refuses.
#include <doctest/doctest.h>

#include <string>

#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "connectors/kafka/kafka_bounds.hpp"
#include "tests/support/fake_contexts.hpp"

namespace etld {

using kafka::ReadBound;

TEST_CASE("kafka bounds: RFC 3339 times, with or without seconds and with offsets") {
  CHECK(kafka::parse_bound_time("2026-12-01T10:00:00Z") == 1'796'119'200'000);
  CHECK(kafka::parse_bound_time("2026-12-01T10:00Z") == 1'796'119'200'000);
  CHECK(kafka::parse_bound_time("2026-12-01T11:00+01:00") == 1'796'119'200'000);
  CHECK(kafka::parse_bound_time("2026-12-01T10:00:00.250Z") == 1'796'119'200'250);
  CHECK(kafka::parse_bound_time("2026-12-01") == -1);
  CHECK(kafka::parse_bound_time("2026-12-01T10Z") == -1);
  CHECK(kafka::parse_bound_time("2026-12-01T10:00") == -1);  // no zone: which 10:00?
  CHECK(kafka::parse_bound_time("yesterday") == -1);
}

TEST_CASE("kafka bounds: start_at and stop_at as written") {
  auto start = kafka::read_bound(YAML::Load("2026-12-01T10:00Z"), true);
  CHECK(start.kind == ReadBound::Kind::time);
  CHECK(start.time_ms == 1'796'119'200'000);
  CHECK(kafka::read_bound(YAML::Load("earliest"), true).kind == ReadBound::Kind::earliest);
  CHECK(kafka::read_bound(YAML::Load("end"), false).kind == ReadBound::Kind::end);
  auto offsets = kafka::read_bound(YAML::Load("{orders: {0: 42, 3: 7}, payments: {1: 0}}"), false);
  REQUIRE(offsets.kind == ReadBound::Kind::offsets);
  CHECK(offsets.offsets.size() == 3);
  CHECK(offsets.offsets.at({"orders", 0}) == 42);
  CHECK(offsets.offsets.at({"orders", 3}) == 7);
  CHECK(offsets.offsets.at({"payments", 1}) == 0);

  // Each side's keyword only on its side: `end` is no start, `earliest` no stop.
  CHECK_THROWS_AS(kafka::read_bound(YAML::Load("end"), true), ConfigError);
  CHECK_THROWS_AS(kafka::read_bound(YAML::Load("earliest"), false), ConfigError);
  CHECK_THROWS_AS(kafka::read_bound(YAML::Load("[1, 2]"), true), ConfigError);
  CHECK_THROWS_AS(kafka::read_bound(YAML::Load("{orders: 5}"), true), ConfigError);
  CHECK_THROWS_AS(kafka::read_bound(YAML::Load("{orders: {0: -1}}"), true), ConfigError);
  // The error is at the culprit: the partition's key, line 2 column 3 (0-based 1 and 2).
  try {
    kafka::read_bound(YAML::Load("orders:\n  x: 5\n"), false);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.mark().line == 1);
    CHECK(e.mark().column == 2);
    CHECK(std::string(e.what()).find("orders partition 'x'") != std::string::npos);
  }
}

TEST_CASE("kafka bounds: the source's options") {
  using test::configure_stage;
  const std::string base = "{brokers: 'h:1', group: g, topics: [orders], ";
  CHECK_NOTHROW(configure_stage("kafka", base + "start_at: '2026-12-01T10:00Z', stop_at: end}"));
  CHECK_NOTHROW(configure_stage("kafka", base + "stop_at: '2026-12-01T12:00:00Z'}"));
  CHECK_NOTHROW(configure_stage("kafka", base + "start_at: {orders: {0: 5}}, stop_at: {orders: {0: 9}}}"));
  // start_at alone would rewind the group on every assignment, forever.
  CHECK_THROWS_AS(configure_stage("kafka", base + "start_at: earliest}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("kafka", base + "stop_at: end, stop_at_end: true}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("kafka", base + "start_at: soon, stop_at: end}"), ConfigError);
}

}  // namespace etld
