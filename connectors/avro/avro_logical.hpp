// The text of Avro's logical types, as a PostgreSQL column takes it from JSON (docs/formats.md):
// a decimal's exact digits, ISO 8601 dates and times, RFC 3339 timestamps. Each throws
// AvroDecodeError (avro_decode.hpp) for a value it cannot write: a date outside years 1-9999, a
// time of day beyond 24 hours.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace etld::avro {

// `unscaled`: a two's-complement big-endian integer (Avro's decimal bytes); `scale` digits after
// the point: ("\x04\xd2", 2) -> "12.34", ("\xff", 3) -> "-0.001". Not longer than kMaxDecimalBytes.
std::string decimal_text(std::string_view unscaled, std::int32_t scale);
inline constexpr std::size_t kMaxDecimalBytes = 4096;  // ~9,860 digits; PostgreSQL's numeric holds them

std::string date_text(std::int64_t days);               // "2026-12-06"
std::string time_text(std::int64_t ticks, int digits);  // digits 3 (millis) or 6 (micros): "12:00:00.123"
// "2026-12-06T12:00:00.123Z" (utc) or without the Z.
std::string timestamp_text(std::int64_t ticks, int digits, bool utc);
std::string uuid_text(std::string_view sixteen_bytes);  // "0f8fad5b-d9cb-469f-a165-70867728950e"

}  // namespace etld::avro
