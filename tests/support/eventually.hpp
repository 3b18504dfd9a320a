// Waiting in tests for what another thread or process does: polls a condition until it holds.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <thread>

namespace etld::test {

// Polls `condition` every `every` until it holds or `timeout` passed. An exception from it counts
// as "not yet" (a table not created yet). Returns whether it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60),
                       std::chrono::milliseconds every = std::chrono::milliseconds(100)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    try {
      if (condition()) return true;
    } catch (const std::exception&) {
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

}  // namespace etld::test
