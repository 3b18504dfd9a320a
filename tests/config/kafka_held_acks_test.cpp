// The held-acks check with the kafka source's own declaration: it never ends and caps unsettled
// events per partition, unless stop_at_end makes its input bounded (and uncapped by default).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"

namespace etld {
namespace {

std::string pipeline(const std::string& kafka_options) {
  return "stages:\n"
         "  orders: {type: kafka, brokers: 127.0.0.1:1, group: g, topics: [orders]" +
         kafka_options +
         "}\n"
         "  totals:\n"
         "    type: reduce\n"
         "    inputs: [orders]\n"
         "    group_by: [customer]\n"
         "    aggregates: {n: count}\n"
         "  out: {type: \"null\", inputs: [totals]}\n";
}

TEST_CASE("kafka -> reduce is refused at the reduce: the source never ends and caps in-flight records") {
  Diagnostics diags("p.yaml");
  auto config = load_pipeline_text(pipeline(""), "p.yaml", diags);
  INFO(diags.format());
  CHECK(config == nullptr);
  REQUIRE(diags.items().size() == 1);
  const auto& d = diags.items()[0];
  CHECK(d.line == 3);
  CHECK(d.message.find("stage 'totals' (reduce) holds every input's ack until end of input") !=
        std::string::npos);
  CHECK(d.message.find("source 'orders' (kafka) never ends and allows at most 10000 unsettled events "
                       "(max_in_flight_per_partition, per partition): the pipeline would stall") !=
        std::string::npos);
  CHECK(d.hint.find("on source 'orders', set stop_at_end: true") != std::string::npos);
}

TEST_CASE("kafka with stop_at_end -> reduce loads; with a cap set as well it is refused with the cap") {
  Diagnostics ok("p.yaml");
  auto config = load_pipeline_text(pipeline(", stop_at_end: true"), "p.yaml", ok);
  INFO(ok.format());
  CHECK(config != nullptr);

  Diagnostics capped("p.yaml");
  config =
      load_pipeline_text(pipeline(", stop_at_end: true, max_in_flight_per_partition: 500"), "p.yaml", capped);
  INFO(capped.format());
  CHECK(config == nullptr);
  REQUIRE(capped.items().size() == 1);
  CHECK(capped.items()[0].message.find(
            "allows at most 500 unsettled events (max_in_flight_per_partition, per "
            "partition): an input longer than that would stall before its end") != std::string::npos);
}

TEST_CASE("enable.partition.eof stays the source's own: stop_at_end is the way to ask for it") {
  Diagnostics diags("p.yaml");
  auto config = load_pipeline_text(
      pipeline(", stop_at_end: true, librdkafka: {enable.partition.eof: 'true'}"), "p.yaml", diags);
  CHECK(config == nullptr);
  CHECK(diags.format().find("set by the kafka source itself (the source sets it itself for stop_at_end") !=
        std::string::npos);
}

}  // namespace
}  // namespace etld

namespace etld {
namespace {

std::string windowed(const std::string& window_options) {
  return "stages:\n"
         "  orders: {type: kafka, brokers: 127.0.0.1:1, group: g, topics: [orders]}\n"
         "  per_minute:\n"
         "    type: window\n"
         "    inputs: [orders]\n"
         "    window: tumbling\n"
         "    size: 1m\n"
         "    aggregates: {n: count}\n" +
         window_options + "  out: {type: \"null\", inputs: [per_minute]}\n";
}

TEST_CASE("kafka -> window: results by event time are refused (a window can outgrow the cap); updates load") {
  Diagnostics diags("p.yaml");
  auto config = load_pipeline_text(windowed("    event_time: ts\n    emit: results\n"), "p.yaml", diags);
  INFO(diags.format());
  CHECK(config == nullptr);
  REQUIRE(diags.items().size() == 1);
  const auto& d = diags.items()[0];
  CHECK(d.line == 3);
  CHECK(d.message.find(
            "stage 'per_minute' (window) holds each input's ack until its event-time window closes") !=
        std::string::npos);
  CHECK(d.message.find("allows at most 10000 unsettled events") != std::string::npos);
  CHECK(d.hint.find("use emit: updates") != std::string::npos);

  for (const char* ok : {"    event_time: ts\n", "    emit: results\n"}) {  // updates; processing time
    Diagnostics fine("p.yaml");
    CHECK_MESSAGE(load_pipeline_text(windowed(ok), "p.yaml", fine) != nullptr, fine.format());
  }
}

}  // namespace
}  // namespace etld
