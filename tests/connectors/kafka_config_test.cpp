// The kafka source's options, checked at configure time without a broker: topics or a pattern,
// the in-flight cap, librdkafka properties (unknown, reserved and secret ones), and a revoke
// timeout that must fit the group's rebalance timeout. And the librdkafka etld is built with.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/kafka/kafka_version.hpp"
#include "tests/support/fake_contexts.hpp"

namespace etld {

TEST_CASE("kafka: librdkafka version is the one built for etld") {
  std::string v = librdkafka_version();
  int major = 0, minor = 0;
  REQUIRE(std::sscanf(v.c_str(), "%d.%d", &major, &minor) == 2);
  CHECK((major > 2 || (major == 2 && minor >= 8)));
}

TEST_CASE("kafka: options are validated at configure time") {
  using test::configure_stage;
  CHECK_NOTHROW(configure_stage("kafka", "{brokers: 'h:1', group: g, topics: [a, b]}"));
  CHECK_NOTHROW(configure_stage("kafka", "{brokers: 'h:1', group: g, topic_pattern: 'orders-.*'}"));
  CHECK_THROWS_AS(configure_stage("kafka", "{brokers: 'h:1', group: g}"), ConfigError);
  CHECK_THROWS_AS(configure_stage("kafka", "{brokers: 'h:1', group: g, topics: [a], topic_pattern: 'x'}"),
                  ConfigError);
  CHECK_THROWS_AS(configure_stage("kafka", "{brokers: 'h:1', group: g, topic_pattern: '(unclosed'}"),
                  ConfigError);
  CHECK_THROWS_AS(
      configure_stage("kafka", "{brokers: 'h:1', group: g, topics: [a], max_in_flight_per_partition: 0}"),
      ConfigError);
  // Unknown and reserved librdkafka properties are reported with the property's name.
  try {
    configure_stage("kafka", "{brokers: 'h:1', group: g, topics: [a], librdkafka: {sasl.pasword: x}}");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("sasl.pasword") != std::string::npos);
  }
  CHECK_THROWS_AS(
      configure_stage("kafka",
                      "{brokers: 'h:1', group: g, topics: [a], librdkafka: {enable.auto.commit: 'true'}}"),
      ConfigError);
  CHECK_NOTHROW(configure_stage(
      "kafka",
      "{brokers: 'h:1', group: g, topics: [a], librdkafka: {security.protocol: sasl_plaintext, "
      "sasl.mechanism: PLAIN, sasl.username: u, sasl.password: p, partition.assignment.strategy: range}}"));
  // A revoke must drain within the group's rebalance timeout (max.poll.interval.ms).
  CHECK_THROWS_AS(configure_stage("kafka",
                                  "{brokers: 'h:1', group: g, topics: [a], revoke_timeout: 20s, "
                                  "librdkafka: {max.poll.interval.ms: '15000'}}"),
                  ConfigError);
  CHECK_NOTHROW(configure_stage("kafka",
                                "{brokers: 'h:1', group: g, topics: [a], revoke_timeout: 5s, "
                                "librdkafka: {max.poll.interval.ms: '15000'}}"));
  CHECK(is_secret_setting("sasl.password"));
  CHECK(is_secret_setting("ssl.key.password"));
  CHECK(is_secret_setting("sasl.oauthbearer.client.secret"));
  CHECK_FALSE(is_secret_setting("sasl.mechanism"));
}

}  // namespace etld
