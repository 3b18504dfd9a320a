// etld top's reading of a scrape (the Prometheus text format, labels with escapes, checked
// against what the daemon's own Exposition writes) and the view it computes from two scrapes:
// rates from the counters' growth, restarted counters, Kafka lag per partition and in total, the
// postgres batch means over the interval, and the text and JSON it shows.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "daemon/top_exposition.hpp"
#include "daemon/top_view.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/engine/value.hpp"

using namespace etld;
using namespace etld::top;

TEST_CASE("parse_exposition reads names, labels with escapes, special values and timestamps") {
  auto samples = parse_exposition(
      "# HELP etld_x A help line with \"quotes\" and {braces}\n"
      "# TYPE etld_x counter\n"
      "etld_x{stage=\"a\\\\b\",topic=\"say \\\"hi\\\"\",msg=\"two\\nlines\"} 42\n"
      "\n"
      "etld_up 1 1700000000000\n"
      "etld_nan{a=\"1\",} NaN\n"
      "etld_inf_bucket{le=\"+Inf\"} +Inf\r\n"
      "etld_neg -Inf\n"
      "  etld_spaced { a = \"x\" , b=\"\" }   -1.5e3\n");
  REQUIRE(samples.size() == 6);
  CHECK(samples[0].name == "etld_x");
  CHECK(samples[0].label("stage") == "a\\b");
  CHECK(samples[0].label("topic") == "say \"hi\"");
  CHECK(samples[0].label("msg") == "two\nlines");
  CHECK(samples[0].label("absent").empty());
  CHECK(samples[0].value == 42);
  CHECK(samples[1].name == "etld_up");
  CHECK(samples[1].labels.empty());
  CHECK(samples[1].value == 1);
  CHECK(std::isnan(samples[2].value));
  CHECK(samples[3].label("le") == "+Inf");
  CHECK(std::isinf(samples[3].value));
  CHECK(samples[4].value < 0);
  CHECK(std::isinf(samples[4].value));
  CHECK(samples[5].labels == Labels{{"a", "x"}, {"b", ""}});
  CHECK(samples[5].value == -1500);
}

