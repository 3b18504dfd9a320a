// The Prometheus text exposition format 0.0.4, read back: what `etld top` makes of a scrape of
// /metrics. Comments (# HELP, # TYPE) are skipped; a sample line is NAME, optional {LABELS} whose
// values may hold the escapes \\ \" \n, a value (a float, NaN, +Inf, -Inf) and an optional
// timestamp, which is ignored.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etld::top {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  std::string name;
  Labels labels;  // in the order of the line
  double value = 0;

  // The value of a label; "" when the sample has none of that name.
  const std::string& label(std::string_view key) const;
};

// A line that is not a sample in the format; what() names the line number and what is wrong.
struct ExpositionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<Sample> parse_exposition(std::string_view text);

}  // namespace etld::top
