// Exact arithmetic on the numbers of records, for the aggregates that must keep every digit:
// sums and averages (ExactDecimal) and the order of min/max (compare_numbers). A number is taken
// as its JSON text ("12.34", "1e3", an integer past 64 bits), never through a double, and with
// the scale PostgreSQL's numeric gives that text, so that a sum here and a sum of the same values
// in a numeric column print the same digits.
// Threading: plain values, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/multiprecision/cpp_int.hpp>

#include "stages/engine/value.hpp"

namespace etld::flow {

// unscaled × 10^-scale, with at most kMaxDigits digits in unscaled: enough for any sum of int64s
// or of decimals with a common scale, and a fixed size (no allocation), so a state stays small.
class ExactDecimal {
 public:
  static constexpr int kMaxDigits = 76;

  ExactDecimal() = default;
  // The number `v` exactly; nullopt when it is not a finite number or needs more than kMaxDigits
  // digits (1e400, 1e-100).
  static std::optional<ExactDecimal> of(const Value& v);
  // a + b at the larger of their scales, as numeric's + does; nullopt past kMaxDigits digits.
  static std::optional<ExactDecimal> add(const ExactDecimal& a, const ExactDecimal& b);

  // The text numeric prints for it: "-0.05", "3.30", "12".
  std::string text() const;
  // text() as a record's number (an integer when it is one that fits 64 bits).
  Value value() const { return Value::from_json_number(text()); }
  // Rounded half away from zero to kAverageScale decimals, trailing zeros removed: the SQL of
  // average_sql() computes the same digits.
  std::string divided_text(std::int64_t count) const;

  int scale() const { return scale_; }

 private:
  using Int = boost::multiprecision::checked_int256_t;
  Int unscaled_ = 0;
  int scale_ = 0;
};

// Decimals an average keeps.
inline constexpr int kAverageScale = 16;
// SQL (PostgreSQL numeric) for ExactDecimal::divided_text: the exact `sum` divided by `count`,
// both SQL expressions; NULL when count is 0 or sum is NULL.
std::string average_sql(const std::string& sum, const std::string& count);

// The exact order of two numbers (integers compared as integers, reals by their JSON text's
// digits, whatever their size): negative, zero or positive. Both must be numbers and finite.
int compare_numbers(const Value& a, const Value& b);

}  // namespace etld::flow
