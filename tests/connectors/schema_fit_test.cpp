// The decision shared by the postgres sink's writer and `etld validate --against-db` for a table
// whose columns come from the records' Avro schema (connectors/postgres/schema_fit.hpp): from the
// table's catalog columns and the (table, schema) config alone, every reason the table cannot
// take the records, in order, and every change evolve: add_columns would make. The writer's use of
// it against a real PostgreSQL is postgres_schema_columns_test.cpp's; validate's,
// tests/e2e/avro_validate_schema_columns_test.sh's.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/schema_columns.hpp"
#include "connectors/postgres/schema_fit.hpp"
#include "stages/engine/registry.hpp"

using etld::pg::ColumnType;
using etld::pg::PostgresSinkConfig;
using etld::pg::SchemaFit;
using etld::pg::TableColumn;
using etld::pg::TableColumns;

namespace {

// The stage's config as parse_config makes it from `options` (no connection is made).
PostgresSinkConfig stage_config(const std::string& options) {
  const etld::StageType* type = etld::find_stage_type("postgres");
  REQUIRE(type != nullptr);
  etld::StageConfig stage;
  stage.name = "to_pg";
  stage.type = "postgres";
  stage.node = YAML::Load("dsn: 'host=localhost'\ntable: shop.orders\n" + options);
  stage.options = etld::Options(stage.node, &type->options);
  return etld::pg::parse_config(stage, etld::PipelineConfig{});
}

const std::string kOrder =
    R"({"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},)"
    R"({"name":"qty","type":"long"},)"
    R"({"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},)"
    R"({"name":"note","type":["null","string"],"default":null}]})";

// What the table `table` decides for records of kOrder under the stage options `options`.
SchemaFit fit(const TableColumns& table, const std::string& options) {
  const PostgresSinkConfig t = stage_config(options);
  const auto schema = etld::avro::AvroSchema::parse(kOrder);
  std::string error;
  const auto c = etld::pg::config_for_schema(t, schema, schema->root(), {}, 0, error);
  REQUIRE_MESSAGE(c != nullptr, error);
  return etld::pg::fit_table_to_schema(table, *c);
}

TableColumn column(const std::string& typname, const std::string& display, bool not_null = false,
                   bool has_default = false, int precision = -1, int scale = -1) {
  return TableColumn{ColumnType{typname, display, precision, scale, not_null}, has_default};
}

