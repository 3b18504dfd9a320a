// Columns from the schema (connectors/postgres/schema_columns.hpp, schema_evolution.hpp): the
// column each Avro type becomes, column_overrides and skip, the configuration mistakes; and against
// a real PostgreSQL (scripts/dev-env): a table created from the schema, a field added mid-stream
// adding its column (evolve: add_columns) without losing or repeating a row, records of two schemas
// of one key kept in order, a safe widening applied, and the changes a table cannot take (a column
// missing without evolve, an unsafe type change, a removed NOT NULL field) sent to the dead letters
// with the reason while other records go on.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/schema_columns.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/debezium_fixture.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/postgres_sink_harness.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;
using etld::Batch;
using etld::Event;

namespace {

using etld::test::Db;
using etld::test::dsn;

std::string unique(const std::string& base) { return etld::test::unique_name("sc", base); }

std::string config_error(const std::string& yaml) { return etld::test::postgres_option_error(yaml); }

std::shared_ptr<const etld::avro::AvroSchema> schema(const std::string& fields) {
  return etld::avro::AvroSchema::parse(R"({"type":"record","name":"Order","namespace":"shop","fields":[)" +
                                       fields + "]}");
}

const std::string kV1 =
    R"({"name":"id","type":"long"},{"name":"name","type":"string"},)"
    R"({"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},)"
    R"({"name":"qty","type":"int"},)"
    R"({"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}})";
// v2: a new optional field.
const std::string kV2 = kV1 + R"(,{"name":"note","type":["null","string"],"default":null})";

// The sink; events carry the schemas the kafka source would have set.
struct Sink : etld::test::PostgresSinkHarness {
  Sink(const std::string& name, const std::string& options)
      : PostgresSinkHarness(name, options, "schema_columns") {}
  struct In {
    std::shared_ptr<const etld::avro::AvroSchema> schema;
    std::string record;  // JSON of the decoded record
    std::string topic = "orders";
    std::string key;  // "" = none; with record "" too: a tombstone
    std::shared_ptr<const etld::avro::AvroSchema> key_schema = nullptr;
  };
  void send(const std::vector<In>& in) {
    Batch b;
    for (const auto& i : in) {
      Event e;
      e.has_key = !i.key.empty();
      e.key = i.key;
      e.has_value = !i.record.empty();
      e.value = i.record;
      if (e.has_value && i.schema) e.set_record(etld::parse_json(i.record));
      e.schema = i.schema;
      e.key_schema = i.key_schema;
      e.topic = i.topic;
      e.partition = 0;
      number(e);
      b.push_back(std::move(e));
    }
    consume(std::move(b));
  }
};

std::string order(int id, const std::string& name, const std::string& extra = "") {
  return R"({"id":)" + std::to_string(id) + R"(,"name":")" + name +
         R"(","price":12345678.90,"qty":3,"at":"2026-12-06T12:00:00.123456Z")" + extra + "}";
}

}  // namespace

