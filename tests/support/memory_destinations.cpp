// The in-memory table and dead-letter destination of tests/support/memory_sink.hpp.
#include "tests/support/memory_sink.hpp"

namespace etld::test {

void MemoryTable::write(const std::vector<const std::string*>& rows) {
  std::lock_guard lock(mu_);
  if (transient_failures > 0) {
    --transient_failures;
    throw Rejected("table busy", true);
  }
  for (const auto* r : rows)
    if (r->starts_with("bad")) throw Rejected("refused " + *r, false);
  for (const auto* r : rows) rows_.push_back(*r);
  writes_.push_back(rows.size());
}

std::vector<std::string> MemoryTable::rows() const {
  std::lock_guard lock(mu_);
  return rows_;
}

std::vector<std::size_t> MemoryTable::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

std::string MemoryDeadLetters::write(const std::vector<sink::DeadLetter>& letters, const sink::StopSignal&) {
  std::lock_guard lock(mu_);
  for (const auto& l : letters) reasons_.push_back(l.event->value + ": " + l.reason);
  return {};
}

std::vector<std::string> MemoryDeadLetters::reasons() const {
  std::lock_guard lock(mu_);
  return reasons_;
}

}  // namespace etld::test