// A table of an older version of the schema: no note, qty integer, price numeric(10,2).
TableColumns older_table() {
  return {{"id", column("int8", "bigint", true)},
          {"qty", column("int4", "integer")},
          {"price", column("numeric", "numeric(10,2)", false, false, 10, 2)}};
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

TEST_SUITE("schema_fit: a table against a record schema") {
  TEST_CASE("no table: created with create_table, else refused") {
    SchemaFit f = fit({}, "mode: upsert\nkey: [id]\n");
    CHECK(!f.create);
    CHECK(joined(f.refusals) == "table shop.orders does not exist: create it, or set create_table: true\n");
    f = fit({}, "mode: upsert\nkey: [id]\ncreate_table: true\n");
    CHECK(f.create);
    CHECK(f.refusals.empty());
    CHECK(f.changes.empty());
  }

  TEST_CASE("without evolve: every reason, in the order of the schema's columns") {
    const SchemaFit f = fit(older_table(), "mode: upsert\nkey: [id]\n");
    CHECK(
        joined(f.refusals) ==
        "column qty (integer) cannot hold the field qty (long): its values may exceed the range of integer; "
        "evolve: add_columns would widen it to bigint\n"
        "column price (numeric(10,2)) cannot hold the field price (decimal(12,2)): it has up to 10 digits "
        "before the decimal point, numeric(10,2) holds 8; evolve: add_columns would widen it to "
        "numeric(12,2)\n"
        "it has no column note (the schema's field note, text); add it, or set evolve: add_columns\n");
    CHECK(f.changes.empty());
    CHECK(!f.create);
  }

  TEST_CASE("with evolve: the safe changes, as ALTER TABLE clauses, log lines and plans") {
    const SchemaFit f = fit(older_table(), "mode: upsert\nkey: [id]\nevolve: add_columns\n");
    CHECK(f.refusals.empty());
    std::string clauses, done, planned;
    for (const auto& c : f.changes) {
      clauses += c.clause + "\n";
      done += c.done + "\n";
      planned += c.planned + "\n";
    }
    CHECK(clauses ==
          "ALTER COLUMN \"qty\" TYPE bigint\nALTER COLUMN \"price\" TYPE numeric(12,2)\n"
          "ADD COLUMN IF NOT EXISTS \"note\" text\n");
    CHECK(done ==
          "widened column qty from integer to bigint\nwidened column price from numeric(10,2) to "
          "numeric(12,2)\nadded column note text\n");
    CHECK(planned ==
          "widen column qty from integer to bigint\nwiden column price from numeric(10,2) to numeric(12,2)\n"
          "add column note text\n");
  }

  TEST_CASE("NOT NULL: dropped for a nullable field by evolve, never for a key; a column no field fills") {
    TableColumns table = older_table();
    table["qty"] = column("int8", "bigint");
    table["price"] = column("numeric", "numeric");
    table["note"] = column("text", "text", /*not_null=*/true);
    table["extra"] = column("text", "text", /*not_null=*/true);
    table["created"] = column("timestamptz", "timestamp with time zone", true, /*has_default=*/true);
    const std::string no_field_fills =
        "column extra is NOT NULL without a default, and the schema has no field extra (removed?): every row "
        "would fail; give the column a default or drop NOT NULL\n";
    SchemaFit f = fit(table, "mode: upsert\nkey: [id]\n");
    CHECK(
        joined(f.refusals) ==
        "column note is NOT NULL and the field note ([null, string]) may be null; evolve: add_columns would "
        "drop NOT NULL\n" +
            no_field_fills);
    f = fit(table, "mode: upsert\nkey: [id]\nevolve: add_columns\n");
    CHECK(joined(f.refusals) == no_field_fills);
    REQUIRE(f.changes.size() == 1);
    CHECK(f.changes[0].clause == "ALTER COLUMN \"note\" DROP NOT NULL");
    CHECK(f.changes[0].planned == "drop NOT NULL of column note");

    // A key column for a nullable field: refused with evolve too.
    table.erase("extra");
    f = fit(table, "mode: upsert\nkey: [note]\nevolve: add_columns\n");
    CHECK(joined(f.refusals) ==
          "column note is NOT NULL and the field note ([null, string]) may be null (a key column cannot be "
          "nullable)\n");
  }

  TEST_CASE("a change PostgreSQL cannot make without loss is refused with evolve too") {
    TableColumns table = older_table();
    table["qty"] = column("bool", "boolean");
    table["note"] = column("text", "text");
    const SchemaFit f = fit(table, "mode: upsert\nkey: [id]\nevolve: add_columns\n");
    CHECK(joined(f.refusals) ==
          "column qty (boolean) cannot hold the field qty (long): boolean cannot hold it; no safe widening: "
          "change the column, or map the field with column_overrides\n");
    // The widening evolve would make alongside is listed, though nothing is changed while refused.
    REQUIRE(f.changes.size() == 1);
    CHECK(f.changes[0].clause == "ALTER COLUMN \"price\" TYPE numeric(12,2)");
  }

  TEST_CASE("a real column for a double field: widened by evolve, taken as it is without") {
    // validate's rules take a double into real, which rounds it (0.1 becomes 0.100000001...); a
    // table evolving from a float field to a double one is widened instead.
    const auto schema = etld::avro::AvroSchema::parse(
        R"({"type":"record","name":"M","fields":[{"name":"id","type":"long"},{"name":"x","type":"double"}]})");
    const TableColumns table{{"id", column("int8", "bigint", true)}, {"x", column("float4", "real")}};
    auto fit_double = [&](const std::string& options) {
      const PostgresSinkConfig t = stage_config(options);
      std::string error;
      const auto c = etld::pg::config_for_schema(t, schema, schema->root(), {}, 0, error);
      REQUIRE_MESSAGE(c != nullptr, error);
      return etld::pg::fit_table_to_schema(table, *c);
    };
    SchemaFit f = fit_double("mode: upsert\nkey: [id]\n");
    CHECK(f.refusals.empty());
    CHECK(f.changes.empty());
    f = fit_double("mode: upsert\nkey: [id]\nevolve: add_columns\n");
    CHECK(f.refusals.empty());
    REQUIRE(f.changes.size() == 1);
    CHECK(f.changes[0].clause == "ALTER COLUMN \"x\" TYPE double precision");
    CHECK(f.changes[0].done == "widened column x from real to double precision");
  }
}
