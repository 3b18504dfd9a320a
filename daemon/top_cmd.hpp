// `etld top`: a terminal view of a running daemon, from its admin endpoint's GET /metrics and
// GET /pipeline (read-only: it changes nothing). Live, it redraws the screen with plain ANSI
// escape codes every interval (usable over SSH, no curses) until q or Ctrl-C, restoring the
// terminal; --once prints one snapshot (two scrapes an interval apart) and exits, --json the same
// as one JSON object. The view is daemon/top_view.hpp's.
#pragma once

#include <string>
#include <vector>

namespace etld {

extern const char* const kTopUsage;

// `args`: what follows `etld top`. 0 done, 1 the endpoint could not be read, 2 usage error.
int top_main(const std::vector<std::string>& args);

}  // namespace etld