TEST_CASE("parse_exposition refuses a malformed line, naming its line number and what is wrong") {
  auto error_of = [](const char* text) {
    try {
      parse_exposition(text);
    } catch (const ExpositionError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of("ok 1\nbad{a=\"x} 1\n") == "metrics line 2, column 12: unterminated label value");
  CHECK(error_of("bad{a=\"\\t\"} 1") == "metrics line 1, column 10: unknown escape '\\t' in a label value");
  CHECK(error_of("bad 1x") == "metrics line 1, column 7: the value '1x' is not a number");
  CHECK(error_of("bad") == "metrics line 1, column 4: expected a space and a value after the metric");
  CHECK(error_of("bad{a=1} 1") == "metrics line 1, column 7: expected '\"' to open the value of label 'a'");
  CHECK(error_of("bad{a=\"1\" b=\"2\"} 1") ==
        "metrics line 1, column 11: expected ',' or '}' after a label value");
  CHECK(error_of("bad 1 soon") == "metrics line 1, column 11: the timestamp 'soon' is not an integer");
  CHECK(error_of("9bad 1") == "metrics line 1, column 1: expected a metric name");
}

TEST_CASE("parse_exposition reads back what the daemon's Exposition writes, label values as they were") {
  metrics::Exposition out;
  const metrics::Metric counter{"etld_test_total", metrics::Type::counter, "A counter."};
  const std::string odd = "back\\slash \"quoted\"\nnewline {x=\"y\"} é";
  out.sample(counter, {{"stage", odd}, {"instance", "0"}}, 12345678901.0);
  metrics::HistogramSnapshot h;
  h.bounds = {0.1, 1};
  h.counts = {3, 1, 1};
  h.count = 5;
  h.sum = 7.25;
  out.family("etld_test_seconds", "histogram", "A histogram.");
  out.histogram("etld_test_seconds", {{"stage", "s"}}, h);
  auto samples = parse_exposition(out.render());
  REQUIRE(samples.size() == 6);
  bool saw_counter = false, saw_inf = false, saw_sum = false;
  for (const auto& s : samples) {
    saw_counter = saw_counter || (s.name == "etld_test_total" && s.label("stage") == odd &&
                                  s.label("instance") == "0" && s.value == 12345678901.0);
    saw_inf = saw_inf || (s.name == "etld_test_seconds_bucket" && s.label("le") == "+Inf" && s.value == 5);
    saw_sum = saw_sum || (s.name == "etld_test_seconds_sum" && s.value == 7.25);
  }
  CHECK(saw_counter);
  CHECK(saw_inf);
  CHECK(saw_sum);
}

namespace {

Scrape scrape_at(double seconds, const std::string& text) {
  Scrape s;
  s.samples = parse_exposition(text);
  s.at =
      std::chrono::steady_clock::time_point{} +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  return s;
}

const char* kFirst = R"(etld_stage_events_in_total{pipeline="p",stage="in",instance="0"} 0
etld_stage_events_out_total{pipeline="p",stage="in",instance="0"} 1000
etld_stage_buffered_events{pipeline="p",stage="in",instance="0"} 7
etld_stage_outstanding_demand{pipeline="p",stage="in",instance="0"} 0
etld_stage_events_in_total{pipeline="p",stage="out",instance="0"} 900
etld_stage_events_in_total{pipeline="p",stage="out",instance="1"} 100
etld_stage_events_out_total{pipeline="p",stage="out",instance="0"} 0
etld_stage_events_dead_lettered_total{pipeline="p",stage="out",instance="0"} 5
etld_stage_restarts_total{pipeline="p",stage="out",instance="1"} 0
etld_kafka_partition_fetched_total{pipeline="p",stage="in",instance="0",topic="t",partition="1"} 400
etld_kafka_partition_fetched_total{pipeline="p",stage="in",instance="0",topic="t",partition="0"} 600
etld_kafka_consumer_lag{pipeline="p",stage="in",instance="0",topic="t",partition="0"} 50
etld_postgres_rows_written_total{pipeline="p",stage="out",instance="0"} 800
etld_postgres_batches_total{pipeline="p",stage="out",instance="0"} 8
etld_postgres_retries_total{pipeline="p",stage="out",instance="0"} 1
etld_postgres_batch_rows_sum{pipeline="p",stage="out",instance="0"} 800
etld_postgres_batch_rows_count{pipeline="p",stage="out",instance="0"} 8
etld_postgres_batch_seconds_sum{pipeline="p",stage="out",instance="0"} 0.4
etld_postgres_batch_seconds_count{pipeline="p",stage="out",instance="0"} 8
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="0.01"} 2
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="0.1"} 8
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="1"} 8
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="+Inf"} 8
etld_postgres_connected{pipeline="p",stage="out",instance="0"} 1
etld_pipeline_ready{pipeline="p"} 1
etld_config_generation{pipeline="p"} 1
etld_last_reload_success{pipeline="p"} 1
)";

// Two seconds later: 2000 more out of `in`; instance 1 of `out` restarted (its counter went down
// to 30), partition 1 reports a lag now, and 4 batches of 250 rows took 0.2 s in all: 2 of them
// between 10 and 100 ms, 2 between 100 ms and 1 s (the buckets' increase; the 8 before do not count).
const char* kSecond = R"(etld_stage_events_in_total{pipeline="p",stage="in",instance="0"} 0
etld_stage_events_out_total{pipeline="p",stage="in",instance="0"} 3000
etld_stage_buffered_events{pipeline="p",stage="in",instance="0"} 3
etld_stage_outstanding_demand{pipeline="p",stage="in",instance="0"} 500
etld_stage_events_in_total{pipeline="p",stage="out",instance="0"} 2870
etld_stage_events_in_total{pipeline="p",stage="out",instance="1"} 30
etld_stage_events_out_total{pipeline="p",stage="out",instance="0"} 0
etld_stage_events_dead_lettered_total{pipeline="p",stage="out",instance="0"} 9
etld_stage_restarts_total{pipeline="p",stage="out",instance="1"} 1
etld_kafka_partition_fetched_total{pipeline="p",stage="in",instance="0",topic="t",partition="1"} 1400
etld_kafka_partition_fetched_total{pipeline="p",stage="in",instance="0",topic="t",partition="0"} 1600
etld_kafka_consumer_lag{pipeline="p",stage="in",instance="0",topic="t",partition="0"} 10
etld_kafka_consumer_lag{pipeline="p",stage="in",instance="0",topic="t",partition="1"} 25
etld_kafka_partition_paused{pipeline="p",stage="in",instance="0",topic="t",partition="1"} 1
etld_postgres_rows_written_total{pipeline="p",stage="out",instance="0"} 1800
etld_postgres_batches_total{pipeline="p",stage="out",instance="0"} 12
etld_postgres_retries_total{pipeline="p",stage="out",instance="0"} 3
etld_postgres_batch_rows_sum{pipeline="p",stage="out",instance="0"} 1800
etld_postgres_batch_rows_count{pipeline="p",stage="out",instance="0"} 12
etld_postgres_batch_seconds_sum{pipeline="p",stage="out",instance="0"} 0.6
etld_postgres_batch_seconds_count{pipeline="p",stage="out",instance="0"} 12
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="0.01"} 2
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="0.1"} 10
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="1"} 12
etld_postgres_batch_seconds_bucket{pipeline="p",stage="out",instance="0",le="+Inf"} 12
etld_postgres_connected{pipeline="p",stage="out",instance="0"} 1
etld_pipeline_ready{pipeline="p"} 1
etld_config_generation{pipeline="p"} 3
etld_last_reload_success{pipeline="p"} 0
)";

}  // namespace

