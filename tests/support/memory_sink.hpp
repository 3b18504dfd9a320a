// A sink written with the sink kit (stages/sink/), for the kit's tests: it batches events, writes
// each batch on its worker thread into a MemoryTable (retrying its transient failures, bisecting
// batches it rejects), routes the rejected records to a MemoryDeadLetters destination under the
// ratio guard, and settles every event done, dead_lettered or failed.
// Threading: the tables are thread-safe; the sink follows stages/engine/stage.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "stages/engine/stage.hpp"
#include "stages/sink/batcher.hpp"
#include "stages/sink/dead_letter.hpp"
#include "stages/sink/ratio_guard.hpp"

namespace etld::test {

// A table that refuses rows starting with "bad" (the whole write) and fails the next
// `transient_failures` writes transiently.
class MemoryTable {
 public:
  struct Rejected : std::runtime_error {
    Rejected(const std::string& what, bool transient) : std::runtime_error(what), transient(transient) {}
    bool transient;
  };
  void write(const std::vector<const std::string*>& rows);  // throws Rejected
  std::vector<std::string> rows() const;
  std::vector<std::size_t> writes() const;  // the size of each accepted write
  int transient_failures = 0;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> rows_;
  std::vector<std::size_t> writes_;
};

class MemoryDeadLetters final : public sink::DeadLetterDestination {
 public:
  std::string describe() const override { return "memory"; }
  std::string write(const std::vector<sink::DeadLetter>& letters, const sink::StopSignal& stop) override;
  std::vector<std::string> reasons() const;  // "value: reason" per letter

 private:
  mutable std::mutex mu_;
  std::vector<std::string> reasons_;
};

struct MemorySinkOptions {
  sink::BatchLimits limits;
  double max_dead_letter_ratio = 1.0;
  sink::GuardAction on_ratio = sink::GuardAction::pause;
  std::chrono::milliseconds initial_backoff{1}, max_backoff{4};
};

std::unique_ptr<Sink> make_memory_sink(MemorySinkOptions options, std::shared_ptr<MemoryTable> table,
                                       std::shared_ptr<MemoryDeadLetters> dead_letters);

}  // namespace etld::test
