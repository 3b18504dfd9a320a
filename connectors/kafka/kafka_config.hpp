// The kafka source's configuration: its settings, read and checked once at configure time (every
// librdkafka property is tried on a librdkafka configuration, so a bad one is reported at its
// line, never at start), and its option table, from which docs/stages.md is generated.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "connectors/avro/registry_settings.hpp"
#include "connectors/kafka/kafka_bounds.hpp"

namespace etld::kafka {

// max_in_flight when there is no cap (stop_at_end without max_in_flight_per_partition).
constexpr std::size_t kNoInFlightCap = std::numeric_limits<std::size_t>::max();

struct KafkaSettings {
  std::string pipeline;
  std::string stage;
  std::string group;
  std::vector<std::string> topics;  // names, or one "^regex" pattern
  // Final librdkafka configuration in the order applied (ours first, then the user's map).
  std::vector<std::pair<std::string, std::string>> properties;
  std::string overrides_text;  // the user's map for the log, secrets redacted
  // The options' defaults are their specs' (kafka_source_options()), read by read_kafka_settings.
  std::size_t max_in_flight{};  // kNoInFlightCap: none (stop_at_end without the option)
  bool stop_at_end{};           // finish once every assigned partition is read to its end
  // A bounded read (kafka_bounds.hpp): every assignment starts at start_at, whatever the group
  // committed; with stop_at the source finishes once each partition is read up to it.
  std::optional<ReadBound> start_at, stop_at;
  std::size_t prefetch_bytes{};
  std::chrono::milliseconds commit_interval{};
  std::chrono::milliseconds revoke_timeout{};
  PoisonPolicy on_poison = PoisonPolicy::dead_letter;
  // group.instance.id from the user's map: "" = etld's default (static_membership.hpp);
  // `member_id_off` when the user set it to "" (a dynamic member).
  std::string member_id;
  bool member_id_off = false;
  // format / key_format: avro (the Confluent wire format, docs/formats.md) or, false, as they came
  // (values JSON text, keys raw bytes). `registry` is set when either is avro.
  bool avro_values = false, avro_keys = false;
  avro::RegistrySettings registry;
};

// The settings of the kafka stage `cfg`; throws ConfigError located at the culprit option.
// Without side effects: secret librdkafka values stay in `properties`, from which the stage's
// factory hands them to the pipeline that runs it (StageFactory::secrets), never to a message.
KafkaSettings read_kafka_settings(const StageConfig& cfg, const PipelineConfig& pipeline);

std::vector<OptionSpec> kafka_source_options();

}  // namespace etld::kafka
