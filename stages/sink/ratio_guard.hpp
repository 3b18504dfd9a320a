// The dead-letter ratio guard: a high share of bad records means the mapping or the destination
// is wrong, not the records, and dead-lettering them all would empty the topic into the
// dead-letter destination. It trips when more than max_ratio of a batch of at least 100 records,
// or of the last 1000 or more records, were bad; on_dead_letter_ratio says what happens then.
// Threading: used by one sink instance's worker thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace etld::sink {

// pause: the batch's bad records stay failed, so the source holds their partitions at them;
// stop: the pipeline stops (a restart meets the same records); alert: they are dead-lettered.
enum class GuardAction { pause, stop, alert };

// What the sink does with a batch's bad records.
enum class GuardVerdict { dead_letter, hold, stop };

class DeadLetterRatioGuard {
 public:
  DeadLetterRatioGuard(double max_ratio, GuardAction action) : max_ratio_(max_ratio), action_(action) {}

  // A batch of `rows` records of which `bad` are to be dead-lettered (0 when bad records are not
  // dead-lettered at all): returns why the ratio is exceeded, or "". `where` names the sink's
  // destination, `first_error` the first bad record's reason.
  std::string check(std::size_t rows, std::size_t bad, std::string_view where, std::string_view first_error);
  // After check() returned `why`: logs what the action does and says it. For stop, stop_reason()
  // is the pipeline's failure.
  GuardVerdict act(const std::string& why, spdlog::logger& log) const;
  static std::string stop_reason(const std::string& why) { return why + " (on_dead_letter_ratio: stop)"; }

 private:
  double max_ratio_;
  GuardAction action_;
  std::size_t window_total_ = 0, window_bad_ = 0;
};

}  // namespace etld::sink
