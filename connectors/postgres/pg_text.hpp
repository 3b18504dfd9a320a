// The text forms of PostgreSQL's types that the COPY encoder checks or writes (pg_text.cpp).
// Pure functions: safe on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace etld::pg {

// Epoch milliseconds -> "YYYY-MM-DD HH:MM:SS.mmm+00"; false outside years 1..9999.
bool format_epoch_ms(std::int64_t ms, std::string& out, bool date_only = false);
// ISO 8601 date or timestamp ("2024-05-01", "2024-05-01Z", "2024-05-01T10:00:00.5Z", "... +02:00").
bool valid_iso8601(std::string_view s, bool date_only);
bool valid_uuid(std::string_view s);
bool valid_numeric(std::string_view s);

// Replaces invalid UTF-8 sequences by U+FFFD (for JSON and text made from raw bytes).
std::string sanitize_utf8(std::string_view s);

}  // namespace etld::pg
