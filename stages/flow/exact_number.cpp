#include "stages/flow/exact_number.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace etld::flow {
namespace {

// A JSON number's text taken apart: [-] int_digits [. frac_digits] [e exponent].
struct NumberText {
  bool negative = false;
  std::string_view int_digits;
  std::string_view frac_digits;
  std::int64_t exponent = 0;  // saturated at ±kExponentCap: beyond it no number is exact here
};

constexpr std::int64_t kExponentCap = 1'000'000'000'000;

std::optional<NumberText> split(std::string_view s) {
  NumberText n;
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') n.negative = true, ++i;
  auto digits = [&] {
    std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return s.substr(from, i - from);
  };
  n.int_digits = digits();
  if (n.int_digits.empty()) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    ++i;
    n.frac_digits = digits();
    if (n.frac_digits.empty()) return std::nullopt;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool minus = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) minus = s[i++] == '-';
    auto e = digits();
    if (e.empty()) return std::nullopt;
    for (char c : e) n.exponent = std::min(kExponentCap, n.exponent * 10 + (c - '0'));
    if (minus) n.exponent = -n.exponent;
  }
  if (i != s.size()) return std::nullopt;
  return n;
}

// The JSON text of a number value; empty when it is not a finite number.
std::string number_text(const Value& v) {
  if (v.kind() == Value::Kind::integer) return std::to_string(v.as_int());
  if (v.kind() != Value::Kind::real) return {};
  if (const std::string* text = v.number_text()) return *text;
  std::string text = v.to_json();
  return text == "null" ? std::string() : text;  // null: NaN or an infinity
}

using BigInt = boost::multiprecision::cpp_int;

template <class Int>
const Int& pow10(int n) {
  static const auto table = [] {
    std::array<Int, ExactDecimal::kMaxDigits + 1> t;
    t[0] = 1;
    for (std::size_t i = 1; i < t.size(); ++i) t[i] = t[i - 1] * 10;
    return t;
  }();
  return table.at(static_cast<std::size_t>(n));
}

// 0.digits × 10^point, digits without leading or trailing zeros (empty for zero).
struct Normalized {
  bool negative = false;
  std::string digits;
  std::int64_t point = 0;
};

Normalized normalize(const Value& v) {
  std::string text = number_text(v);
  auto n = split(text);
  if (!n) throw std::invalid_argument("compare_numbers: not a finite number: " + v.to_json());
  Normalized out;
  out.negative = n->negative;
  out.digits = std::string(n->int_digits) + std::string(n->frac_digits);
  auto total = static_cast<std::int64_t>(out.digits.size());
  auto lead = out.digits.find_first_not_of('0');
  if (lead == std::string::npos) return Normalized{};
  out.digits.erase(0, lead);
  out.digits.erase(out.digits.find_last_not_of('0') + 1);
  out.point = total - static_cast<std::int64_t>(lead) + n->exponent -
              static_cast<std::int64_t>(n->frac_digits.size());
  return out;
}

}  // namespace

std::optional<ExactDecimal> ExactDecimal::of(const Value& v) {
  if (v.kind() == Value::Kind::integer) {  // the common case, without text
    ExactDecimal d;
    d.unscaled_ = v.as_int();
    return d;
  }
  std::string text = number_text(v);
  auto n = split(text);
  if (!n) return std::nullopt;
  // numeric's scale for this text: its fraction's digits less the exponent, at least 0.
  std::int64_t scale = static_cast<std::int64_t>(n->frac_digits.size()) - n->exponent;
  std::int64_t shift = scale < 0 ? -scale : 0;
  scale = std::max<std::int64_t>(scale, 0);
  if (scale > kMaxDigits) return std::nullopt;
  std::string digits = std::string(n->int_digits) + std::string(n->frac_digits);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  ExactDecimal d;
  d.scale_ = static_cast<int>(scale);
  if (digits.empty()) return d;  // zero, at its scale
  if (static_cast<std::int64_t>(digits.size()) + shift > kMaxDigits) return std::nullopt;
  d.unscaled_ = Int(digits) * pow10<Int>(static_cast<int>(shift));
  if (n->negative) d.unscaled_ = -d.unscaled_;
  return d;
}

std::optional<ExactDecimal> ExactDecimal::add(const ExactDecimal& a, const ExactDecimal& b) {
  ExactDecimal r;
  r.scale_ = std::max(a.scale_, b.scale_);
  try {
    r.unscaled_ =
        a.unscaled_ * pow10<Int>(r.scale_ - a.scale_) + b.unscaled_ * pow10<Int>(r.scale_ - b.scale_);
  } catch (const std::overflow_error&) {
    return std::nullopt;
  }
  if (abs(r.unscaled_) >= pow10<Int>(kMaxDigits)) return std::nullopt;
  return r;
}

namespace {

// "-" and the digits of `magnitude` with a point `scale` digits from the right.
template <class Int>
std::string scaled_text(const Int& magnitude, bool negative, int scale) {
  std::string digits = magnitude.str();
  if (scale > 0) {
    if (digits.size() <= static_cast<std::size_t>(scale))
      digits.insert(0, static_cast<std::size_t>(scale) + 1 - digits.size(), '0');
    digits.insert(digits.size() - static_cast<std::size_t>(scale), 1, '.');
  }
  return (negative && magnitude != 0 ? "-" : "") + digits;
}

}  // namespace

std::string ExactDecimal::text() const { return scaled_text(Int(abs(unscaled_)), unscaled_ < 0, scale_); }

std::string ExactDecimal::divided_text(std::int64_t count) const {
  // round(|u| / 10^s × 10^16 / count) half up = floor((2 |u| 10^16 + 10^s count) / (2 · 10^s count)),
  // the same integer steps as average_sql's div().
  BigInt scale_factor = pow10<BigInt>(scale_);
  BigInt magnitude = BigInt(abs(unscaled_));
  BigInt q =
      (2 * magnitude * pow10<BigInt>(kAverageScale) + scale_factor * count) / (2 * scale_factor * count);
  std::string text = scaled_text(q, unscaled_ < 0, kAverageScale);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

std::string average_sql(const std::string& sum, const std::string& count) {
  std::string one = "1" + std::string(kAverageScale, '0');
  std::string unit = "0." + std::string(kAverageScale - 1, '0') + "1";
  return "CASE WHEN (" + count + ") > 0 THEN trim_scale(sign(" + sum + ") * div(2 * abs(" + sum + ") * " +
         one + " + (" + count + "), 2 * (" + count + ")) * " + unit + ") END";
}

int compare_numbers(const Value& a, const Value& b) {
  if (a.kind() == Value::Kind::integer && b.kind() == Value::Kind::integer)
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  Normalized x = normalize(a), y = normalize(b);
  bool x_zero = x.digits.empty(), y_zero = y.digits.empty();
  int x_sign = x_zero ? 0 : x.negative ? -1 : 1;
  int y_sign = y_zero ? 0 : y.negative ? -1 : 1;
  if (x_sign != y_sign) return x_sign < y_sign ? -1 : 1;
  if (x_sign == 0) return 0;
  int magnitude = x.point != y.point ? (x.point < y.point ? -1 : 1) : x.digits.compare(y.digits);
  magnitude = magnitude < 0 ? -1 : magnitude > 0 ? 1 : 0;
  return x_sign * magnitude;
}

}  // namespace etld::flow
