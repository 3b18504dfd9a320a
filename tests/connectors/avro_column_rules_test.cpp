// The rules of `etld validate --against-db` for a sink fed by Avro (connectors/postgres/
// avro_column_rules.hpp): which PostgreSQL column types hold which Avro schema fields, and what is
// said when one does not. Schemas are compiled from their text as the registry's are.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/avro_column_rules.hpp"

using etld::avro::AvroSchema;
using etld::pg::avro_column_problem;
using etld::pg::avro_type_text;
using etld::pg::ColumnType;

namespace {

// The field type written as Avro JSON, e.g. "\"long\"" or {"type": "bytes", "logicalType": ...}.
std::shared_ptr<const AvroSchema> field_schema(const std::string& type) {
  return AvroSchema::parse(R"({"type": "record", "name": "R", "fields": [{"name": "f", "type": )" + type +
                           "}]}");
}

ColumnType column(const std::string& typname, const std::string& display, int precision = -1, int scale = -1,
                  bool not_null = false) {
  return ColumnType{typname, display, precision, scale, not_null};
}

// The problem of field type `type` in `col` ("" when it fits).
std::string problem(const std::string& type, const ColumnType& col, bool null_default = false) {
  auto schema = field_schema(type);
  auto p = avro_column_problem(*schema->root().fields.at(0).second, col, null_default);
  return p ? *p : "";
}

std::string text_of(const std::string& type) {
  auto schema = field_schema(type);
  return avro_type_text(*schema->root().fields.at(0).second);
}

const char* const kDecimal20_4 =
    R"({"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4})";
const char* const kTimestampMicros = R"({"type": "long", "logicalType": "timestamp-micros"})";

}  // namespace

TEST_CASE("avro_type_text names types as the schema writes them, logical types included") {
  CHECK(text_of(R"("long")") == "long");
  CHECK(text_of(kDecimal20_4) == "decimal(20,4)");
  CHECK(text_of(kTimestampMicros) == "timestamp-micros");
  CHECK(text_of(R"(["null", "long"])") == "[null, long]");
  CHECK(text_of(R"({"type": "fixed", "name": "Id", "size": 16, "logicalType": "uuid"})") == "uuid");
  CHECK(text_of(R"({"type": "fixed", "name": "Four", "size": 4})") == "fixed(4)");
  CHECK(text_of(R"({"type": "enum", "name": "Color", "namespace": "shop", "symbols": ["RED"]})") ==
        "enum shop.Color");
}

TEST_CASE("integers: an int fits integer, a long only bigint or a numeric wide enough") {
  CHECK(problem(R"("int")", column("int4", "integer")) == "");
  CHECK(problem(R"("long")", column("int8", "bigint")) == "");
  CHECK(problem(R"("long")", column("int4", "integer")) == "its values may exceed the range of integer");
  CHECK(problem(R"("int")", column("int2", "smallint")) == "its values may exceed the range of smallint");
  CHECK(problem(R"("long")", column("numeric", "numeric")) == "");
  CHECK(problem(R"("long")", column("numeric", "numeric(10,2)", 10, 2)) ==
        "its values may have 19 digits, numeric(10,2) holds 8 before the decimal point");
  CHECK(problem(R"("long")", column("float8", "double precision")) == "");
  CHECK(problem(R"("int")", column("bool", "boolean")) == "boolean cannot hold it");
}

TEST_CASE("a string goes into text-like and parsed types, not into numbers") {
  CHECK(problem(R"("string")", column("int8", "bigint")) ==
        "a string is not a number: bigint refuses every value that is not one");
  CHECK(problem(R"("string")", column("numeric", "numeric")) ==
        "a string is not a number: numeric refuses every value that is not one");
  CHECK(problem(R"("string")", column("text", "text")) == "");
  CHECK(problem(R"("string")", column("varchar", "character varying(20)")) == "");
  CHECK(problem(R"("string")", column("timestamptz", "timestamp with time zone")) == "");
  CHECK(problem(R"("string")", column("uuid", "uuid")) == "");
  CHECK(problem(R"("string")", column("bool", "boolean")) == "boolean cannot hold it");
}

TEST_CASE("decimals: every digit must fit, before and after the point") {
  CHECK(problem(kDecimal20_4, column("numeric", "numeric")) == "");
  CHECK(problem(kDecimal20_4, column("numeric", "numeric(24,4)", 24, 4)) == "");
  CHECK(problem(kDecimal20_4, column("numeric", "numeric(30,6)", 30, 6)) == "");
  CHECK(problem(kDecimal20_4, column("numeric", "numeric(10,2)", 10, 2)) ==
        "it has 4 decimal place(s), numeric(10,2) keeps 2: PostgreSQL would round them away");
  CHECK(problem(kDecimal20_4, column("numeric", "numeric(20,4)", 20, 4)) == "");
  CHECK(problem(kDecimal20_4, column("numeric", "numeric(19,4)", 19, 4)) ==
        "it has up to 16 digits before the decimal point, numeric(19,4) holds 15");
  CHECK(problem(kDecimal20_4, column("int4", "integer")) ==
        "it has 4 decimal place(s), which integer cannot hold");
  CHECK(problem(R"({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 0})",
                column("int4", "integer")) == "");
  CHECK(problem(R"({"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 0})",
                column("int4", "integer")) == "its 12 digits may exceed the range of integer");
  CHECK(problem(kDecimal20_4, column("float8", "double precision")) ==
        "a float column rounds a decimal's digits; use numeric to keep them");
  CHECK(problem(kDecimal20_4, column("text", "text")) == "");
}

