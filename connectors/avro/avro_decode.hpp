// Decoding one Avro binary datum into etld's Value, as docs/formats.md maps the types: records
// become objects (field order kept), unions their chosen branch's value, bytes and fixed strings
// of the raw bytes, and the logical types exact text (decimal numbers with every digit, dates,
// times, RFC 3339 timestamps).
//
// The body is read here, not by avro-c's value reader: that reader takes the lengths and block
// counts of the data on trust (it allocates what a length says, and loops over a block count of
// zero-sized items however large), so a corrupt record could exhaust memory or time. Here every
// length is checked against what is left of the body, nesting is bounded by kMaxJsonDepth and the
// number of array and map items by the body's size, and one pass builds the Value.
// Threading: a pure function of its arguments.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "connectors/avro/avro_schema.hpp"
#include "stages/engine/value.hpp"

namespace etld::avro {

// Why a body does not decode: what went wrong, and where ("order.lines[2].price: ...").
struct AvroDecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Array and map items a body of `body_bytes` may hold: an item takes a byte at least, except items
// of zero-sized types (null, an empty record), of which a record may hold this many more.
inline constexpr std::size_t kMaxZeroSizedItems = 4096;

// Decodes `body`, which must hold exactly one datum of `schema`'s root type. Throws
// AvroDecodeError.
Value decode_avro(const AvroSchema& schema, std::string_view body);

}  // namespace etld::avro
