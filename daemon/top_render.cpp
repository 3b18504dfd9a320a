// The two faces of a TopView: the screen of `etld top` (and of --once) and the JSON of --json.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "daemon/top_view.hpp"
#include "stages/engine/value.hpp"

namespace etld::top {

namespace {

std::string rate_text(std::optional<double> v) {
  if (!v) return "-";
  return *v >= 100 ? fmt::format("{:.0f}", *v) : fmt::format("{:.1f}", *v);
}
std::string count_text(double v) { return fmt::format("{:.0f}", v); }
std::string seconds_text(std::optional<double> v) {
  if (!v) return "-";
  return *v < 1 ? fmt::format("{:.1f}ms", *v * 1000) : fmt::format("{:.2f}s", *v);
}
std::string optional_count(std::optional<double> v) { return v ? count_text(*v) : "-"; }

std::size_t name_width(std::size_t longest, std::size_t heading) {
  return std::min<std::size_t>(std::max(longest, heading), 40);
}

// Cut to `width` columns without splitting a UTF-8 sequence (0: no limit).
void add_line(std::string& out, std::string line, std::size_t width) {
  if (width > 0 && line.size() > width) {
    std::size_t cut = width;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line.resize(cut);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

}  // namespace

std::string render_text(const TopView& v, const std::string& source, std::size_t width) {
  std::string out;
  std::string head =
      fmt::format("etld top: pipeline {} at {}", v.pipeline.empty() ? "?" : v.pipeline, source);
  if (v.generation)
    head += fmt::format("   generation {:.0f}{}", *v.generation,
                        v.last_reload_ok && !*v.last_reload_ok ? " (last reload FAILED)" : "");
  if (v.ready) head += *v.ready ? "   ready" : "   NOT READY";
  head +=
      v.interval_seconds ? fmt::format("   rates over {:.1f}s", *v.interval_seconds) : "   rates: waiting";
  add_line(out, head, width);

  std::size_t w = 5;
  for (const auto& s : v.stages) w = std::max(w, s.name.size());
  w = name_width(w, 6);
  std::size_t tw = 4;
  for (const auto& s : v.stages) tw = std::max(tw, s.type.size());
  add_line(out, "", width);
  add_line(out,
           fmt::format("{:<{}}  {:<{}}  {:>4}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}  {:>7}  {:>7}  {:>8}",
                       "STAGE", w, "TYPE", tw, "INST", "IN/s", "OUT/s", "BUFFERED", "DEMAND", "DEAD",
                       "DEAD/s", "FAILED", "RESTARTS"),
           width);
  for (const auto& s : v.stages)
    add_line(
        out,
        fmt::format("{:<{}}  {:<{}}  {:>4}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}  {:>7}  {:>7}  {:>8}", s.name,
                    w, s.type, tw, s.instances, rate_text(s.in_per_second), rate_text(s.out_per_second),
                    count_text(s.buffered), count_text(s.outstanding_demand), count_text(s.dead_lettered),
                    rate_text(s.dead_lettered_per_second), count_text(s.failed), count_text(s.restarts)),
        width);

  if (!v.partitions.empty()) {
    std::size_t sw = 5, topic_w = 5;
    for (const auto& p : v.partitions) {
      sw = std::max(sw, p.stage.size());
      topic_w = std::max(topic_w, p.topic.size());
    }
    sw = name_width(sw, 5);
    topic_w = name_width(topic_w, 5);
    add_line(out, "", width);
    add_line(out,
             fmt::format("{:<{}}  {:<{}}  {:>4}  {:>10}  {:>9}  {:>9}  {:>8}  {}", "KAFKA", sw, "TOPIC",
                         topic_w, "PART", "LAG", "FETCHED/s", "IN-FLIGHT", "BUFFERED", "STATE"),
             width);
    for (const auto& p : v.partitions) {
      std::string state = p.held ? "held" : p.paused ? "paused" : "";
      add_line(out,
               fmt::format("{:<{}}  {:<{}}  {:>4}  {:>10}  {:>9}  {:>9}  {:>8}  {}", p.stage, sw, p.topic,
                           topic_w, p.partition, optional_count(p.lag), rate_text(p.fetched_per_second),
                           count_text(p.in_flight), count_text(p.buffered), state),
               width);
    }
    add_line(out,
             fmt::format("total lag {} over {} partitions", optional_count(v.total_lag), v.partitions.size()),
             width);
  }

  if (!v.sinks.empty()) {
    std::size_t sw = 8;
    for (const auto& s : v.sinks) sw = std::max(sw, s.stage.size());
    sw = name_width(sw, 8);
    add_line(out, "", width);
    add_line(out,
             fmt::format("{:<{}}  {:>9}  {:>9}  {:>10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>9}  {:>7}  {}",
                         "POSTGRES", sw, "ROWS/s", "BATCHES/s", "ROWS/BATCH", "LATENCY", "P50", "P99",
                         "RETRIES", "RETRIES/s", "DEAD", "CONNECTED"),
             width);
    for (const auto& s : v.sinks)
      add_line(out,
               fmt::format("{:<{}}  {:>9}  {:>9}  {:>10}  {:>9}  {:>9}  {:>9}  {:>7}  {:>9}  {:>7}  {}",
                           s.stage, sw, rate_text(s.rows_per_second), rate_text(s.batches_per_second),
                           rate_text(s.batch_rows), seconds_text(s.batch_seconds),
                           seconds_text(s.batch_seconds_p50), seconds_text(s.batch_seconds_p99),
                           count_text(s.retries), rate_text(s.retries_per_second), count_text(s.dead_letters),
                           s.connected ? "yes" : "NO"),
               width);
  }
  return out;
}

namespace {

Value number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return Value();
  return Value(std::round(*v * 1e6) / 1e6);  // microseconds: batch latencies are below 1ms
}
// Counters and gauges that count things: integers in the JSON.
Value count(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return Value();
  return Value(static_cast<std::int64_t>(std::llround(*v)));
}
Value flag(std::optional<bool> v) { return v ? Value(*v) : Value(); }

}  // namespace

std::string render_json(const TopView& v, const std::string& source) {
  Array stages, partitions, sinks;
  for (const auto& s : v.stages)
    stages.emplace_back(Object{{"name", Value(s.name)},
                               {"type", Value(s.type)},
                               {"instances", Value(s.instances)},
                               {"events_in_per_second", number(s.in_per_second)},
                               {"events_out_per_second", number(s.out_per_second)},
                               {"buffered", count(s.buffered)},
                               {"outstanding_demand", count(s.outstanding_demand)},
                               {"dead_lettered", count(s.dead_lettered)},
                               {"dead_lettered_per_second", number(s.dead_lettered_per_second)},
                               {"failed", count(s.failed)},
                               {"restarts", count(s.restarts)}});
  for (const auto& p : v.partitions)
    partitions.emplace_back(Object{{"stage", Value(p.stage)},
                                   {"topic", Value(p.topic)},
                                   {"partition", Value(static_cast<std::int64_t>(p.partition))},
                                   {"lag", count(p.lag)},
                                   {"fetched_per_second", number(p.fetched_per_second)},
                                   {"in_flight", count(p.in_flight)},
                                   {"buffered", count(p.buffered)},
                                   {"paused", Value(p.paused)},
                                   {"held", Value(p.held)}});
  for (const auto& s : v.sinks)
    sinks.emplace_back(Object{{"stage", Value(s.stage)},
                              {"rows_per_second", number(s.rows_per_second)},
                              {"batches_per_second", number(s.batches_per_second)},
                              {"batch_rows", number(s.batch_rows)},
                              {"batch_seconds", number(s.batch_seconds)},
                              {"batch_seconds_p50", number(s.batch_seconds_p50)},
                              {"batch_seconds_p99", number(s.batch_seconds_p99)},
                              {"rows_written", count(s.rows_written)},
                              {"batches", count(s.batches)},
                              {"retries", count(s.retries)},
                              {"retries_per_second", number(s.retries_per_second)},
                              {"dead_letters", count(s.dead_letters)},
                              {"connected", Value(s.connected)}});
  Object root{{"admin", Value(source)},
              {"pipeline", Value(v.pipeline)},
              {"interval_seconds", number(v.interval_seconds)},
              {"generation", count(v.generation)},
              {"last_reload_ok", flag(v.last_reload_ok)},
              {"ready", flag(v.ready)},
              {"stages", Value(std::move(stages))},
              {"kafka", Value(Object{{"total_lag", count(v.total_lag)},
                                     {"partitions", Value(std::move(partitions))}})},
              {"postgres", Value(std::move(sinks))}};
  return Value(std::move(root)).to_json() + "\n";
}

}  // namespace etld::top
