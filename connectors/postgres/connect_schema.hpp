// The schema of a Debezium change event's row image, for JSON events in Kafka Connect's
// JsonConverter wrapper ({"schema": {...}, "payload": {...}}, schemas.enable=true, Debezium's
// default), as an Avro schema: a postgres sink in mode debezium without `columns:` maps its
// columns from an Avro record (schema_columns.hpp), and for Avro events that record is the
// envelope's `after`; this gives JSON events the same record, so that one column mapping serves
// both.
//
// The Connect types become the Avro types Debezium's AvroConverter (Confluent's AvroData) writes
// for them: int8/int16/int32 int, int64 long, float32 float, float64 double, boolean, string,
// bytes, struct record, array array, map map; Decimal bytes decimal(p,s), Date int date, Time int
// time-millis, Timestamp long timestamp-millis; "connect.name" beside each named type. Where
// Debezium's own types (io.debezium.time.*) need an Avro logical type to make the right column,
// the logical type is the one whose column takes the value that decode_logical
// (debezium_logical.hpp) makes of the JSON value, since the column is written from that value,
// not from Avro: a NanoTime's nanoseconds become "HH:MM:SS.fffffffff", time text, so it is
// time-micros (a time column); a Timestamp, MicroTimestamp or NanoTimestamp (a timestamp without
// time zone in the source) becomes UTC text, so local-timestamp-millis/-micros; a
// VariableScaleDecimal becomes a number of any scale, so bytes named as such (see below).
// Where the Avro type cannot say the column type, "connect.name" says it: ZonedTimestamp
// (timestamptz), ZonedTime (time with time zone), Json (jsonb), IsoDate/IsoTime/IsoTimestamp
// (time.precision.mode isostring), a Decimal without connect.decimal.precision (bytes without a
// logical type: numeric of any precision), VariableScaleDecimal (bytes: numeric of any scale).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "stages/engine/value.hpp"

namespace etld::pg {

// The Avro schema (a record) of the struct field `image` ("after" or "before") of the Connect
// envelope schema `schema` (the wrapper's "schema" member), or of `schema` itself when `image` is
// empty (a key's schema). Fields keep their order; an optional field is ["null", T] with default
// null. nullptr with `error` (naming the field) when it is not a struct or is malformed: no
// "fields", a field without "field" or "type", an unknown type, a field name Avro cannot hold.
std::shared_ptr<const avro::AvroSchema> avro_from_connect(const Value& schema, std::string_view image,
                                                          std::string& error);

// The last few schemas compiled by avro_from_connect, most recently used first: a stream of
// events of one schema compiles it once. An entry is found by comparing the image's Connect
// schema (its name and fields, so "before" and "after" of one table share an entry) with Value's
// ==. Measured (RelWithDebInfo, a busy 2-core host) on the 3.4 KB events of
// tests/fixtures/debezium/customers.schemas.tsv: a hit 0.6 us, a compile 60 us, parse_json of the
// event 33 us. Errors are kept too: a stream of malformed schemas is not converted each time.
// A lookup compares the entries in turn (another table's struct differs by name at once): keep one
// per table (its schema's versions and its key's), or one per sink with a capacity of twice the
// tables it writes; too small a cache compiles, and returns new schemas, again and again.
// Not thread-safe: one per sink instance.
class ConnectSchemaCache {
 public:
  explicit ConnectSchemaCache(std::size_t capacity = 8) : capacity_(capacity ? capacity : 1) {}

  // As avro_from_connect, from the cache when an equal image schema was compiled before.
  std::shared_ptr<const avro::AvroSchema> get(const Value& schema, std::string_view image,
                                              std::string& error);

 private:
  struct Entry {
    Value image;  // the image's Connect schema
    bool key;     // a key's schema (no image)
    std::shared_ptr<const avro::AvroSchema> avro;
    std::string error;
  };
  std::size_t capacity_;
  std::vector<Entry> entries_;
};

}  // namespace etld::pg
