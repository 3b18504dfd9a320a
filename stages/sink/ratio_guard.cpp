#include "stages/sink/ratio_guard.hpp"

#include <fmt/format.h>

namespace etld::sink {

std::string DeadLetterRatioGuard::check(std::size_t rows, std::size_t bad, std::string_view where,
                                        std::string_view first_error) {
  window_total_ += rows;
  if (bad == 0) return {};
  bool trip = rows >= 100 && static_cast<double>(bad) > max_ratio_ * static_cast<double>(rows);
  window_bad_ += bad;
  const std::size_t total = window_total_, bad_in_window = window_bad_;
  if (window_total_ >= 1000) {
    trip = trip || static_cast<double>(window_bad_) > max_ratio_ * static_cast<double>(window_total_);
    window_total_ = window_bad_ = 0;
  }
  if (!trip || max_ratio_ >= 1.0) return {};
  return fmt::format(
      "{} of {} records in a batch ({} of the last {}) could not be written to {}, more than "
      "max_dead_letter_ratio {}: the configuration is probably wrong, or a producer sends bad records; first "
      "error: {}",
      bad, rows, bad_in_window, total, where, max_ratio_, first_error);
}

GuardVerdict DeadLetterRatioGuard::act(const std::string& why, spdlog::logger& log) const {
  switch (action_) {
    case GuardAction::stop: return GuardVerdict::stop;
    case GuardAction::pause:
      log.error(
          "{} (on_dead_letter_ratio: pause): not dead-lettering them; their partitions are held at the first "
          "of them until a restart (see docs/operations.md, \"The dead-letter guard tripped\")",
          why);
      return GuardVerdict::hold;
    case GuardAction::alert:
      log.error("{} (on_dead_letter_ratio: alert): dead-lettering them all the same", why);
      return GuardVerdict::dead_letter;
  }
  return GuardVerdict::hold;
}

}  // namespace etld::sink
