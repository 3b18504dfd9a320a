#include "daemon/admin_tap.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "daemon/number_text.hpp"
#include "stages/engine/value.hpp"

namespace etld {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: %XX, and '+' for a space (Boost 1.74 has no Boost.URL).
std::string form_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A parameter is the client's text: shown cut, visible ASCII only.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += c > 0x20 && c < 0x7f ? c : '?';
  return "'" + out + (s.size() > 40 ? "...'" : "'");
}

template <class T>
T number(std::string_view name, const std::string& text, T low, T high) {
  if (auto v = number_in_range(text, low, high)) return *v;
  throw std::invalid_argument(
      fmt::format("{}={} is not a number from {} to {}", name, shown(text), low, high));
}

Value text_or_null(const std::optional<TapText>& t) { return t ? Value(t->text) : Value(); }

}  // namespace

TapRequest parse_tap_query(std::string_view query) {
  TapRequest r;
  r.limits = TapLimits{TapCaps::default_limit, TapCaps::default_rate, TapCaps::default_max_bytes};
  bool has_stage = false;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = form_decoded(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string() : form_decoded(pair.substr(eq + 1));
    if (name == "stage") {
      r.stage = value;
      has_stage = !value.empty();
    } else if (name == "limit") {
      r.limits.limit = number<std::size_t>(name, value, 1, TapCaps::max_limit);
    } else if (name == "rate") {
      r.limits.rate = number<double>(name, value, 0.1, TapCaps::max_rate);
    } else if (name == "max_bytes") {
      r.limits.max_bytes = number<std::size_t>(name, value, 1, TapCaps::max_max_bytes);
    } else if (name == "seconds") {
      r.seconds = std::chrono::seconds(number<int>(name, value, 1, TapCaps::max_seconds));
    } else {
      throw std::invalid_argument("unknown parameter " + shown(name) +
                                  " (stage, limit, rate, max_bytes, seconds)");
    }
  }
  if (!has_stage) throw std::invalid_argument("which stage? give stage=NAME");
  return r;
}

std::string tap_event_line(const TapEvent& e) {
  Array headers;
  for (const auto& [name, value] : e.headers) {
    Object h{{"name", Value(name.text)},
             {"value", Value(value.text)},
             {"truncated", Value(name.truncated || value.truncated)}};
    if (name.base64 || value.base64) h.emplace_back("base64", Value(true));
    headers.emplace_back(std::move(h));
  }
  bool kafka = e.partition >= 0;
  Object o{{"stage", Value(e.stage)},
           {"instance", Value(e.instance)},
           {"topic", kafka ? Value(e.topic) : Value()},
           {"partition", kafka ? Value(e.partition) : Value()},
           {"offset", e.offset >= 0 ? Value(e.offset) : Value()},
           {"timestamp_ms", Value(e.timestamp_ms)},
           {"key", text_or_null(e.key)},
           {"key_truncated", Value(e.key && e.key->truncated)},
           {"value", text_or_null(e.value)},
           {"value_truncated", Value(e.value && e.value->truncated)},
           {"headers", Value(std::move(headers))}};
  if (e.key && e.key->base64) o.emplace_back("key_base64", Value(true));
  if (e.value && e.value->base64) o.emplace_back("value_base64", Value(true));
  if (e.headers_omitted > 0)
    o.emplace_back("headers_omitted", Value(static_cast<std::int64_t>(e.headers_omitted)));
  if (!e.rejection.empty()) o.emplace_back("rejection", Value(e.rejection));
  return Value(std::move(o)).to_json() + "\n";
}

std::string tap_dropped_line(std::uint64_t dropped) {
  return Value(Object{{"dropped", Value(static_cast<std::int64_t>(dropped))}}).to_json() + "\n";
}

std::string tap_end_line(const Tap& tap, std::string_view reason) {
  Object end{{"stage", Value(tap.stage())},
             {"sampled", Value(static_cast<std::int64_t>(tap.sampled()))},
             {"dropped", Value(static_cast<std::int64_t>(tap.dropped()))},
             {"seen", Value(static_cast<std::int64_t>(tap.seen()))},
             {"reason", Value(std::string(reason))}};
  return Value(Object{{"end", Value(std::move(end))}}).to_json() + "\n";
}

}  // namespace etld
