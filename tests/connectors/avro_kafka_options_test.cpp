// The kafka source's format, key_format and schema_registry options, checked at configure time
// without a broker: each mistake is a ConfigError at its line that quotes no credential, and the
// registry's password (from the option or the URL) is a secret of the stage, remembered only once
// the pipeline is built to run.
#include <doctest/doctest.h>

#include <unistd.h>

#include <memory>
#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/avro/registry_settings.hpp"
#include "stages/engine/pipeline.hpp"
#include "tests/support/fake_contexts.hpp"

namespace etld {
namespace {

constexpr const char* kBase = "{brokers: 'h:1', group: g, topics: [a], ";

std::string config_error(const std::string& options) {
  try {
    test::configure_stage("kafka", std::string(kBase) + options + "}");
  } catch (const ConfigError& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "(accepted)";
}

avro::RegistrySettings registry(const std::string& yaml) {
  YAML::Node node = YAML::Load(yaml);
  return avro::read_registry_settings(node, node.Mark());
}

bool masked(const std::string& secret) { return redact_secrets("a " + secret + " b") == "a *** b"; }

}  // namespace

TEST_CASE("kafka: format and key_format avro need a schema_registry, and only they take one") {
  CHECK(config_error("format: json") == "(accepted)");
  CHECK(config_error("format: avro, schema_registry: {url: 'http://127.0.0.1:8081'}") == "(accepted)");
  CHECK(config_error("key_format: avro, schema_registry: {url: 'https://r.example/api/ccompat/v7/'}") ==
        "(accepted)");
  CHECK(config_error("format: avro") ==
        "format: avro needs schema_registry | add schema_registry: {url: http://127.0.0.1:8081} "
        "(docs/formats.md)");
  CHECK(config_error("key_format: avro").rfind("key_format: avro needs schema_registry", 0) == 0);
  CHECK(
      config_error("schema_registry: {url: 'http://h:1'}").rfind("schema_registry is set, but neither", 0) ==
      0);
  CHECK(config_error("format: avro, schema_registry: {url: 'http://h:1', timout: 5s}") ==
        "unknown key 'timout' in schema_registry | did you mean 'timeout'?");
  CHECK(config_error("format: avro, schema_registry: 'http://h:1'")
            .rfind("schema_registry must be a mapping", 0) == 0);
  CHECK(
      config_error("format: avro, schema_registry: {username: u}").rfind("schema_registry needs a url", 0) ==
      0);
  CHECK(config_error("format: avro, schema_registry: {url: 'ftp://h/'}")
            .rfind("schema_registry.url must be an http or https URL, not ftp://", 0) == 0);
  CHECK(config_error("format: avro, schema_registry: {url: 'http://h:1/?x=1'}").find("without a query") !=
        std::string::npos);
  CHECK(config_error("format: avro, schema_registry: {url: 'http://h:1', timeout: 0s}") ==
        "schema_registry.timeout must be positive | ");
  CHECK(config_error("format: avro, schema_registry: {url: 'http://h:1', ca_file: /etc/hostname}")
            .rfind("schema_registry.ca_file is for https URLs", 0) == 0);
  CHECK(config_error("format: avro, schema_registry: {url: 'https://h:1', ca_file: /nonexistent.pem}")
            .rfind("schema_registry.ca_file '/nonexistent.pem' cannot be read", 0) == 0);
  CHECK(config_error("format: avro, schema_registry: {url: 'http://h:1', password: secret-pw-1234}")
            .rfind("schema_registry has a password but no username", 0) == 0);
}

TEST_CASE("kafka: a bad registry URL is located and quotes neither the URL nor its password") {
  const std::string yaml =
      std::string(kBase) + "format: avro,\n schema_registry: {url: 'http://user:pw-in-url-77@'}}";
  try {
    test::configure_stage("kafka", yaml);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.has_mark());
    CHECK(e.mark().line == 1);
    const std::string text = std::string(e.what()) + e.hint();
    CHECK(text.rfind("schema_registry.url is not a valid URL: ", 0) == 0);
    CHECK(text.find("pw-in-url-77") == std::string::npos);
  }
  // Credentials in the URL and in the options both: which to use is unclear.
  CHECK(config_error("format: avro, schema_registry: {url: 'http://u:p@h:1', username: v}")
            .rfind("schema_registry.url carries credentials, and username or password is set too", 0) == 0);
}

TEST_CASE("registry settings: credentials leave the URL; the password as written and as sent are secrets") {
  auto s = registry("{url: 'http://alice:p%40ss-word-1@registry.local:8081/apis/ccompat/v7/'}");
  CHECK(s.url == "http://registry.local:8081/apis/ccompat/v7");
  CHECK(s.username == "alice");
  CHECK(s.password == "p@ss-word-1");
  CHECK(s.secrets == std::vector<std::string>{"p%40ss-word-1", "p@ss-word-1"});
  CHECK(s.timeout == std::chrono::milliseconds(10000));

  s = registry("{url: 'https://registry.local', username: bob, password: hunter2-hunter2, timeout: 2500ms}");
  CHECK(s.url == "https://registry.local");
  CHECK(s.username == "bob");
  CHECK(s.password == "hunter2-hunter2");
  CHECK(s.secrets == std::vector<std::string>{"hunter2-hunter2"});
  CHECK(s.timeout == std::chrono::milliseconds(2500));
}

TEST_CASE("kafka: the registry password is remembered as a secret only once the pipeline is built to run") {
  const std::string password = "registry-pw-" + std::to_string(::getpid());
  const std::string text =
      "stages:\n"
      "  orders:\n"
      "    type: kafka\n"
      "    brokers: 127.0.0.1:1\n"
      "    group: g\n"
      "    topics: [orders]\n"
      "    format: avro\n"
      "    schema_registry: {url: 'http://127.0.0.1:1', username: u, password: '" +
      password +
      "'}\n"
      "  out: {type: \"null\", inputs: [orders]}\n";
  Diagnostics diags("p.yaml");
  std::shared_ptr<const PipelineConfig> config = load_pipeline_text(text, "p.yaml", diags);
  INFO(diags.format());
  REQUIRE(config != nullptr);
  CHECK_FALSE(masked(password));
  Pipeline running(config);
  CHECK(masked(password));
}

}  // namespace etld
