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
    unreachable,     // the registry cannot be asked: no connection, a timeout, HTTP 5xx, 401/403, an
                     // answer that is not a registry's (asking it about other subjects is no use)
    failed,          // this subject's schema is not one etld reads (not Avro, does not compile)
  };
  Outcome outcome = Outcome::unreachable;
  std::shared_ptr<const AvroSchema> schema;
  long long version = 0;
  long long id = 0;
  std::string error;  // names the registry by its URL, without credentials
};

// Blocks for at most the settings' timeout.
SubjectSchema fetch_latest_schema(const RegistrySettings& settings, const std::string& subject);

}  // namespace etld::avro
