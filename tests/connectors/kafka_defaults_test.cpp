// The kafka source's defaults are its option specs': leaving an option out reads the same
// settings as writing its default text, and the one default that depends on another option
// (the in-flight cap under stop_at_end) is the code's, as the spec's doc says.
#include <doctest/doctest.h>

#include <string>

#include "config/schema/pipeline.hpp"
#include "connectors/kafka/kafka_config.hpp"
#include "tests/support/fake_contexts.hpp"

using namespace etld;

namespace {

kafka::KafkaSettings settings_of(const std::string& options_yaml) {
  return kafka::read_kafka_settings(test::stage_config("kafka", options_yaml, "src"), PipelineConfig{});
}

const std::string kRequired = "brokers: 'h:1', group: g, topics: [a]";

}  // namespace

TEST_CASE("kafka: options left out read as their default text written out") {
  const auto omitted = settings_of("{" + kRequired + "}");
  const auto written = settings_of("{" + kRequired +
                                   ", start_from: earliest, max_in_flight_per_partition: 10000, "
                                   "stop_at_end: false, commit_interval: 1s, prefetch_kbytes: 16384, "
                                   "revoke_timeout: 10s}");
  CHECK(omitted.max_in_flight == written.max_in_flight);
  CHECK(omitted.stop_at_end == written.stop_at_end);
  CHECK(omitted.commit_interval == written.commit_interval);
  CHECK(omitted.revoke_timeout == written.revoke_timeout);
  CHECK(omitted.prefetch_bytes == written.prefetch_bytes);
  CHECK(omitted.properties == written.properties);  // auto.offset.reset and the fetch sizes
  // And those are the values the reference shows.
  CHECK(omitted.max_in_flight == 10000);
  CHECK(omitted.commit_interval == std::chrono::seconds(1));
  CHECK(omitted.revoke_timeout == std::chrono::seconds(10));
  CHECK(omitted.prefetch_bytes == 16384u * 1024u);
}

TEST_CASE("kafka: under stop_at_end the in-flight cap defaults to none, and a written one holds") {
  CHECK(settings_of("{" + kRequired + ", stop_at_end: true}").max_in_flight == kafka::kNoInFlightCap);
  CHECK(settings_of("{" + kRequired + ", stop_at_end: true, max_in_flight_per_partition: 10000}")
            .max_in_flight == 10000);
}
