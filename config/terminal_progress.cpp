#include "config/terminal_progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

namespace etld {

namespace {

bool set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

// Columns of the terminal on `fd`, one less so that the cursor never wraps to a new line.
std::size_t usable_columns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col - 1;
  return 79;
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n <= 0) return;  // a progress line is not worth failing for
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

thread_local TerminalProgress* current = nullptr;

}  // namespace

bool progress_wanted(int fd) { return ::isatty(fd) == 1 && !set("CI") && !set("NO_PROGRESS"); }

TerminalProgress::TerminalProgress(int fd, bool enabled) : fd_(fd), enabled_(enabled) {}

TerminalProgress::~TerminalProgress() { clear(); }

void TerminalProgress::show(const std::string& text) {
  base_ = text;
  draw(text);
}

void TerminalProgress::detail(const std::string& text) { draw(base_.empty() ? text : base_ + ": " + text); }

void TerminalProgress::clear() {
  if (!enabled_ || drawn_ == 0) return;
  write_all(fd_, "\r" + std::string(drawn_, ' ') + "\r");
  drawn_ = 0;
}

void TerminalProgress::draw(const std::string& text) {
  if (!enabled_) return;
  std::size_t width = usable_columns(fd_);
  std::string line;
  std::size_t columns = 0;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    bool continuation = (c & 0xC0) == 0x80;  // of a UTF-8 sequence: no column of its own
    if (!continuation && columns >= width) break;
    line += c < 0x20 || c == 0x7f ? '?' : ch;
    if (!continuation) ++columns;
  }
  std::string out = "\r" + line;
  if (columns < drawn_) out += std::string(drawn_ - columns, ' ');
  write_all(fd_, out);
  drawn_ = columns;
}

TerminalProgress* current_progress() { return current; }

ScopedProgress::ScopedProgress(TerminalProgress& progress) : previous_(current) { current = &progress; }
ScopedProgress::~ScopedProgress() { current = previous_; }

}  // namespace etld
