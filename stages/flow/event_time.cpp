#include "stages/flow/event_time.hpp"

#include <chrono>
#include <cstdio>

#include "stages/expr/expr.hpp"

namespace etld::flow {
namespace {

// Reads exactly `n` digits at `pos`; false when they are not all digits.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view s) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, pos, 4, y) || !expect(s, pos, '-') || !digits(s, pos, 2, mo) || !expect(s, pos, '-') ||
      !digits(s, pos, 2, d))
    return std::nullopt;
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
  ++pos;
  if (!digits(s, pos, 2, h) || !expect(s, pos, ':') || !digits(s, pos, 2, mi) || !expect(s, pos, ':') ||
      !digits(s, pos, 2, sec))
    return std::nullopt;
  // 60 is a leap second (RFC 3339 allows it): it is read as the next second's start.
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t first = pos;
    int scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      millis += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return std::nullopt;
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!digits(s, pos, 2, oh) || !expect(s, pos, ':') || !digits(s, pos, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;
  auto t =
      sys_days{date} + hours{h} + minutes{mi} + seconds{sec} + milliseconds{millis} - minutes{offset_minutes};
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

std::string format_rfc3339_ms(std::int64_t epoch_ms) {
  using namespace std::chrono;
  std::int64_t day_count = floor_div(epoch_ms, 86'400'000);
  std::int64_t in_day = epoch_ms - day_count * 86'400'000;
  year_month_day date{sys_days{days{day_count}}};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(in_day / 3'600'000), static_cast<int>(in_day / 60'000 % 60),
                static_cast<int>(in_day / 1000 % 60), static_cast<int>(in_day % 1000));
  return buf;
}

std::int64_t event_time_of(const Value& v, const std::string& what) {
  // Years 0000 to 9999, as RFC 3339 writes them: window arithmetic stays far from overflow.
  constexpr std::int64_t kFirst = -62167219200000, kLast = 253402300799999;
  switch (v.kind()) {
    case Value::Kind::integer:
      if (v.as_int() < kFirst || v.as_int() > kLast)
        throw ExprError("event_time '" + what + "': " + std::to_string(v.as_int()) +
                        " epoch milliseconds is outside the years 0000 to 9999");
      return v.as_int();
    case Value::Kind::string:
      if (auto ms = parse_rfc3339_ms(v.as_string())) return *ms;
      throw ExprError("event_time '" + what + "': \"" + v.as_string().substr(0, 64) +
                      "\" is not RFC 3339 text (such as 2026-12-06T12:00:00.000Z)");
    case Value::Kind::null: throw ExprError("event_time '" + what + "' is missing (null)");
    default:
      throw ExprError("event_time '" + what +
                      "': expected epoch milliseconds (an integer) or RFC 3339 text, got " +
                      std::string(kind_name(v.kind())));
  }
}

}  // namespace etld::flow
