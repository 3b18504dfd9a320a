// Whether a PostgreSQL column can hold the values of an Avro schema field, as the kafka source
// decodes them (docs/formats.md) and the postgres sink writes them: the rules `etld validate
// --against-db` applies to a sink fed by a `format: avro` source (docs/formats.md, "Checking
// tables against the schema").
#pragma once

#include <optional>
#include <string>

#include "connectors/avro/avro_schema.hpp"

namespace etld::pg {

// A column as the catalog has it.
struct ColumnType {
  std::string typname;  // base type name: int4, numeric, varchar, ... (a domain's base type)
  std::string display;  // format_type(): "numeric(10,2)"
  int precision = -1;   // numeric(p,s); -1: unconstrained
  int scale = -1;
  bool not_null = false;
};

// The Avro type as a reader would name it: "long", "decimal(20,4)", "timestamp-micros",
// "[null, long]", "record shop.Line".
std::string avro_type_text(const avro::AvroNode& node);

// Why `column` cannot hold the values of a field of type `field`, or nullopt when it can.
// `null_default`: the mapping gives a null a value of its own (`default:`), so a nullable field
// fits a NOT NULL column. `nullable_path`: a record on the way to the field may be null (then the
// field is absent, written as NULL too).
std::optional<std::string> avro_column_problem(const avro::AvroNode& field, const ColumnType& column,
                                               bool null_default, bool nullable_path = false);

}  // namespace etld::pg
