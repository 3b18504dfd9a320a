// The metrics module: series, histograms and the exact Prometheus text they render to.
#include "stages/engine/metrics.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace etld::metrics;

TEST_CASE("a family renders HELP, TYPE and one line per series, label values escaped") {
  Registry r;
  auto& f = r.counter("test_things_total", "Things counted.\nTwo lines.", {"stage", "instance"});
  f.with({"a", "0"})->inc(3);
  f.with({"we\"ird\\name\n", "1"})->inc();
  CHECK(f.with({"a", "0"})->value() == 3);  // the same series again
  Exposition out;
  r.collect(out);
  CHECK(out.render() ==
        "# HELP test_things_total Things counted.\\nTwo lines.\n"
        "# TYPE test_things_total counter\n"
        "test_things_total{stage=\"a\",instance=\"0\"} 3\n"
        "test_things_total{stage=\"we\\\"ird\\\\name\\n\",instance=\"1\"} 1\n");
}

TEST_CASE("a histogram renders cumulative buckets, +Inf, _sum and _count") {
  Registry r;
  auto h = r.histogram("test_seconds", "Latency.", {"stage"}, {0.1, 1}).with({"s"});
  h->observe(0.05);
  h->observe(0.1);  // on a bound: counts in that bucket (le means <=)
  h->observe(0.5);
  h->observe(7);
  Exposition out;
  r.collect(out);
  CHECK(out.render() ==
        "# HELP test_seconds Latency.\n"
        "# TYPE test_seconds histogram\n"
        "test_seconds_bucket{stage=\"s\",le=\"0.1\"} 2\n"
        "test_seconds_bucket{stage=\"s\",le=\"1\"} 3\n"
        "test_seconds_bucket{stage=\"s\",le=\"+Inf\"} 4\n"
        "test_seconds_sum{stage=\"s\"} 7.65\n"
        "test_seconds_count{stage=\"s\"} 4\n");
}

TEST_CASE("gauges go up and down; families group their samples even from several collectors") {
  Registry r;
  auto g = r.gauge("test_level", "A level.", {}).with({});
  g->set(5);
  g->add(-7);
  auto c1 = r.add_collector([](Exposition& out) {
    out.family("test_collected", "gauge", "From a collector.");
    out.sample("test_collected", {{"who", "one"}}, 1);
  });
  {
    auto c2 = r.add_collector([](Exposition& out) {
      out.family("test_collected", "gauge", "From a collector.");
      out.sample("test_collected", {{"who", "two"}}, 2);
    });
    Exposition out;
    r.collect(out);
    CHECK(out.render() ==
          "# HELP test_collected From a collector.\n"
          "# TYPE test_collected gauge\n"
          "test_collected{who=\"one\"} 1\n"
          "test_collected{who=\"two\"} 2\n"
          "# HELP test_level A level.\n"
          "# TYPE test_level gauge\n"
          "test_level -2\n");
  }
  Exposition out;  // c2's handle is gone: it is not called any more
  r.collect(out);
  CHECK(out.render().find("who=\"two\"") == std::string::npos);
  CHECK(out.render().find("who=\"one\"") != std::string::npos);
}

TEST_CASE("counters and histograms stay exact under concurrent updates") {
  Registry r;
  auto c = r.counter("test_concurrent_total", "x", {}).with({});
  auto h = r.histogram("test_concurrent_seconds", "x", {}, {1}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c->inc();
        h->observe(i % 2 ? 0.5 : 2);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(c->value() == 400000);
  auto s = h->snapshot();
  CHECK(s.count == 400000);
  CHECK(s.counts == std::vector<std::uint64_t>{200000, 200000});
  CHECK(s.sum == doctest::Approx(500000.0));
}

TEST_CASE("names are checked; a wrong number of label values is refused") {
  Registry r;
  CHECK(valid_name("etld_stage_events_in_total", false));
  CHECK(valid_name("a:b", false));
  CHECK_FALSE(valid_name("a:b", true));
  CHECK_FALSE(valid_name("9lives", false));
  CHECK_FALSE(valid_name("__reserved", true));
  CHECK_FALSE(valid_name("", false));
  CHECK_THROWS_AS(r.counter("bad-name", "x", {}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("test_ok", "x", {"bad label"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("test_ok2", "x", {"a"}).with({"1", "2"}), std::invalid_argument);
  Exposition out;
  CHECK_THROWS_AS(out.sample("test_undeclared", {}, 1), std::logic_error);
}
