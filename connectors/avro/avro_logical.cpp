#include "connectors/avro/avro_logical.hpp"

#include <algorithm>
#include <array>
#include <charconv>
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

// Appends `value` (>= 0) as exactly `width` digits, zero-padded. The writers below run once per
// field of every record: fmt's parsing of a format string cost a tenth of a record's decoding.
void append_digits(std::string& out, std::uint64_t value, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

void append_date(std::string& out, const Civil& c) {
  append_digits(out, static_cast<std::uint64_t>(c.year), 4);  // checked_date: years 1-9999
  out.push_back('-');
  append_digits(out, c.month, 2);
  out.push_back('-');
  append_digits(out, c.day, 2);
}

void append_time(std::string& out, std::int64_t ticks_of_day, std::int64_t per_second, int digits) {
  const auto secs = static_cast<std::uint64_t>(ticks_of_day / per_second);
  const auto frac = static_cast<std::uint64_t>(ticks_of_day % per_second);
  append_digits(out, secs / 3600, 2);
  out.push_back(':');
  append_digits(out, secs / 60 % 60, 2);
  out.push_back(':');
  append_digits(out, secs % 60, 2);
  out.push_back('.');
  append_digits(out, frac, digits);
}

// The decimal text of `magnitude` with `scale` digits after the point, after a '-' if negative.
std::string scaled_text(bool negative, std::string_view magnitude_digits, std::size_t scale) {
  std::string out;
  const std::size_t n = magnitude_digits.size();
  out.reserve(n + scale + 3);
  if (negative) out.push_back('-');
  if (n <= scale) {
    out.append("0.");
    out.append(scale - n, '0');
    out.append(magnitude_digits);
  } else {
    out.append(magnitude_digits.substr(0, n - scale));
    if (scale > 0) {
      out.push_back('.');
      out.append(magnitude_digits.substr(n - scale));
    }
  }
  return out;
}

}  // namespace

std::string decimal_text(std::string_view unscaled, std::int32_t scale) {
  if (unscaled.empty()) throw AvroDecodeError("a decimal of 0 bytes");
  if (unscaled.size() > kMaxDecimalBytes)
    throw AvroDecodeError(
        fmt::format("a decimal of {} bytes, beyond etld's limit of {}", unscaled.size(), kMaxDecimalBytes));
  const bool negative = static_cast<unsigned char>(unscaled[0]) & 0x80;
  if (unscaled.size() <= 8) {  // most decimals: one 64-bit integer, sign-extended
    std::uint64_t u = negative ? ~std::uint64_t{0} : 0;
    for (char c : unscaled) u = (u << 8) | static_cast<unsigned char>(c);
    const std::uint64_t magnitude = negative ? ~u + 1 : u;  // also right for INT64_MIN
    char buf[20];
    const auto end = std::to_chars(buf, buf + sizeof buf, magnitude).ptr;
    return scaled_text(negative, std::string_view(buf, static_cast<std::size_t>(end - buf)),
                       static_cast<std::size_t>(scale));
  }
  // The magnitude, big-endian bytes of the two's complement negated when negative.
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
  std::reverse(digits.begin(), digits.end());
  return scaled_text(negative, digits, static_cast<std::size_t>(scale));
}

std::string date_text(std::int64_t days) {
  const Civil c = checked_date(days, "date", days);
  std::string out;
  append_date(out, c);
  return out;
}

std::string time_text(std::int64_t ticks, int digits) {
  const std::int64_t per_second = digits == 3 ? 1000 : 1000000;
  if (ticks < 0 || ticks >= 86400 * per_second)
    throw AvroDecodeError(fmt::format("time-{} {} is not a time of day (0 to {})",
                                      digits == 3 ? "millis" : "micros", ticks, 86400 * per_second - 1));
  std::string out;
  out.reserve(16);
  append_time(out, ticks, per_second, digits);
  return out;
}

std::string timestamp_text(std::int64_t ticks, int digits, bool utc) {
  const std::int64_t per_day = (digits == 3 ? 1000LL : 1000000LL) * 86400;
  const std::int64_t days = floor_div(ticks, per_day);
  const Civil c = checked_date(days, digits == 3 ? "timestamp-millis" : "timestamp-micros", ticks);
  std::string out;
  out.reserve(32);
  append_date(out, c);
  out.push_back('T');
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
