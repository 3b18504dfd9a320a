// The fields a postgres sink's columns take from a JSON record, read with simdjson's On Demand
// parser in one forward pass over the payload, without a DOM or a Value tree: the COPY encoder's
// path for records that nothing upstream decoded.
#pragma once

#include <string_view>

#include "connectors/postgres/copy_field.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Reads `payload` for the `field` columns of `cfg`. Returns one value per column of cfg.columns
// (kind null where the record has no such field, or null, and for the other columns), borrowed
// from this thread's parser: valid until the next call on this thread. Returns nullptr when the
// record is left to the Value path (parse_json): it is not a JSON object, is not valid JSON
// (parse_json gives the reason), a column takes an object or an array (their JSON text is the
// Value tree's), or a column takes the whole record. Every value of the record is read, mapped
// or not, so that it is accepted exactly when parse_json accepts it.
// A real's `d` is not set: the columns that round numbers take it from its text with
// json_number_double (the others write the text).
const CopyField* read_fields_ondemand(const PostgresSinkConfig& cfg, std::string_view payload);

// A JSON number's text (is_json_number) as a double, as Value::from_json_number reads it: beyond
// double's range it is infinite, below it zero, with its sign.
double json_number_double(std::string_view text);

}  // namespace etld::pg
