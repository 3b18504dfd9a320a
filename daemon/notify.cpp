#include "daemon/notify.hpp"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include <spdlog/spdlog.h>

namespace etld {

void notify_systemd(const std::string& state) {
  static std::atomic<bool> warned{false};
  int rc = sd_notify(0, state.c_str());
  if (rc < 0 && !warned.exchange(true))
    spdlog::warn("systemd notification '{}' failed: {} (NOTIFY_SOCKET={})", state, std::strerror(-rc),
                 std::getenv("NOTIFY_SOCKET") ? std::getenv("NOTIFY_SOCKET") : "");
}

std::optional<std::chrono::microseconds> systemd_watchdog_period() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace etld
