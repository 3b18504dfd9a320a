// A progress line for long commands (`etld validate --against-db` going through many tables),
// shown where a person watches and nowhere else (docs/operations.md, "Progress on a terminal"):
// on stderr, only when stderr is a terminal and neither CI nor NO_PROGRESS is set to a non-empty
// value; one line redrawn in place with \r and spaces (no escape sequence, so a dumb terminal
// shows it too), cut to the terminal's width, erased when done. Logs, pipes and stdout never
// see it. scripts/dev-env and bench/run follow the same rule.
#pragma once

#include <cstddef>
#include <string>

namespace etld {

// Whether progress goes to `fd` by the rule above.
bool progress_wanted(int fd);

class TerminalProgress {
 public:
  // Draws on `fd` if `enabled`; otherwise every call does nothing.
  TerminalProgress(int fd, bool enabled);
  ~TerminalProgress();  // erases the line
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  // Replaces the line with `text` (control characters shown as '?').
  void show(const std::string& text);
  // The line of the last show() followed by ": " and `text` (a step inside that one).
  void detail(const std::string& text);
  // Erases the line, before something else is written to the terminal; the next show() draws again.
  void clear();
  bool enabled() const { return enabled_; }

 private:
  void draw(const std::string& line);

  int fd_;
  bool enabled_;
  std::string base_;       // the text of the last show()
  std::size_t drawn_ = 0;  // columns on screen now
};

// The progress line of the running command, for code deep inside it (a check going through the
// tables of a sink); null when the command shows none. Valid while its ScopedProgress lives.
TerminalProgress* current_progress();

class ScopedProgress {
 public:
  explicit ScopedProgress(TerminalProgress& progress);
  ~ScopedProgress();
  ScopedProgress(const ScopedProgress&) = delete;
  ScopedProgress& operator=(const ScopedProgress&) = delete;

 private:
  TerminalProgress* previous_;
};

}  // namespace etld
