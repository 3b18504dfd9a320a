// The progress line of long commands (config/terminal_progress.hpp): wanted on a real terminal
// (a pseudo-terminal here) and not on a pipe, nor when CI or NO_PROGRESS is set; drawn in place
// with \r, padded over a longer line before it, cut to the terminal's width without splitting a
// UTF-8 character, control characters masked, and erased at the end.
#include "config/terminal_progress.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using namespace etld;

namespace {

struct Pty {
  int master = -1, slave = -1;
  explicit Pty(unsigned short columns = 80) {
    winsize ws{};
    ws.ws_col = columns;
    ws.ws_row = 24;
    REQUIRE(::openpty(&master, &slave, nullptr, nullptr, &ws) == 0);
    ::fcntl(master, F_SETFL, O_NONBLOCK);
  }
  ~Pty() {
    ::close(master);
    ::close(slave);
  }
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
};

struct Env {
  std::string name;
  Env(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
  ~Env() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("progress is wanted on a terminal only, and not when CI or NO_PROGRESS is set") {
  ::unsetenv("CI");
  ::unsetenv("NO_PROGRESS");
  Pty pty;
  CHECK(progress_wanted(pty.slave));
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  CHECK_FALSE(progress_wanted(pipe_fds[1]));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  {
    Env ci("CI", "true");
    CHECK_FALSE(progress_wanted(pty.slave));
  }
  {
    Env empty("CI", "");  // set but empty counts as not set
    CHECK(progress_wanted(pty.slave));
  }
  {
    Env off("NO_PROGRESS", "1");
    CHECK_FALSE(progress_wanted(pty.slave));
  }
}

TEST_CASE("the progress line is redrawn in place, padded, cut to the width and erased at the end") {
  Pty pty(20);  // 19 usable columns: the cursor never wraps
  {
    TerminalProgress progress(pty.slave, true);
    progress.show("stage 1 of 2 (a)");
    CHECK(pty.read_all() == "\rstage 1 of 2 (a)");
    progress.detail("t 1");  // longer than the width: cut
    CHECK(pty.read_all() == "\rstage 1 of 2 (a): t");
    progress.show("s 2");  // shorter: spaces over the rest of the line before
    CHECK(pty.read_all() == "\rs 2" + std::string(16, ' '));
    progress.show("\xc3\xa9t\xc3\xa9 \x1b[31m");  // UTF-8 kept whole, control characters masked
    CHECK(pty.read_all() == "\r\xc3\xa9t\xc3\xa9 ?[31m");
    progress.show(std::string(18, 'x') + "\xc3\xa9\xc3\xa9");  // cut after the first é, not inside it
    CHECK(pty.read_all() == "\r" + std::string(18, 'x') + "\xc3\xa9");
    progress.clear();
    CHECK(pty.read_all() == "\r" + std::string(19, ' ') + "\r");
    progress.clear();  // nothing on screen: nothing written
    CHECK(pty.read_all().empty());
    progress.show("last");
    pty.read_all();
  }
  CHECK(pty.read_all() == "\r    \r");  // the destructor erased it

  TerminalProgress off(pty.slave, false);
  off.show("never");
  off.detail("shown");
  CHECK(pty.read_all().empty());
}

TEST_CASE("current_progress is the innermost ScopedProgress's, and null outside") {
  CHECK(current_progress() == nullptr);
  TerminalProgress a(STDERR_FILENO, false), b(STDERR_FILENO, false);
  {
    ScopedProgress outer(a);
    CHECK(current_progress() == &a);
    {
      ScopedProgress inner(b);
      CHECK(current_progress() == &b);
    }
    CHECK(current_progress() == &a);
  }
  CHECK(current_progress() == nullptr);
}
