// systemd's service notification protocol (Type=notify), through libsystemd's sd_notify. When
// NOTIFY_SOCKET is unset (not run by systemd) every call is a no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace etld {

// Sends `state` (newline-separated assignments: "READY=1", "STATUS=..."); errors are logged once.
void notify_systemd(const std::string& state);

// The watchdog period systemd expects pings within (WatchdogSec=, WATCHDOG_USEC), if enabled
// for this process.
std::optional<std::chrono::microseconds> systemd_watchdog_period();

}  // namespace etld
