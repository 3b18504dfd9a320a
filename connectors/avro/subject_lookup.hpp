// The latest schema of a subject (GET {url}/subjects/{subject}/versions/latest), fetched once and
// synchronously: for `etld validate --against-db`, which compares a sink's table with the schema
// its topic's records are written with (Confluent's TopicNameStrategy: subject "<topic>-value").
#pragma once

#include <memory>
#include <string>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/avro/registry_settings.hpp"

namespace etld::avro {

struct SubjectSchema {
  enum class Outcome {
    found,
    not_registered,  // the registry has no such subject (error_code 40401) or no version (40402)
    failed,          // unreachable, refused, or an answer that is not an Avro schema: see `error`
  };
  Outcome outcome = Outcome::failed;
  std::shared_ptr<const AvroSchema> schema;
  long long version = 0;
  long long id = 0;
  std::string error;  // names the registry by its URL, without credentials
};

// Blocks for at most the settings' timeout.
SubjectSchema fetch_latest_schema(const RegistrySettings& settings, const std::string& subject);

}  // namespace etld::avro
