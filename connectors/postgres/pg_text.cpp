// The text forms PostgreSQL's types accept, checked (or written) in C++ so that a bad value is a
// dead letter with its reason rather than a failed COPY: numbers, ISO 8601 dates and timestamps,
// UUIDs, epoch milliseconds as timestamps, and UTF-8 repaired for text made from raw bytes. Kept
// apart from copy_encoder.cpp, whose per-type writers share one translation unit to be inlined:
// these are whole loops over a value's text, where a call costs nothing that shows.
#include "connectors/postgres/pg_text.hpp"

#include <cstdio>

namespace etld::pg {

namespace {

int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

// Reads exactly n digits at s[i...]; advances i.
bool digits(std::string_view s, std::size_t& i, int n, int& out) {
  if (i + static_cast<std::size_t>(n) > s.size()) return false;
  out = 0;
  for (int k = 0; k < n; ++k) {
    char c = s[i + static_cast<std::size_t>(k)];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  i += static_cast<std::size_t>(n);
  return true;
}

// days since 1970-01-01 -> civil date (Howard Hinnant's algorithm).
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

}  // namespace

bool valid_numeric(std::string_view s) {
  if (s == "NaN" || s == "nan") return true;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

bool valid_iso8601(std::string_view s, bool date_only) {
  std::size_t i = 0;
  int y = 0, mo = 0, d = 0;
  if (!digits(s, i, 4, y) || i >= s.size() || s[i++] != '-' || !digits(s, i, 2, mo) || i >= s.size() ||
      s[i++] != '-' || !digits(s, i, 2, d))
    return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
  if (i == s.size()) return true;
  // A date with UTC's designator, as Debezium's time.precision.mode=isostring writes dates
  // ("1990-01-02Z"): PostgreSQL's date and timestamptz take it.
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) return true;
  if (date_only) return false;
  if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
  ++i;
  int h = 0, mi = 0, sec = 0;
  if (!digits(s, i, 2, h) || i >= s.size() || s[i++] != ':' || !digits(s, i, 2, mi)) return false;
  if (h > 23 || mi > 59) return false;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!digits(s, i, 2, sec) || sec > 60) return false;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      if (s[i] == ',') return false;  // PostgreSQL does not take a comma
      ++i;
      std::size_t n = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++n;
      if (n == 0) return false;
    }
  }
  if (i == s.size()) return true;
  if (s[i] == 'Z' || s[i] == 'z') return i + 1 == s.size();
  if (s[i] == ' ' && i + 1 < s.size() && (s[i + 1] == '+' || s[i + 1] == '-')) ++i;
  if (s[i] != '+' && s[i] != '-') return false;
  ++i;
  int oh = 0, om = 0;
  if (!digits(s, i, 2, oh) || oh > 15) return false;
  if (i == s.size()) return true;
  if (s[i] == ':') ++i;
  if (!digits(s, i, 2, om) || om > 59) return false;
  return i == s.size();
}

bool valid_uuid(std::string_view s) {
  if (s.size() == 38 && s.front() == '{' && s.back() == '}') s = s.substr(1, 36);
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  if (s.size() == 32) {
    for (char c : s)
      if (!hex(c)) return false;
    return true;
  }
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !hex(s[i])) return false;
  }
  return true;
}

bool format_epoch_ms(std::int64_t ms, std::string& out, bool date_only) {
  constexpr std::int64_t day_ms = 86'400'000;
  std::int64_t days = ms / day_ms, rem = ms % day_ms;
  if (rem < 0) rem += day_ms, --days;
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y < 1 || y > 9999) return false;
  char buf[48];
  int n;
  if (date_only) {
    n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(y), m, d);
  } else {
    auto s = static_cast<int>(rem / 1000);
    n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d.%03d+00", static_cast<int>(y), m, d,
                      s / 3600, s / 60 % 60, s % 60, static_cast<int>(rem % 1000));
  }
  out.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok && len == 2) ok = c >= 0xc2;
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok && c == 0) ok = false;  // NUL: not storable in text or jsonb
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

}  // namespace etld::pg
