// The postgres sink's defaults are its option specs': leaving an option out (or one key of the
// batch and retry maps) reads the same configuration as writing its default text. Defaults that
// depend on other options (delete_on_tombstone, the dead-letter table) stay the code's, as the
// specs' docs say.
#include <doctest/doctest.h>

#include <string>

#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;

namespace {

pg::PostgresSinkConfig config_of(const std::string& options_yaml) {
  StageConfig cfg = test::stage_config("postgres", options_yaml, "out");
  cfg.inputs = {"in"};
  return pg::parse_config(cfg, PipelineConfig{});
}

const std::string kRequired = "dsn: 'host=127.0.0.1', table: t, columns: {id: bigint}";

void check_same(const pg::PostgresSinkConfig& a, const pg::PostgresSinkConfig& b) {
  CHECK(a.mode == b.mode);
  CHECK(a.create_table == b.create_table);
  CHECK(a.max_rows == b.max_rows);
  CHECK(a.max_wait == b.max_wait);
  CHECK(a.initial_backoff == b.initial_backoff);
  CHECK(a.max_backoff == b.max_backoff);
  CHECK(a.max_dead_letter_ratio == b.max_dead_letter_ratio);
  CHECK(a.on_dead_letter_ratio == b.on_dead_letter_ratio);
  CHECK(a.exactly_once == b.exactly_once);
  CHECK(a.offsets_qualified == b.offsets_qualified);
  CHECK(a.delete_on_tombstone == b.delete_on_tombstone);
  CHECK(a.dead_letter_qualified == b.dead_letter_qualified);
  CHECK(a.copy_target_sql == b.copy_target_sql);
  CHECK(a.create_table_sql == b.create_table_sql);
}

}  // namespace

TEST_CASE("postgres: options left out read as their default text written out") {
  const auto omitted = config_of("{" + kRequired + "}");
  const auto written =
      config_of("{" + kRequired +
                ", mode: insert, create_table: false, batch: {max_rows: 10000, max_wait: 100ms}, "
                "retry: {initial_backoff: 100ms, max_backoff: 5s}, delivery: at_least_once, "
                "max_dead_letter_ratio: 0.5, on_dead_letter_ratio: pause}");
  check_same(omitted, written);
  // And those are the values the reference shows.
  CHECK(omitted.max_rows == 10000);
  CHECK(omitted.max_wait == std::chrono::milliseconds(100));
  CHECK(omitted.initial_backoff == std::chrono::milliseconds(100));
  CHECK(omitted.max_backoff == std::chrono::seconds(5));
  CHECK(omitted.max_dead_letter_ratio == doctest::Approx(0.5));
  CHECK(omitted.on_dead_letter_ratio == pg::GuardAction::pause);
}

TEST_CASE("postgres: a key left out of batch or retry takes that key's default") {
  const auto some = config_of("{" + kRequired + ", batch: {max_rows: 500}, retry: {max_backoff: 30s}}");
  CHECK(some.max_rows == 500);
  CHECK(some.max_wait == std::chrono::milliseconds(100));
  CHECK(some.initial_backoff == std::chrono::milliseconds(100));
  CHECK(some.max_backoff == std::chrono::seconds(30));
}

TEST_CASE("postgres: exactly_once's offsets table left out reads as its default text written out") {
  const auto omitted = config_of("{" + kRequired + ", delivery: exactly_once}");
  const auto written = config_of("{" + kRequired + ", delivery: exactly_once, offsets_table: etld_offsets}");
  check_same(omitted, written);
  CHECK(omitted.offsets_qualified == "\"etld_offsets\"");
  CHECK(omitted.create_offsets_sql == written.create_offsets_sql);
}

TEST_CASE("postgres: defaults that depend on other options are the code's") {
  CHECK_FALSE(config_of("{" + kRequired + "}").delete_on_tombstone);
  CHECK(config_of("{" + kRequired + ", key: [id]}").delete_on_tombstone);  // true when key is set
  CHECK(config_of("{" + kRequired + "}").dead_letter_qualified == "\"t_dead_letters\"");
}
