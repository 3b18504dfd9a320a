// Encodes events into PostgreSQL's text COPY format, converting and range-checking each mapped
// value in C++ so that bad data is caught (with a clear reason) before it reaches the server.
// Pure functions, no state: safe on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_text.hpp"
#include "stages/engine/event.hpp"
#include "stages/engine/value.hpp"

namespace etld::pg {

// Appends `s` escaped for a COPY text field (backslash, tab, newline, CR and other control
// characters). Returns false if `s` holds a NUL byte, which PostgreSQL text cannot store.
bool append_copy_escaped(std::string& out, std::string_view s);

// Appends `v` (not null) converted to `col`'s type as a COPY text field. On failure returns false
// and sets `error` to "column qty (smallint): 70000 out of range".
bool encode_value(const Value& v, const ColumnSpec& col, std::string& out, std::string& error);

// How one event turns into a row of the batch. truncate: mode debezium's op t (no row text).
enum class RowOp : std::uint8_t { write, del, skip, poison, truncate };

// The event's record, decoded on first use; nullptr when its value is not JSON, with `error`
// "invalid JSON: ...".
const Value* record_or_error(Event& e, std::string& error);
// The value a metadata column (_topic, _key, ...) reads from `e`; null when absent.
Value metadata_value(const Event& e, const ColumnSpec& col);
// Whether the Kafka key can be written to `col` (only bytea takes a key that is not UTF-8);
// otherwise sets `error`.
bool key_is_storable(const Event& e, const ColumnSpec& col, std::string& error);
// The staging table's columns of a row: "seq<TAB>t|f<TAB>".
void append_stage_prefix(std::string& out, std::uint64_t seq, bool del);

// Encodes one event's row, terminated by '\n', onto `out`. With `staged`, the row starts with
// the staging columns "seq<TAB>t|f<TAB>". Returns the op; for poison, `error` says why and `out`
// is left as it was.
RowOp encode_event(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                   std::string& error);

}  // namespace etld::pg
