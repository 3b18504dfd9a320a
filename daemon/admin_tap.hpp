// GET /tap?stage=NAME[&limit=N][&rate=R][&max_bytes=B][&seconds=S] on the admin endpoint: a
// sample of the events leaving a stage (stages/engine/tap.hpp) as NDJSON, one object per line,
// streamed (chunked) until `limit` events were sampled or `seconds` passed. Events may hold
// personal data: it needs the admin bearer token even though it is a GET (admin_request.hpp).
// The lines (docs/operations.md, "Tap"):
//   an event: {"stage", "instance", "topic", "partition", "offset", "timestamp_ms", "key",
//              "key_truncated", "value", "value_truncated", "headers": [{"name", "value",
//              "truncated"}]} plus "key_base64"/"value_base64" (true when the bytes are not
//              UTF-8 and the text is their base64), "headers_omitted" and "rejection" when set;
//   {"dropped": N}: N sampled events the reader was too slow to take were left out;
//   last, {"end": {"stage", "sampled", "dropped", "seen", "reason"}}.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "stages/engine/tap.hpp"

namespace etld {

// Defaults and hard caps of the query's parameters.
struct TapCaps {
  static constexpr std::size_t default_limit = 100, max_limit = 10'000;
  static constexpr double default_rate = 10, max_rate = 1'000;
  static constexpr std::size_t default_max_bytes = 4096, max_max_bytes = 64 * 1024;
  static constexpr int default_seconds = 60, max_seconds = 3600;
};

struct TapRequest {
  std::string stage;
  TapLimits limits;
  std::chrono::seconds seconds{TapCaps::default_seconds};
};

// The request of a query string (what follows '?'); throws std::invalid_argument saying which
// parameter is wrong and what it may be.
TapRequest parse_tap_query(std::string_view query);

std::string tap_event_line(const TapEvent& event);  // each ends with '\n'
std::string tap_dropped_line(std::uint64_t dropped);
std::string tap_end_line(const Tap& tap, std::string_view reason);

}  // namespace etld
