// A whole string read as a number within [low, high], or nothing: the tap's query parameters and
// the tap command's arguments read their numbers with it, each wording its own error.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace etld {

template <class T>
std::optional<T> number_in_range(std::string_view text, T low, T high) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !(v >= low && v <= high)) return std::nullopt;
  return v;
}

}  // namespace etld
