// `configure` has no side effect on the secrets the process masks (config/schema/secrets.hpp):
// validating a file with librdkafka secrets remembers none of them (a reload validates the new
// file while the old configuration runs), and building the pipeline that runs it does, so that
// librdkafka's messages in the log are still masked. No broker needed: nothing connects.
#include <doctest/doctest.h>

#include <unistd.h>

#include <memory>
#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "config/schema/secrets.hpp"
#include "stages/engine/pipeline.hpp"

namespace etld {
namespace {

std::string kafka_pipeline(const std::string& password, const std::string& key_password) {
  return "stages:\n"
         "  orders:\n"
         "    type: kafka\n"
         "    brokers: 127.0.0.1:1\n"
         "    group: g\n"
         "    topics: [orders]\n"
         "    librdkafka: {security.protocol: SASL_SSL, sasl.mechanism: PLAIN, sasl.username: u,\n"
         "                 sasl.password: '" +
         password + "', ssl.key.password: '" + key_password +
         "'}\n"
         "  out: {type: \"null\", inputs: [orders]}\n";
}

bool masked(const std::string& secret) { return redact_secrets("a " + secret + " b") == "a *** b"; }

TEST_CASE(
    "validating a kafka pipeline remembers none of its secrets; building it to run remembers them all") {
  const std::string tag = std::to_string(::getpid());
  const std::string password = "kafka-sasl-pw-" + tag, key_password = "kafka-key-pw-" + tag;
  const std::string text = kafka_pipeline(password, key_password);

  Diagnostics diags("p.yaml");
  std::shared_ptr<const PipelineConfig> config = load_pipeline_text(text, "p.yaml", diags);
  INFO(diags.format());
  REQUIRE(config != nullptr);
  Diagnostics again("p.yaml");  // as a second reload would
  REQUIRE(load_pipeline_text(text, "p.yaml", again) != nullptr);
  CHECK_FALSE(masked(password));
  CHECK_FALSE(masked(key_password));

  Pipeline running(config);  // the factories validation made, now adopted to run
  CHECK(masked(password));
  CHECK(masked(key_password));
  CHECK(redact_secrets("sasl.username u") == "sasl.username u");  // a setting not named like a secret
}

TEST_CASE("a refused file remembers nothing either") {
  const std::string password = "kafka-refused-pw-" + std::to_string(::getpid());
  Diagnostics diags("p.yaml");
  auto config = load_pipeline_text(kafka_pipeline(password, "kafka-refused-key-pw") + "  bad: {type: nope}\n",
                                   "p.yaml", diags);
  CHECK(config == nullptr);
  CHECK_FALSE(masked(password));
  CHECK(diags.format().find(password) == std::string::npos);
}

}  // namespace
}  // namespace etld