TEST_CASE("compute_view: rates from two scrapes, per stage over its instances") {
  auto first = scrape_at(10, kFirst), second = scrape_at(12, kSecond);
  second.stages = {{"in", "kafka"}, {"out", "postgres"}};
  auto v = compute_view(&first, second);
  REQUIRE(v.interval_seconds);
  CHECK(*v.interval_seconds == doctest::Approx(2));
  CHECK(v.pipeline == "p");
  CHECK(v.generation == 3);
  CHECK(v.last_reload_ok == false);
  CHECK(v.ready == true);
  REQUIRE(v.stages.size() == 2);
  const auto& in = v.stages[0];
  CHECK(in.name == "in");
  CHECK(in.type == "kafka");
  CHECK(in.instances == 1);
  CHECK(*in.out_per_second == doctest::Approx(1000));
  CHECK(*in.in_per_second == 0);
  CHECK(in.buffered == 3);
  CHECK(in.outstanding_demand == 500);
  const auto& out = v.stages[1];
  CHECK(out.instances == 2);
  // Instance 0 grew by 1970; instance 1 went from 100 down to 30: it restarted, so 30 are new.
  CHECK(*out.in_per_second == doctest::Approx((1970.0 + 30) / 2));
  CHECK(*out.dead_lettered_per_second == doctest::Approx(2));
  CHECK(out.dead_lettered == 9);
  CHECK(out.restarts == 1);

  REQUIRE(v.partitions.size() == 2);
  CHECK(v.partitions[0].partition == 0);  // sorted by partition number
  CHECK(v.partitions[0].lag == 10);
  CHECK(*v.partitions[0].fetched_per_second == doctest::Approx(500));
  CHECK(v.partitions[1].partition == 1);
  CHECK(v.partitions[1].lag == 25);
  CHECK(v.partitions[1].paused);
  CHECK(v.total_lag == 35);

  REQUIRE(v.sinks.size() == 1);
  const auto& pg = v.sinks[0];
  CHECK(pg.stage == "out");
  CHECK(*pg.rows_per_second == doctest::Approx(500));
  CHECK(*pg.batches_per_second == doctest::Approx(2));
  CHECK(*pg.batch_rows == doctest::Approx(250));  // this interval's batches, not the mean since start
  CHECK(*pg.batch_seconds == doctest::Approx(0.05));
  // Of this interval's 4 batches, the 2nd (p50) is at the top of the 10..100 ms bucket and the
  // 3.96th (p99) at 98 % of the 100 ms..1 s one.
  REQUIRE(pg.batch_seconds_p50);
  CHECK(*pg.batch_seconds_p50 == doctest::Approx(0.1));
  REQUIRE(pg.batch_seconds_p99);
  CHECK(*pg.batch_seconds_p99 == doctest::Approx(0.1 + 0.9 * 1.96 / 2));
  CHECK(*pg.retries_per_second == doctest::Approx(1));
  CHECK(pg.retries == 3);
  CHECK(pg.connected);
}

TEST_CASE("compute_view: one scrape shows the gauges and totals, and no rate") {
  auto only = scrape_at(0, kFirst);
  auto v = compute_view(nullptr, only);
  CHECK_FALSE(v.interval_seconds);
  REQUIRE(v.stages.size() == 2);  // from the metrics alone, in their order
  CHECK(v.stages[0].name == "in");
  CHECK(v.stages[0].type.empty());
  CHECK_FALSE(v.stages[0].out_per_second);
  CHECK(v.stages[0].buffered == 7);
  CHECK(v.partitions[0].lag == 50);
  CHECK_FALSE(v.partitions[1].lag);  // no statistics yet for partition 1
  CHECK(v.total_lag == 50);
  CHECK_FALSE(v.sinks[0].batch_rows);
  CHECK(v.sinks[0].rows_written == 800);
}

