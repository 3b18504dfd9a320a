// Dead-letter destinations: where a sink puts the records its destination refuses (a table, a
// Kafka topic), with the reason and the record's Kafka coordinates, so that the pipeline goes on
// and nothing is lost. A sink routes a batch's dead letters to each of its destinations in turn
// and settles the records dead_lettered only once every destination holds them durably.
// Threading: destinations are used on the sink's worker thread (their calls block).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "stages/engine/event.hpp"
#include "stages/sink/retry.hpp"

namespace etld::sink {

struct DeadLetter {
  const Event* event = nullptr;  // the original record: raw key, value, headers, coordinates
  std::string reason;            // why it was refused: printable, secrets masked, at most 1 KiB
  std::string code;              // the destination's error code (a SQLSTATE), "" when none
};

class DeadLetterDestination {
 public:
  virtual ~DeadLetterDestination() = default;
  // For log lines: "topic bad-orders (brokers kafka:9092)", "table public.etld_dead_letters".
  virtual std::string describe() const = 0;
  // Blocks until every letter is durable there. Returns "" when it is, else why it failed
  // transiently (the caller backs off and calls again with the same letters). Throws
  // FatalStageError when it never can (bad configuration), Stopped when `stop` was requested.
  virtual std::string write(const std::vector<DeadLetter>& letters, const StopSignal& stop) = 0;
};

// Writes `letters` to each destination in order (skipping nullptr), retrying each one's
// transient failures after on_transient(destination, error, delay) and a backoff wait, so that
// letters a destination already holds are not sent to it again while a later one is retried.
void write_dead_letters(const std::vector<DeadLetterDestination*>& destinations,
                        const std::vector<DeadLetter>& letters, Backoff& backoff, const StopSignal& stop,
                        const std::function<void(const DeadLetterDestination&, const std::string&,
                                                 std::chrono::milliseconds)>& on_transient);

}  // namespace etld::sink
