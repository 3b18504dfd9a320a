// Kafka Connect's and Debezium's logical types, as the JsonConverter's wrapper names them in its
// `schema` ({"type": "int32", "name": "io.debezium.time.Date", "field": "born"}), turned into
// values the column types take: a date's days since 1970 into "1990-05-17", a timestamp's epoch
// micro- or nanoseconds into ISO text, a decimal's base64 two's-complement bytes into its exact
// digits, base64 bytes into the bytes for bytea, io.debezium.data.Json's text into its document for
// jsonb. Without the wrapper (schemas.enable false) the values are read as they are.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "connectors/postgres/pg_config.hpp"
#include "stages/engine/value.hpp"

namespace etld::pg {

// The logical types of a row image's top-level fields, read from the wrapper's schema.
struct LogicalField {
  std::string_view field;  // the field's name in the row image
  std::string_view type;   // "io.debezium.time.Date", "org.apache.kafka.connect.data.Decimal", ...
                           // or "bytes" for Connect bytes that are no decimal
  int scale = 0;           // Decimal's parameters.scale
};
using LogicalFields = std::vector<LogicalField>;

// The logical fields of a struct's schema (a Kafka key's), or with `image` of the struct field
// of that name in it (the envelope's "before" or "after"); `schema` must outlive the result.
LogicalFields logical_fields(const Value& schema, std::string_view image = {});

// `v`, the value of `field` for column `col`, converted as its logical type says; `v` itself
// (copied) when it has none or the column takes the value as it is. Returns false with `error`
// set when the value does not fit its type (a decimal that is not base64).
bool decode_logical(const LogicalFields& fields, std::string_view field, const ColumnSpec& col,
                    const Value& v, Value& out, std::string& error);

}  // namespace etld::pg
