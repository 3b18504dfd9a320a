// A dead-letter destination (stages/sink/dead_letter.hpp) that is a Kafka topic: a small
// idempotent producer (acks=all) that sends a batch's dead letters and waits until the broker
// confirmed every one, so that a sink settles events dead_lettered only once they are durable.
// Each letter is the original key, value and headers plus etld.* headers with the reason and
// the record's coordinates. Used by sinks through the interface (the postgres sink's
// dead_letter.topic). Threading: used only by the sink's worker thread (write() blocks).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "stages/sink/dead_letter.hpp"

namespace etld::kafka {

struct DeadLetterTopicConfig {
  std::string brokers, topic;
  // librdkafka properties; values may be secrets: never logged.
  std::vector<std::pair<std::string, std::string>> properties;
  std::string pipeline, stage;  // for the client id and the etld.pipeline/etld.stage headers
};

// The producer is created on the first write(); a configuration librdkafka rejects then throws
// FatalStageError. `log` must outlive the destination.
std::unique_ptr<sink::DeadLetterDestination> make_dead_letter_topic(DeadLetterTopicConfig cfg,
                                                                    spdlog::logger& log);

// Checks one librdkafka property; returns "" or why it is rejected (secrets are not echoed).
std::string check_librdkafka_property(const std::string& name, const std::string& value);

}  // namespace etld::kafka
