// Event time as the window stage reads and writes it: an event's time is epoch milliseconds,
// taken from an integer or from RFC 3339 text ("2026-12-06T12:00:00.123+01:00"), and window
// bounds are written back as RFC 3339 UTC text with milliseconds ("2026-12-06T11:00:00.123Z").
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stages/engine/value.hpp"

namespace etld::flow {

// Epoch milliseconds of RFC 3339 text (date, 'T' or ' ', time, optional fraction of any length,
// cut to milliseconds toward the past, 'Z' or an offset); nullopt when it is not such text.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

// "YYYY-MM-DDTHH:MM:SS.mmmZ" for epoch milliseconds (negative ones too).
std::string format_rfc3339_ms(std::int64_t epoch_ms);

// The event time `v` holds (the value of the event_time expression `what`): an integer is epoch
// milliseconds, a string RFC 3339 text. Throws ExprError saying what was wrong.
std::int64_t event_time_of(const Value& v, const std::string& what);

}  // namespace etld::flow
