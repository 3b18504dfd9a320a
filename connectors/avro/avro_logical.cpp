#include "connectors/avro/avro_logical.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "connectors/avro/avro_decode.hpp"

namespace etld::avro {

namespace {

struct Civil {
  std::int64_t year;
  unsigned month, day;
};

// Days since 1970-01-01 to the proleptic Gregorian calendar (H. Hinnant's civil_from_days), for
// any 64-bit count: std::chrono's year_month_day stops at year 32767.
Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<std::uint64_t>(z - era * 146097);
  const std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::uint64_t mp = (5 * doy + 2) / 153;
  const auto d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const auto m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  return {y + (m <= 2), m, d};
}

// ISO 8601 and RFC 3339 write four-digit years, and PostgreSQL reads years 1-9999 so written.
Civil checked_date(std::int64_t days, const char* what, std::int64_t value) {
  // Years 1 to 9999 are days -719162 to 2932896.
  if (days < -719162 || days > 2932896)
    throw AvroDecodeError(fmt::format("{} {} is outside years 0001-9999", what, value));
  return civil_from_days(days);
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

void append_time(std::string& out, std::int64_t ticks_of_day, std::int64_t per_second, int digits) {
  const std::int64_t secs = ticks_of_day / per_second, frac = ticks_of_day % per_second;
  fmt::format_to(std::back_inserter(out), "{:02}:{:02}:{:02}.{:0{}}", secs / 3600, secs / 60 % 60, secs % 60,
                 frac, digits);
}

}  // namespace

std::string decimal_text(std::string_view unscaled, std::int32_t scale) {
  if (unscaled.empty()) throw AvroDecodeError("a decimal of 0 bytes");
  if (unscaled.size() > kMaxDecimalBytes)
    throw AvroDecodeError(
        fmt::format("a decimal of {} bytes, beyond etld's limit of {}", unscaled.size(), kMaxDecimalBytes));
  // The magnitude, big-endian bytes of the two's complement negated when negative.
  const bool negative = static_cast<unsigned char>(unscaled[0]) & 0x80;
  std::vector<std::uint8_t> mag(unscaled.begin(), unscaled.end());
  if (negative) {
    for (auto& b : mag) b = static_cast<std::uint8_t>(~b);
    for (auto it = mag.rbegin(); it != mag.rend(); ++it)
      if (++*it != 0) break;
  }
  // As 32-bit limbs, most significant first; then repeatedly divided by 10^9.
  std::vector<std::uint32_t> limbs((mag.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < mag.size(); ++i) {
    const std::size_t from_end = mag.size() - 1 - i;
    limbs[limbs.size() - 1 - from_end / 4] |= std::uint32_t{mag[i]} << (8 * (from_end % 4));
  }
  std::string digits;  // least significant first
  std::size_t first = 0;
  while (first < limbs.size()) {
    std::uint64_t rem = 0;
    for (std::size_t i = first; i < limbs.size(); ++i) {
      const std::uint64_t cur = (rem << 32) | limbs[i];
      limbs[i] = static_cast<std::uint32_t>(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    while (first < limbs.size() && limbs[first] == 0) ++first;
    for (int k = 0; k < 9 && (first < limbs.size() || rem > 0); ++k) {
      digits.push_back(static_cast<char>('0' + rem % 10));
      rem /= 10;
    }
  }
  if (digits.empty()) digits.push_back('0');
  const auto s = static_cast<std::size_t>(scale);
  if (digits.size() <= s) digits.append(s + 1 - digits.size(), '0');  // 0.00ddd
  std::string out;
  out.reserve(digits.size() + 2);
  if (negative) out.push_back('-');
  for (std::size_t i = digits.size(); i-- > 0;) {
    out.push_back(digits[i]);
    if (i == s && s > 0) out.push_back('.');
  }
  return out;
}

std::string date_text(std::int64_t days) {
  const Civil c = checked_date(days, "date", days);
  return fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day);
}

std::string time_text(std::int64_t ticks, int digits) {
  const std::int64_t per_second = digits == 3 ? 1000 : 1000000;
  if (ticks < 0 || ticks >= 86400 * per_second)
    throw AvroDecodeError(fmt::format("time-{} {} is not a time of day (0 to {})",
                                      digits == 3 ? "millis" : "micros", ticks, 86400 * per_second - 1));
  std::string out;
  append_time(out, ticks, per_second, digits);
  return out;
}

std::string timestamp_text(std::int64_t ticks, int digits, bool utc) {
  const std::int64_t per_day = (digits == 3 ? 1000LL : 1000000LL) * 86400;
  const std::int64_t days = floor_div(ticks, per_day);
  const Civil c = checked_date(days, digits == 3 ? "timestamp-millis" : "timestamp-micros", ticks);
  std::string out = fmt::format("{:04}-{:02}-{:02}T", c.year, c.month, c.day);
  append_time(out, ticks - days * per_day, per_day / 86400, digits);
  if (utc) out.push_back('Z');
  return out;
}

std::string uuid_text(std::string_view b) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    const auto byte = static_cast<unsigned char>(b[i]);
    out.push_back(hex[byte >> 4]);
    out.push_back(hex[byte & 15]);
  }
  return out;
}

}  // namespace etld::avro
