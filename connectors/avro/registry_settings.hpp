// The `schema_registry:` option of a stage that reads Avro: where a Confluent-compatible schema
// registry answers GET /schemas/ids/{id}, and how to reach it (basic auth, TLS trust, timeout).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace etld::avro {

struct RegistrySettings {
  // The API root, without credentials nor a trailing '/': also what messages show.
  std::string url;
  std::string username;  // "": no authentication
  std::string password;  // a secret: never in a message
  std::string ca_file;   // "": the system's trust store
  std::chrono::milliseconds timeout{10000};
  // The password as written and as sent (they differ for a percent-encoded one in the URL), for
  // the stage's StageFactory::secrets(): reading the option remembers none of them.
  std::vector<std::string> secrets;
};

// The keys the option takes, for its reference doc and unknown-key checks.
const std::vector<std::string>& registry_option_keys();

// Reads the mapping `node` (the option's value, located at `mark`). Credentials may come from
// username/password or from the URL's userinfo (not both), and leave the URL. Throws ConfigError
// located at the culprit key; no message quotes the URL's userinfo nor the password.
RegistrySettings read_registry_settings(const YAML::Node& node, const YAML::Mark& mark);

}  // namespace etld::avro