TEST_CASE("dates, times and timestamps") {
  CHECK(problem(kTimestampMicros, column("timestamptz", "timestamp with time zone")) == "");
  CHECK(problem(kTimestampMicros, column("timestamp", "timestamp without time zone")) == "");
  CHECK(problem(kTimestampMicros, column("date", "date")) ==
        "a date column loses the time of day; use timestamptz");
  CHECK(problem(kTimestampMicros, column("text", "text")) == "");
  CHECK(problem(kTimestampMicros, column("int8", "bigint")) == "bigint cannot hold it");
  CHECK(problem(R"({"type": "int", "logicalType": "date"})", column("date", "date")) == "");
  CHECK(problem(R"({"type": "int", "logicalType": "date"})",
                column("timestamptz", "timestamp with time zone")) == "");
  CHECK(problem(R"({"type": "long", "logicalType": "time-micros"})",
                column("time", "time without time zone")) == "");
  CHECK(problem(R"("long")", column("timestamptz", "timestamp with time zone")) ==
        "a number is not a time: give the field a timestamp logical type, or use bigint");
}

TEST_CASE("bytes go into bytea, not into text; uuids into uuid") {
  CHECK(problem(R"("bytes")", column("bytea", "bytea")) == "");
  CHECK(problem(R"({"type": "fixed", "name": "Four", "size": 4})", column("bytea", "bytea")) == "");
  CHECK(problem(R"("bytes")", column("text", "text")) ==
        "raw bytes are not text: text refuses bytes that are not UTF-8; use bytea");
  CHECK(problem(R"("bytes")", column("jsonb", "jsonb")) == "raw bytes are not JSON text");
  CHECK(problem(R"("long")", column("bytea", "bytea")) == "bytea takes Avro bytes, fixed or string");
  CHECK(problem(R"({"type": "string", "logicalType": "uuid"})", column("uuid", "uuid")) == "");
  CHECK(problem(R"({"type": "fixed", "name": "Id", "size": 16})", column("uuid", "uuid")) ==
        "uuid cannot hold it");
}

TEST_CASE("records, arrays and maps go into jsonb or text") {
  const std::string rec = R"({"type": "record", "name": "A", "fields": [{"name": "c", "type": "string"}]})";
  CHECK(problem(rec, column("jsonb", "jsonb")) == "");
  CHECK(problem(R"({"type": "array", "items": "long"})", column("jsonb", "jsonb")) == "");
  CHECK(problem(R"({"type": "map", "values": "long"})", column("text", "text")) == "");
  CHECK(problem(rec, column("int8", "bigint")) == "bigint cannot hold it");
}

TEST_CASE("nullable fields: a NOT NULL column needs the mapping's default") {
  const ColumnType not_null = column("int8", "bigint", -1, -1, true);
  CHECK(problem(R"(["null", "long"])", column("int8", "bigint")) == "");
  CHECK(problem(R"(["null", "long"])", not_null) ==
        "the field may be null and the column is NOT NULL: etld writes NULL for it (a column DEFAULT fills "
        "only "
        "columns that are not mapped)");
  CHECK(problem(R"(["null", "long"])", not_null, /*null_default=*/true) == "");
  CHECK(problem(R"("long")", not_null) == "");
  CHECK(problem(R"(["null", "long"])", column("int4", "integer")) ==
        "its values may exceed the range of integer");
  CHECK(problem(R"(["null", "long", "string"])", column("int8", "bigint")) ==
        "its branch string: a string is not a number: bigint refuses every value that is not one");
  // A record on the way to the field may be null: the field is then absent, written as NULL.
  auto schema = field_schema(R"("long")");
  CHECK(avro_column_problem(*schema->root().fields.at(0).second, not_null, false, /*nullable_path=*/true));
}

TEST_CASE("types etld cannot judge (enums, arrays of PostgreSQL) are left to PostgreSQL") {
  CHECK(problem(R"({"type": "enum", "name": "Color", "symbols": ["RED"]})", column("mood", "mood")) == "");
  CHECK(problem(R"("string")", column("_text", "text[]")) == "");
  CHECK(problem(R"({"type": "enum", "name": "Color", "symbols": ["RED"]})", column("text", "text")) == "");
}