TEST_CASE("compute_view: no batch in the interval leaves the batch means absent, not zero") {
  auto first = scrape_at(0, kFirst), again = scrape_at(1, kFirst);
  auto v = compute_view(&first, again);
  CHECK(*v.sinks[0].rows_per_second == 0);
  CHECK_FALSE(v.sinks[0].batch_rows);
  CHECK_FALSE(v.sinks[0].batch_seconds);
  CHECK_FALSE(v.sinks[0].batch_seconds_p50);
  CHECK_FALSE(v.sinks[0].batch_seconds_p99);
}

TEST_CASE("bucket_quantile interpolates inside the bucket as histogram_quantile() does") {
  const double inf = std::numeric_limits<double>::infinity();
  // 10 observations: 4 up to 1 ms, 5 more up to 10 ms, 1 above 10 ms.
  std::vector<std::pair<double, double>> b{{0.001, 4}, {0.01, 9}, {inf, 10}};
  CHECK(*bucket_quantile(0.2, b) == doctest::Approx(0.0005));  // 2 of the first 4: half of 0..1 ms
  CHECK(*bucket_quantile(0.5, b) == doctest::Approx(0.001 + 0.009 * 1 / 5));
  CHECK(*bucket_quantile(0.9, b) == doctest::Approx(0.01));
  CHECK(*bucket_quantile(0.99, b) == doctest::Approx(0.01));  // in +Inf's: the highest finite bound
  // Empty buckets before the one that holds it are skipped, not interpolated into.
  CHECK(*bucket_quantile(0.5, {{0.001, 0}, {0.01, 0}, {0.1, 2}, {inf, 2}}) == doctest::Approx(0.055));
  CHECK_FALSE(bucket_quantile(0.5, {{0.001, 0}, {inf, 0}}));
  CHECK_FALSE(bucket_quantile(0.5, {}));
}

TEST_CASE("render_json and render_text show the view") {
  auto first = scrape_at(10, kFirst), second = scrape_at(12, kSecond);
  auto v = compute_view(&first, second);
  auto json = parse_json(render_json(v, "127.0.0.1:9187"));
  CHECK(json.find("admin")->as_string() == "127.0.0.1:9187");
  CHECK(json.find("generation")->as_int() == 3);
  CHECK(json.at_path("kafka.total_lag")->as_int() == 35);
  const auto& stages = json.find("stages")->as_array();
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].find("events_out_per_second")->as_double() == doctest::Approx(1000));
  CHECK(stages[1].find("restarts")->as_int() == 1);
  const auto& parts = json.at_path("kafka.partitions")->as_array();
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].find("partition")->as_int() == 1);
  CHECK(parts[1].find("lag")->as_int() == 25);
  CHECK(json.find("postgres")->as_array()[0].find("batch_rows")->as_double() == doctest::Approx(250));
  CHECK(json.find("postgres")->as_array()[0].find("batch_seconds_p50")->as_double() == doctest::Approx(0.1));
  CHECK(json.find("postgres")->as_array()[0].find("batch_seconds_p99")->as_double() ==
        doctest::Approx(0.982).epsilon(1e-3));
  CHECK(parse_json(render_json(compute_view(nullptr, first), "x"))
            .find("stages")
            ->as_array()[0]
            .find("events_out_per_second")
            ->is_null());

  auto text = render_text(v, "127.0.0.1:9187");
  CHECK(text.find("generation 3 (last reload FAILED)") != std::string::npos);
  CHECK(text.find("total lag 35 over 2 partitions") != std::string::npos);
  CHECK(text.find("paused") != std::string::npos);
  auto sink_row = text.substr(text.rfind("\nout "));
  CHECK(sink_row.find(" 250 ") != std::string::npos);  // rows per batch
  CHECK(text.find("50.0ms") != std::string::npos);     // batch latency
  CHECK(text.find(" P50 ") != std::string::npos);
  CHECK(text.find("   50.0ms    100.0ms    982.0ms") != std::string::npos);  // mean, p50, p99
  auto narrow = render_text(v, "127.0.0.1:9187", 30);
  for (std::size_t start = 0, end; start < narrow.size(); start = end + 1) {
    end = narrow.find('\n', start);
    CHECK(end - start <= 30);
  }
}
