// The postgres sink's dead-letter topic: a small idempotent librdkafka producer (acks=all) that
// sends a batch's dead letters and waits until the broker confirmed every one of them, so that
// the sink settles events as dead_lettered only once their dead letters are durable.
// Threading: used only by the sink's dedicated connection thread (send() blocks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "stages/event.hpp"

typedef struct rd_kafka_s rd_kafka_t;

namespace etld::pg {

// One dead letter: the original record and why it was rejected.
struct DeadLetter {
  const Event* event = nullptr;  // the raw key, value, headers and Kafka coordinates
  std::string error;
  std::string sqlstate;  // "" when none
};

// Checks one librdkafka property; returns "" or why it is rejected (secrets are not echoed).
std::string check_librdkafka_property(const std::string& name, const std::string& value);

class DeadLetterProducer {
 public:
  // Throws std::runtime_error when librdkafka rejects the configuration.
  DeadLetterProducer(std::string brokers, std::string topic,
                     std::vector<std::pair<std::string, std::string>> properties, std::string pipeline,
                     std::string stage, spdlog::logger& log);
  ~DeadLetterProducer();
  DeadLetterProducer(const DeadLetterProducer&) = delete;
  DeadLetterProducer& operator=(const DeadLetterProducer&) = delete;

  // Produces every letter and waits (up to `timeout`, polling `stop` every 100 ms) until all are
  // acknowledged. Returns "" when every one was delivered, else the first error; messages not
  // delivered by then are purged. Returns std::nullopt when `stop` returned true.
  std::optional<std::string> send(const std::vector<DeadLetter>& letters, std::chrono::milliseconds timeout,
                                  const std::function<bool()>& stop);

  // Called from librdkafka's delivery callback (on this thread, inside poll/flush).
  void delivered(std::uintptr_t generation, int err, const char* reason);
  spdlog::logger& log() { return log_; }

 private:
  void open();
  void close();

  std::string brokers_, topic_, pipeline_, stage_;
  std::vector<std::pair<std::string, std::string>> properties_;
  spdlog::logger& log_;
  rd_kafka_t* rk_ = nullptr;
  std::uintptr_t generation_ = 0;  // delivery reports of earlier send() calls are ignored
  std::size_t outstanding_ = 0;
  std::string error_;
};

}  // namespace etld::pg
