// start_at / stop_at resolved to offsets by the real broker: records with known timestamps,
// the broker's offsets-for-times and high watermarks, explicit offsets and their defaults.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include "connectors/kafka/kafka_bounds.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/services.hpp"

namespace etld {

TEST_CASE("kafka bounds: times, earliest, end and offsets become the right offsets on the broker") {
  const auto& svc = test::services();
  const std::string topic = test::unique_name("bounds");
  test::create_topic(svc.kafka_brokers, topic, 2);
  // Partition 0: ten records at base, base+10, ... base+90 ms; partition 1 stays empty.
  const std::int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count() -
                            60'000;
  {
    test::TestProducer producer(svc.kafka_brokers);
    for (int i = 0; i < 10; ++i) {
      test::TestRecord r;
      r.value = std::to_string(i);
      r.partition = 0;
      r.timestamp_ms = base + 10 * i;
      producer.send(topic, r);
    }
    producer.flush();
  }
  char err[512];
  kafka::ConfHandle conf(rd_kafka_conf_new());
  REQUIRE(rd_kafka_conf_set(conf.get(), "bootstrap.servers", svc.kafka_brokers.c_str(), err, sizeof err) ==
          RD_KAFKA_CONF_OK);
  REQUIRE(rd_kafka_conf_set(conf.get(), "group.id", topic.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK);
  kafka::KafkaHandle rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf.release(), err, sizeof err));
  REQUIRE(rk);
  kafka::PartitionList list = kafka::make_partition_list(2);
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0);
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 1);
  auto bound = [](const std::string& yaml, bool is_start) {
    return kafka::read_bound(YAML::Load(yaml), is_start);
  };

  SUBCASE("times: the first record at or after each; past the last one, the end") {
    kafka::ReadBound start, stop;
    start.kind = stop.kind = kafka::ReadBound::Kind::time;
    start.time_ms = base + 25;  // between the records at +20 and +30: offset 3
    stop.time_ms = base + 70;   // exactly the record at +70: offset 7, not read
    auto r = kafka::resolve_ranges(rk.get(), list.get(), &start, &stop, 10000);
    CHECK(r.at({topic, 0}).start == 3);
    CHECK(r.at({topic, 0}).stop == 7);
    CHECK(r.at({topic, 1}).start == 0);  // empty: start == stop, nothing to read
    CHECK(r.at({topic, 1}).stop == 0);
    stop.time_ms = base + 1000;
    CHECK(kafka::resolve_ranges(rk.get(), list.get(), &start, &stop, 10000).at({topic, 0}).stop == 10);
    start.time_ms = base + 1000;  // after everything: an empty range at the end
    CHECK(kafka::resolve_ranges(rk.get(), list.get(), &start, &stop, 10000).at({topic, 0}).start == 10);
  }
  SUBCASE("earliest and end: the watermarks") {
    auto start = bound("earliest", true), stop = bound("end", false);
    auto r = kafka::resolve_ranges(rk.get(), list.get(), &start, &stop, 10000);
    CHECK(r.at({topic, 0}).start == 0);
    CHECK(r.at({topic, 0}).stop == 10);
  }
  SUBCASE("offsets: as given, clamped to what exists; partitions not named take their side's default") {
    auto start = bound("{" + topic + ": {0: 4}}", true), stop = bound("{" + topic + ": {1: 99}}", false);
    auto r = kafka::resolve_ranges(rk.get(), list.get(), &start, &stop, 10000);
    CHECK(r.at({topic, 0}).start == 4);
    CHECK(r.at({topic, 0}).stop == 10);  // not named in stop_at: the end
    CHECK(r.at({topic, 1}).start == 0);  // not named in start_at: earliest
    CHECK(r.at({topic, 1}).stop == 99);
    auto beyond = bound("{" + topic + ": {0: 50}}", true);
    CHECK(kafka::resolve_ranges(rk.get(), list.get(), &beyond, &stop, 10000).at({topic, 0}).start == 10);
  }
  SUBCASE("no start_at: the group's position") {
    auto stop = bound("end", false);
    auto r = kafka::resolve_ranges(rk.get(), list.get(), nullptr, &stop, 10000);
    CHECK(r.at({topic, 0}).start == RD_KAFKA_OFFSET_INVALID);
    CHECK(r.at({topic, 0}).stop == 10);
  }
}

}  // namespace etld
