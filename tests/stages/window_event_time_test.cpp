// Event time as the window stage reads and writes it: RFC 3339 text with fractions and offsets,
// and the window bounds it writes back.
#include <doctest/doctest.h>

#include "stages/flow/event_time.hpp"

namespace etld::flow {
namespace {

TEST_CASE("RFC 3339: offsets, fractions cut to milliseconds, and what is refused") {
  CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_ms("2026-12-06T12:00:00.123Z") == 1796558400123);
  CHECK(parse_rfc3339_ms("2026-12-06T13:00:00.1239+01:00") == 1796558400123);
  CHECK(parse_rfc3339_ms("2026-12-06 06:30:00-05:30") == 1796558400000);
  CHECK(parse_rfc3339_ms("1969-12-31T23:59:59.999Z") == -1);
  CHECK(parse_rfc3339_ms("2024-02-29T00:00:00z").has_value());
  for (const char* bad : {"2026-02-29T00:00:00Z", "2026-12-06T12:00:00", "2026-12-06T24:00:00Z", "2026-12-06",
                          "2026-12-06T12:00:00.Z", "2026-12-06T12:00:00+0100", "2026-12-06T12:00:00Zx", ""})
    CHECK_MESSAGE(!parse_rfc3339_ms(bad).has_value(), bad);
}

TEST_CASE("window bounds are written as RFC 3339 UTC with milliseconds, before 1970 too") {
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1796558400123) == "2026-12-06T12:00:00.123Z");
  CHECK(format_rfc3339_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(parse_rfc3339_ms(format_rfc3339_ms(951782400000)) == 951782400000);
}

}  // namespace
}  // namespace etld::flow
