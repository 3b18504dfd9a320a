// One GET to a schema registry with its settings (basic auth, TLS trust, timeout): shared by the
// registry client (schemas by id, for decoding) and the subject lookup (`validate --against-db`).
#pragma once

#include <cstddef>
#include <string>

#include "connectors/avro/registry_settings.hpp"

namespace etld::avro {

inline constexpr std::size_t kMaxRegistryAnswerBytes = 8 << 20;

struct RegistryBody {
  std::string text;
  bool too_large = false;  // the transfer was cut at kMaxRegistryAnswerBytes
};

// Sets the libcurl handle `easy` (a CURL*) up to GET `url` into `body`, libcurl's words about a
// failure into `error_buffer` (CURL_ERROR_SIZE bytes).
void prepare_registry_get(void* easy, const RegistrySettings& s, const std::string& url, RegistryBody& body,
                          char* error_buffer);

}  // namespace etld::avro
