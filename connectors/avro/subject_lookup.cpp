#include "connectors/avro/subject_lookup.hpp"

#include <curl/curl.h>

#include <fmt/format.h>
#include <simdjson.h>

#include "connectors/avro/registry_http.hpp"

namespace etld::avro {

namespace {

struct EasyHandle {
  CURL* p = curl_easy_init();
  ~EasyHandle() {
    if (p) curl_easy_cleanup(p);
  }
};

}  // namespace

SubjectSchema fetch_latest_schema(const RegistrySettings& s, const std::string& subject) {
  SubjectSchema out;
  const std::string where =
      fmt::format("the latest schema of subject '{}' from the registry at {}", subject, s.url);
  EasyHandle easy;
  if (!easy.p) {
    out.error = "cannot fetch " + where + ": cannot create a libcurl handle";
    return out;
  }
  // Topic names are [a-zA-Z0-9._-]: nothing in a subject needs escaping.
  const std::string url = fmt::format("{}/subjects/{}/versions/latest", s.url, subject);
  RegistryBody body;
  char curl_error[CURL_ERROR_SIZE] = "";
  prepare_registry_get(easy.p, s, url, body, curl_error);
  const CURLcode rc = curl_easy_perform(easy.p);
  if (body.too_large) {
    out.outcome = SubjectSchema::Outcome::failed;
    out.error = fmt::format("cannot fetch {}: the answer is larger than {} MiB", where,
                            kMaxRegistryAnswerBytes >> 20);
    return out;
  }
  if (rc != CURLE_OK) {
    out.error = fmt::format("cannot fetch {}: {}{}{}", where, curl_easy_strerror(rc), *curl_error ? ": " : "",
                            curl_error);
    return out;
  }
  long status = 0;
  curl_easy_getinfo(easy.p, CURLINFO_RESPONSE_CODE, &status);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const bool json = !parser.parse(body.text).get(doc);
  if (status == 404) {
    std::int64_t code = 0;
    if (json && !doc["error_code"].get(code) && (code == 40401 || code == 40402)) {
      out.outcome = SubjectSchema::Outcome::not_registered;
      out.error = fmt::format("subject '{}' has no schema in the registry at {}", subject, s.url);
      return out;
    }
    out.error = fmt::format(
        "cannot fetch {}: HTTP 404 without the registry's error_code 40401: is {} the "
        "registry's API root?",
        where, s.url);
    return out;
  }
  if (status == 401 || status == 403) {
    out.error =
        fmt::format("cannot fetch {}: HTTP {}: check schema_registry's username and password", where, status);
    return out;
  }
  std::string_view text;
  if (status != 200 || !json || doc["schema"].get(text)) {
    out.error = fmt::format("cannot fetch {}: HTTP {}, not a schema: is {} the registry's API root?", where,
                            status, s.url);
    return out;
  }
  std::string_view type;
  if (!doc["schemaType"].get(type) && type != "AVRO") {
    out.outcome = SubjectSchema::Outcome::failed;
    out.error = fmt::format("{} is a {} schema; etld reads Avro only", where, type);
    return out;
  }
  std::int64_t number = 0;
  if (!doc["version"].get(number)) out.version = number;
  if (!doc["id"].get(number)) out.id = number;
  try {
    out.schema = AvroSchema::parse(text);
  } catch (const AvroSchemaError& e) {
    out.outcome = SubjectSchema::Outcome::failed;
    out.error = fmt::format("{} is not a valid Avro schema: {}", where, e.what());
    return out;
  }
  out.outcome = SubjectSchema::Outcome::found;
  return out;
}

}  // namespace etld::avro