TEST_SUITE("postgres sink: columns from the schema") {
  TEST_CASE("each Avro type's column, overrides and skip, and the key") {
    using etld::pg::column_type_for;
    auto s = schema(
        R"({"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},)"
        R"({"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"s","type":"string"},)"
        R"({"name":"raw","type":"bytes"},{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},)"
        R"({"name":"day","type":{"type":"int","logicalType":"date"}},)"
        R"({"name":"tm","type":{"type":"int","logicalType":"time-millis"}},)"
        R"({"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},)"
        R"({"name":"lts","type":{"type":"long","logicalType":"local-timestamp-micros"}},)"
        R"({"name":"u","type":{"type":"string","logicalType":"uuid"}},)"
        R"({"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}},)"
        R"({"name":"arr","type":{"type":"array","items":"int"}},)"
        R"({"name":"opt","type":["null","long"]},{"name":"multi","type":["null","long","string"]},)"
        R"({"name":"nothing","type":"null"})");
    std::vector<etld::pg::ColumnSpec> cols;
    REQUIRE(etld::pg::columns_from_schema(s->root(), {}, {}, {"l"}, cols) == "");
    std::string got;
    for (const auto& c : cols) got += c.name + ":" + c.declared_type + (c.is_key ? "*" : "") + " ";
    CHECK(
        got ==
        "b:boolean i:integer l:bigint* f:real d:double precision s:text raw:bytea dec:numeric(20,4) day:date "
        "tm:time ts:timestamptz lts:timestamp without time zone u:uuid e:text arr:jsonb opt:bigint "
        "multi:jsonb ");
    CHECK(column_type_for(*s->root().fields[15].second)->nullable);
    CHECK(!column_type_for(*s->root().fields[2].second)->nullable);

    // Overrides replace a field's column or add one; skip leaves a field out.
    etld::pg::ColumnSpec as_text;
    as_text.name = "dec";
    as_text.quoted = "\"dec\"";
    as_text.path = "dec";
    as_text.type = etld::pg::PgType::text;
    etld::pg::ColumnSpec offset;
    offset.name = "_off";
    offset.quoted = "\"_off\"";
    offset.source = etld::pg::ColumnSource::offset;
    offset.type = etld::pg::PgType::bigint;
    REQUIRE(etld::pg::columns_from_schema(s->root(), {as_text, offset}, {"raw", "arr"}, {}, cols) == "");
    got.clear();
    for (const auto& c : cols) got += c.name + " ";
    CHECK(got == "b i l f d s dec day tm ts lts u e opt multi _off ");
    CHECK(cols[6].type == etld::pg::PgType::text);
    CHECK(cols[6].field == s->root().fields[7].second);  // still checked against the field

    CHECK(etld::pg::columns_from_schema(s->root(), {}, {}, {"nope"}, cols) ==
          "key column 'nope' is not a field of the records (schema shop.Order)");
    auto plain = etld::avro::AvroSchema::parse(R"("long")");
    CHECK(etld::pg::columns_from_schema(plain->root(), {}, {}, {}, cols).find("is not a record") !=
          std::string::npos);
  }

  TEST_CASE("configuration: column_overrides and evolve need columns to be absent") {
    CHECK(config_error("table: t\nmode: upsert\ncreate_table: true\nevolve: add_columns\n") == "");
    CHECK(config_error("table: t\ncolumn_overrides: {price: text, blob: skip, _o: {from: _offset, type: "
                       "bigint}}\n") == "");
    CHECK(config_error("table: t\ncolumns: {id: bigint}\ncolumn_overrides: {id: text}\n") ==
          "4: option 'column_overrides' applies when 'columns' is not given");
    CHECK(config_error("table: t\ncolumns: {id: bigint}\nevolve: add_columns\n") ==
          "4: option 'evolve' applies to columns from the schema (no 'columns:')");
    CHECK(config_error("table: t\ncolumn_overrides: {price: numbr}\n") ==
          "3: column 'price': unknown type 'numbr'");
  }

  TEST_CASE(
      "a table created from the schema; a field added mid-stream adds its column, no row lost or "
      "repeated") {
    Db db;
    const std::string table = unique("evolve");
    Sink s(table, "table: " + table + "\nmode: upsert\nkey: [id]\ncreate_table: true\nevolve: add_columns\n");
    auto v1 = schema(kV1), v2 = schema(kV2);
    s.send({{v1, order(1, "a")}, {v1, order(2, "b")}});
    CHECK(db.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                    "information_schema.columns WHERE table_name = '" +
                    table + "'") ==
          "id bigint, name text, price numeric, qty integer, at timestamp with time zone");
    CHECK(db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '" + table +
                    "'::regclass AND attname = 'price'") == "numeric(10,2)");
    // v2 records, and in the same batch v1 ones of the same key after them: the last one wins.
    s.send({{v2, order(3, "c", R"(,"note":"new")")},
            {v1, order(4, "d")},
            {v2, order(1, "a2", R"(,"note":"changed")")},
            {v1, order(1, "a3")},
            {v2, order(5, "e", R"(,"note":null)")}});
    CHECK(db.scalar(
              "SELECT string_agg(id || '=' || name || '/' || coalesce(note, '-'), ',' ORDER BY id) FROM " +
              table) == "1=a3/changed,2=b/-,3=c/new,4=d/-,5=e/-");
    CHECK(db.scalar("SELECT price || ' ' || qty || ' ' || at FROM " + table + " WHERE id = 3") ==
          "12345678.90 3 2026-12-06 12:00:00.123456+00");
    CHECK(s.acks->count(etld::AckStatus::done) == 7);
    CHECK(s.acks->count(etld::AckStatus::dead_lettered) == 0);
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE("Avro keys: without key:, the key schema's fields are the key; a tombstone deletes its row") {
    Db db;
    const std::string table = unique("akey");
    Sink s(table, "table: " + table + "\nmode: upsert\ncreate_table: true\n");
    auto v1 = schema(kV1);
    auto key = etld::avro::AvroSchema::parse(
        R"({"type":"record","name":"K","fields":[{"name":"id","type":"long"}]})");
    s.send({{v1, order(1, "a"), "orders", R"({"id":1})", key},
            {v1, order(2, "b"), "orders", R"({"id":2})", key},
            {v1, order(1, "a2"), "orders", R"({"id":1})", key}});
    CHECK(db.scalar("SELECT string_agg(id || name, ',' ORDER BY id) FROM " + table) == "1a2,2b");
    s.send({{nullptr, "", "orders", R"({"id":1})", key}});  // the tombstone of id 1
    CHECK(db.scalar("SELECT string_agg(id || name, ',' ORDER BY id) FROM " + table) == "2b");
    CHECK(db.scalar("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = '" +
                    table + "'::regclass") == "id");
    CHECK(s.acks->count(etld::AckStatus::done) == 4);
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE("changes a table cannot take are dead letters with the reason; other records go on") {
    Db db;
    const std::string table = unique("refuse");
    db.exec("CREATE TABLE " + table +
            " (id bigint PRIMARY KEY, name text, price numeric(10,2), qty integer, at timestamptz, "
            "extra text NOT NULL)");
    // Without evolve: the table has no column note, and nothing fills `extra`.
    {
      Sink s(table, "table: " + table + "\nmode: upsert\nkey: [id]\n");
      auto v1 = schema(kV1 + R"(,{"name":"extra","type":"string"})"), v2 = schema(kV2);
      s.send({{v1, order(1, "a", R"(,"extra":"x")")}, {v2, order(2, "b", R"(,"note":"n")")}});
      CHECK(db.scalar("SELECT string_agg(id || '=' || name, ',') FROM " + table) == "1=a");
      CHECK(db.scalar("SELECT error FROM " + table + "_dead_letters") ==
            "table " + table +
                ": it has no column note (the schema's field note, text); add it, or set evolve: "
                "add_columns; also, column extra is NOT NULL without a default, and the schema has no field "
                "extra (removed?): every row would fail; give the column a default or drop NOT NULL");
      CHECK(db.scalar("SELECT \"offset\" FROM " + table + "_dead_letters") == "1");
    }
    db.exec("ALTER TABLE " + table + " ADD COLUMN note text, ALTER COLUMN qty TYPE smallint");
    db.exec("TRUNCATE " + table + "_dead_letters");
    {
      Sink s(table, "table: " + table + "\nmode: upsert\nkey: [id]\nevolve: add_columns\n");
      // qty int into smallint: widened to integer; price as a string: no safe change; a schema
      // without `extra`: NOT NULL without a default.
      auto v3 = schema(kV2 + R"(,{"name":"extra","type":"string"})");
      auto text_price = schema(
          R"({"name":"id","type":"long"},{"name":"price","type":"string"},{"name":"extra","type":"string"})");
      auto no_extra = schema(kV2);
      s.send({{v3, order(3, "c", R"(,"note":null,"extra":"x")")},
              {text_price, R"({"id":4,"price":"cheap","extra":"x"})"},
              {no_extra, order(5, "e", R"(,"note":null)")}});
      CHECK(db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '" + table +
                      "'::regclass AND attname = 'qty'") == "integer");
      CHECK(db.scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM " + table) == "1,3");
      CHECK(db.scalar("SELECT string_agg(\"offset\" || ': ' || error, ' | ' ORDER BY \"offset\") FROM " +
                      table + "_dead_letters") ==
            "1: table " + table +
                ": column price (numeric(10,2)) cannot hold the field price (string): a string is not a "
                "number: "
                "numeric(10,2) refuses every value that is not one; no safe widening: change the column, or "
                "map the "
                "field with column_overrides | "
                "2: table " +
                table +
                ": column extra is NOT NULL without a default, and the schema has no field extra (removed?): "
                "every "
                "row would fail; give the column a default or drop NOT NULL");
      CHECK(s.acks->count(etld::AckStatus::dead_lettered) == 2);
    }
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE(
      "JSON records: columns learnt from their fields, the first value's type; new fields add columns") {
    Db db;
    const std::string table = unique("json");
    Sink s(table, "table: " + table +
                      "\nmode: upsert\nkey: [id]\ncreate_table: true\nevolve: add_columns\n"
                      "column_overrides: {secret: skip, _off: {from: _offset, type: bigint}}\n");
    s.send(
        {{nullptr,
          R"({"id":1,"name":"a","price":12345678901234567.89,"ok":true,"tags":["x"],"gone":null,"secret":"s"})"},
         {nullptr, R"({"id":2,"name":"b"})"},
         {nullptr, R"({"name":"c","id":3,"note":"new field"})"},
         {nullptr, R"({"id":1,"name":"a2","price":1.5})"}});
    CHECK(db.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                    "information_schema.columns WHERE table_name = '" +
                    table + "'") ==
          "id bigint, name text, price numeric, ok boolean, tags jsonb, _off bigint, note text");
    // A record is the row it stands for: the fields it lacks are NULL.
    CHECK(db.scalar("SELECT string_agg(concat_ws('/', id, name, price, ok, tags, _off, note), ' | ' ORDER BY "
                    "id) FROM " +
                    table) == "1/a2/1.5/3 | 2/b/1 | 3/c/2/new field");
    s.send({{nullptr, R"([1,2])"}, {nullptr, R"({"id":4})"}});
    CHECK(db.scalar("SELECT error FROM " + table + "_dead_letters") ==
          "the record is a JSON array, not an object: it has no fields to map to columns; map it with "
          "'columns:'");
    CHECK(db.count(table) == 4);
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE(
      "JSON records without evolve: a field the table lacks is a dead letter; tombstones delete by key") {
    Db db;
    const std::string table = unique("jsonfix");
    db.exec("CREATE TABLE " + table + " (id bigint PRIMARY KEY, name text)");
    Sink s(table, "table: " + table + "\nmode: upsert\nkey: [id]\n");
    s.send({{nullptr, R"({"id":1,"name":"a"})"}, {nullptr, R"({"id":2,"name":"b","extra":1})"}});
    CHECK(db.scalar("SELECT string_agg(id || name, ',') FROM " + table) == "1a");
    CHECK(db.scalar("SELECT error FROM " + table + "_dead_letters") ==
          "table " + table +
              ": it has no column extra (the schema's field extra, bigint); add it, or set evolve: "
              "add_columns");
    s.send({{nullptr, "", "orders", R"({"id":1})"}});  // a tombstone
    CHECK(db.count(table) == 0);
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  // Debezium's recorded events (tests/fixtures/debezium/README.md) into a table made from them.
  std::vector<Sink::In> fixture(const std::string& name) {
    std::vector<Sink::In> in;
    for (const auto& [key, value] : etld::test::debezium_fixture(name))
      in.push_back(
          {nullptr, value == "null" ? "" : value, "srv.public.fixture_customers", key == "null" ? "" : key});
    return in;
  }

  TEST_CASE("mode debezium, JSON in Kafka Connect's wrapper: the table made from the row image's schema") {
    Db db;
    const std::string table = unique("dbzw");
    Sink s(table, "table: " + table + "\nmode: debezium\ncreate_table: true\nevolve: add_columns\n");
    s.send(fixture("customers.schemas.tsv"));
    CHECK(
        db.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                  "information_schema.columns WHERE table_name = '" +
                  table + "'") ==
        "id integer, name text, balance text, seen timestamp with time zone, active boolean, note text, born "
        "date, tier text");
    CHECK(db.scalar(
              "SELECT string_agg(concat_ws('/', id, name, balance, seen, active, note, born, tier), ' | ' "
              "ORDER BY id) FROM " +
              table) == "3/bob/-0.01/2025-12-31 23:00:00+00/f/x | 4/cy/0.10/2026-12-06 16:00:00.5+00/t/gold");
    CHECK(db.scalar("SELECT count(*) FROM " + table + "_dead_letters") == "0");
    CHECK(db.scalar("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = '" +
                    table + "'::regclass") == "id");  // the key from the Kafka key's fields
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE("mode debezium, JSON without the wrapper: columns learnt from the row images") {
    Db db;
    const std::string table = unique("dbzj");
    Sink s(table, "table: " + table + "\nmode: debezium\ncreate_table: true\nevolve: add_columns\n");
    s.send(fixture("customers.tsv"));
    CHECK(db.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                    "information_schema.columns WHERE table_name = '" +
                    table + "'") ==
          "id bigint, name text, balance text, seen text, active boolean, born text, note text, tier text");
    CHECK(db.scalar(
              "SELECT string_agg(concat_ws('/', id, name, balance, active, note, tier), ' | ' ORDER BY id) "
              "FROM " +
              table) == "3/bob/-0.01/f/x | 4/cy/0.10/t/gold");
    CHECK(db.scalar("SELECT count(*) FROM " + table + "_dead_letters") == "0");
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  TEST_CASE("mode debezium: every PostgreSQL type through the wrapper's schema lands exactly") {
    Db db;
    for (const char* name :
         {"types.schemas.tsv", "types.connect.schemas.tsv", "types.isostring.schemas.tsv"}) {
      CAPTURE(name);
      const std::string table = unique("dbzt");
      Sink s(table, "table: " + table + "\nmode: debezium\ncreate_table: true\n");
      s.send(fixture(name));
      CHECK(db.scalar("SELECT count(*) FROM " + table + "_dead_letters") == "0");
      CHECK(db.count(table) == 2);
      CHECK(db.scalar("SELECT concat_ws('/', i8, n102, nfree, t, encode(b, 'hex'), d, tstz, u, jb) FROM " +
                      table + " WHERE id = 1") ==
            "9223372036854775807/-12345678.91/3.14159265358979323846264338327950288/tëxt/00ff10/1990-01-02/"
            "2026-12-06 12:00:00.123456+00/a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11/{\"b\": null}");
      db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
    }
  }
}
