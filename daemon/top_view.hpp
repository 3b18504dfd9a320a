// What `etld top` shows, computed from scrapes of a running daemon's admin endpoint: per stage
// events in/out per second, buffered events and outstanding demand (the credits), dead letters,
// failures and restarts; Kafka lag and fetch rate per partition and the total lag; per postgres
// sink rows per second, mean batch size and latency over the interval (and the latency's p50 and
// p99, from the histogram's buckets), retries and dead letters;
// the configuration generation. Rates are the increase of the counters between two scrapes
// divided by the time between them (a counter that went down restarted from zero: its increase is
// its new value); with one scrape only, rates are absent.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemon/top_exposition.hpp"

namespace etld::top {

struct StageInfo {
  std::string name, type;
};

// One poll of the admin endpoint.
struct Scrape {
  std::vector<Sample> samples;  // GET /metrics
  std::chrono::steady_clock::time_point at;
  // From GET /pipeline when it answered: the pipeline's name and its stages in start order.
  std::string pipeline;
  std::vector<StageInfo> stages;
};

struct StageRow {
  std::string name, type;
  int instances = 0;
  std::optional<double> in_per_second, out_per_second, dead_lettered_per_second;
  double buffered = 0, outstanding_demand = 0, dead_lettered = 0, failed = 0, restarts = 0;
};

struct PartitionRow {
  std::string stage, topic;
  long partition = 0;
  std::optional<double> lag;  // absent until librdkafka's first statistics
  std::optional<double> fetched_per_second;
  double in_flight = 0, buffered = 0;
  bool paused = false, held = false;
};

struct SinkRow {
  std::string stage;
  std::optional<double> rows_per_second, batches_per_second, retries_per_second;
  // Means over the batches written during the interval; absent when none was.
  std::optional<double> batch_rows, batch_seconds;
  // Batch latency percentiles over the interval, from the histogram's buckets: interpolated
  // inside the bucket as Prometheus' histogram_quantile() does, so as fine as the buckets are.
  std::optional<double> batch_seconds_p50, batch_seconds_p99;
  double rows_written = 0, batches = 0, retries = 0, dead_letters = 0;
  bool connected = false;
};

struct TopView {
  std::string pipeline;
  std::optional<double> interval_seconds;  // between the two scrapes
  std::optional<double> generation;
  std::optional<bool> last_reload_ok, ready;
  std::vector<StageRow> stages;
  std::vector<PartitionRow> partitions;
  std::optional<double> total_lag;  // absent while no partition reports a lag
  std::vector<SinkRow> sinks;
};

// `before` may be null (the first scrape): then every rate is absent.
TopView compute_view(const Scrape* before, const Scrape& after);

// The q-quantile (0 < q < 1) of what cumulative histogram buckets count, given as (upper bound,
// count) sorted by bound, +Inf last: linear inside the bucket that holds it (from 0 for the
// first), the highest finite bound if it is in +Inf's; absent when they count nothing.
std::optional<double> bucket_quantile(double q, const std::vector<std::pair<double, double>>& buckets);

// The screen: lines of at most `width` columns (0: no limit), the header naming `source`.
std::string render_text(const TopView& view, const std::string& source, std::size_t width = 0);
// One JSON object (a line), for scripts; the fields are listed in docs/operations.md.
std::string render_json(const TopView& view, const std::string& source);

}  // namespace etld::top
