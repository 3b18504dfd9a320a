// A sink instance: hands each batch to the sink and releases its credit upstream as the sink
// reports events done, in arrival order; settles rejected events itself when the sink takes none;
// drains at end of input or before a rebuild. It is the SinkContext its Sink is handed.
#pragma once

#include <deque>
#include <memory>
#include <utility>

#include "stages/engine/runner_base.hpp"

namespace etld {

class SinkRunner final : public RunnerOf<SinkContext> {
 public:
  using RunnerOf::RunnerOf;

 private:
  // --- SinkContext ---
  void done(std::size_t n) override;
  void drained() override;

  bool create_stage() override;
  // What the old instance held is gone (its acks settled failed): releases its credit.
  void teardown() override;
  // Flushes and settles everything: retired() once the sink says drained().
  void retire_stage() override;
  // The batch leaves the inbox once the sink holds it (sink_held_ until done).
  void deliver(std::size_t input, Batch&& batch) override;
  void end_of_input() override;

  // For a sink with no dead-letter destination: rejected events are settled (the rejecting stage
  // logged them) and their credit returned. Returns how many.
  std::size_t settle_rejected(std::size_t input, Batch& batch);
  // Releases the credit of the next `n` events held, in arrival order.
  void release(std::size_t n);

  std::unique_ptr<Sink> sink_;
  std::deque<std::pair<std::size_t, std::size_t>> arrivals_;  // (input, events) held, FIFO
  bool drained_ = false;
};

}  // namespace etld
