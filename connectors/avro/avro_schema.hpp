// An Avro schema compiled for decoding: avro-c parses and checks the schema text (names,
// namespaces, references), and this plan keeps what decoding needs of it, with the logical types
// avro-c 1.11 does not expose (read from the same text). Immutable once built: one plan is shared
// by every event written with its schema, from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etld::avro {

enum class AvroType : std::uint8_t {
  null,
  boolean,
  int_,
  long_,
  float_,
  double_,
  bytes,
  string,
  record,
  enum_,
  array,
  map,
  union_,
  fixed,
};

// The logical types etld maps (docs/formats.md); any other annotation, or one that does not fit its
// type (a decimal whose scale exceeds its precision), leaves the underlying type, as the Avro
// specification says readers must.
enum class Logical : std::uint8_t {
  none,
  decimal,           // bytes or fixed: two's-complement unscaled integer, big-endian
  date,              // int: days since 1970-01-01
  time_millis,       // int: milliseconds after midnight
  time_micros,       // long: microseconds after midnight
  timestamp_millis,  // long: milliseconds since 1970-01-01T00:00:00Z
  timestamp_micros,
  local_timestamp_millis,  // long: the same, in no particular time zone
  local_timestamp_micros,
  uuid,  // string, or fixed(16)
};

struct AvroNode {
  AvroType type = AvroType::null;
  Logical logical = Logical::none;
  std::int32_t scale = 0;                                       // decimal
  std::int32_t precision = 0;                                   // decimal: digits in all
  std::int64_t fixed_size = 0;                                  // fixed
  std::string name;                                             // named types: the full name, for messages
  std::vector<std::pair<std::string, const AvroNode*>> fields;  // record, in order
  std::vector<std::string> symbols;                             // enum
  std::vector<const AvroNode*> branches;                        // union
  // Debezium's converters' name of the type ("io.debezium.time.ZonedTimestamp"), "" when none.
  std::string connect_name;
  const AvroNode* items = nullptr;                              // array items, map values
};

struct AvroSchemaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class AvroSchema {
 public:
  // Compiles the schema text (JSON). Throws AvroSchemaError with avro-c's reason.
  static std::shared_ptr<const AvroSchema> parse(std::string_view json);

  const AvroNode& root() const { return *root_; }

 private:
  AvroSchema() = default;
  // Named types may refer to themselves: nodes point at each other, and the schema owns them all.
  std::vector<std::unique_ptr<AvroNode>> nodes_;
  const AvroNode* root_ = nullptr;
  friend class SchemaCompiler;
};

}  // namespace etld::avro
