// SIGHUP, SIGUSR1 and SIGUSR2 ask a running etld to reload or change its log level, but their
// default action ends the process: one sent while etld starts (before the supervisor handles
// them) or stops (Boost.Asio restores the default when it stops handling them) would kill it.
#pragma once

namespace etld {

// Ignores SIGHUP, SIGUSR1 and SIGUSR2 until something handles them: first thing in main(), and
// again when the supervisor stops handling them.
void ignore_control_signals();

}  // namespace etld
