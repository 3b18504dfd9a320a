// What the pipeline check of held acks (config/held_acks_check.cpp) learns from stage factories: a
// source says whether its input ends and how many of its events may be unsettled at once; a
// stateful transform says how many inputs' acks it may hold before its outputs settle them.
// A stage that holds more than its source lets be unsettled stalls the pipeline for good.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace etld {

struct SourceBound {
  bool ends = false;  // its input ends by itself (a file, a count), so end of input comes
  // Events it emits before it waits for settlements; none: it never waits for them.
  std::optional<std::size_t> max_unsettled;
  std::string limit;   // what sets max_unsettled and per what, for the error
  std::string to_end;  // how to make the input end, for the hint ("" = it cannot)
};

struct AckHolding {
  bool until_end_of_input = false;  // holds every input until its input ends (reduce)
  std::size_t max_held = 0;         // otherwise at most this many per instance; 0: holds none
  // Holds each input until the event-time window it went into closes, which takes later events
  // of every partition: a source that pauses at a number of unsettled events can wait forever.
  bool until_window_closes = false;
  bool holds() const { return until_end_of_input || max_held > 0 || until_window_closes; }
};

}  // namespace etld
