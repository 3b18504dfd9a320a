#include "daemon/top_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>

namespace etld::top {

namespace {

// A series' identity: its name and every label, as the exposition writes them.
std::string series_key(const Sample& s) {
  std::string key = s.name;
  for (const auto& [k, v] : s.labels) {
    key += '\x1f';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

class Scrapes {
 public:
  Scrapes(const Scrape* before, const Scrape& after) : after_(after) {
    if (!before) return;
    have_before_ = true;
    for (const auto& s : before->samples) before_.emplace(series_key(s), s.value);
    interval_ = std::chrono::duration<double>(after.at - before->at).count();
  }

  std::optional<double> interval() const {
    if (!have_before_ || interval_ <= 0) return std::nullopt;
    return interval_;
  }

  // The sum of the samples named `name` whose labels include every pair of `match`.
  template <class Match>
  double sum(std::string_view name, const Match& match) const {
    double total = 0;
    for (const auto& s : after_.samples)
      if (s.name == name && match(s)) total += s.value;
    return total;
  }
  template <class Match>
  bool any(std::string_view name, const Match& match) const {
    return std::any_of(after_.samples.begin(), after_.samples.end(),
                       [&](const Sample& s) { return s.name == name && match(s); });
  }

  // How much the matching counters grew between the scrapes; absent with one scrape.
  template <class Match>
  std::optional<double> increase(std::string_view name, const Match& match) const {
    if (!interval()) return std::nullopt;
    double total = 0;
    for (const auto& s : after_.samples) {
      if (s.name != name || !match(s)) continue;
      auto it = before_.find(series_key(s));
      // A series that is new, or went down (its instance restarted), counts from zero.
      double base = it == before_.end() || it->second > s.value ? 0 : it->second;
      total += s.value - base;
    }
    return total;
  }
  template <class Match>
  std::optional<double> rate(std::string_view name, const Match& match) const {
    auto inc = increase(name, match);
    if (!inc) return std::nullopt;
    return *inc / *interval();
  }

  const Scrape& after() const { return after_; }

 private:
  const Scrape& after_;
  bool have_before_ = false;
  double interval_ = 0;
  std::unordered_map<std::string, double> before_;
};

auto of_stage(const std::string& stage) {
  return [stage](const Sample& s) { return s.label("stage") == stage; };
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

// The stages in start order (from /pipeline), then any other the metrics name, in their order.
std::vector<StageInfo> stage_list(const Scrape& s) {
  std::vector<StageInfo> out = s.stages;
  std::set<std::string> seen;
  for (const auto& st : out) seen.insert(st.name);
  for (const auto& sample : s.samples)
    if (sample.name == "etld_stage_events_in_total" && seen.insert(sample.label("stage")).second)
      out.push_back({sample.label("stage"), ""});
  return out;
}

// The increase over the interval of each bucket of histogram `name` (its _bucket series) for
// `match`, summed over the instances, by upper bound (+Inf last); empty with one scrape.
template <class Match>
std::vector<std::pair<double, double>> bucket_increases(const Scrapes& m, const std::string& name,
                                                        const Match& match) {
  std::vector<std::pair<double, double>> out;
  if (!m.interval()) return out;
  const std::string bucket = name + "_bucket";
  std::set<std::string> bounds;
  for (const auto& s : m.after().samples)
    if (s.name == bucket && match(s)) bounds.insert(s.label("le"));
  for (const auto& le : bounds) {
    auto of_bound = [&](const Sample& s) { return match(s) && s.label("le") == le; };
    out.emplace_back(std::strtod(le.c_str(), nullptr), m.increase(bucket, of_bound).value_or(0));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::optional<double> bucket_quantile(double q, const std::vector<std::pair<double, double>>& buckets) {
  if (buckets.empty() || buckets.back().second <= 0) return std::nullopt;
  const double rank = q * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank && count > below) {
      if (std::isinf(bound)) return lower;  // past the highest finite bound: that is all we know
      return lower + (bound - lower) * (rank - below) / (count - below);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

TopView compute_view(const Scrape* before, const Scrape& after) {
  Scrapes m(before, after);
  TopView view;
  view.interval_seconds = m.interval();
  view.pipeline = after.pipeline;
  for (const auto& s : after.samples) {
    if (view.pipeline.empty() && s.name == "etld_pipeline_ready") view.pipeline = s.label("pipeline");
    if (s.name == "etld_config_generation") view.generation = s.value;
    if (s.name == "etld_last_reload_success") view.last_reload_ok = s.value == 1;
    if (s.name == "etld_pipeline_ready") view.ready = s.value == 1;
  }

  for (const auto& info : stage_list(after)) {
    auto is = of_stage(info.name);
    StageRow row{info.name, info.type};
    std::set<std::string> instances;
    for (const auto& s : after.samples)
      if (s.name == "etld_stage_events_in_total" && is(s)) instances.insert(s.label("instance"));
    row.instances = static_cast<int>(instances.size());
    row.in_per_second = m.rate("etld_stage_events_in_total", is);
    row.out_per_second = m.rate("etld_stage_events_out_total", is);
    row.dead_lettered_per_second = m.rate("etld_stage_events_dead_lettered_total", is);
    row.buffered = m.sum("etld_stage_buffered_events", is);
    row.outstanding_demand = m.sum("etld_stage_outstanding_demand", is);
    row.dead_lettered = m.sum("etld_stage_events_dead_lettered_total", is);
    row.failed = m.sum("etld_stage_events_failed_total", is);
    row.restarts = m.sum("etld_stage_restarts_total", is);
    view.stages.push_back(std::move(row));
  }

  for (const auto& s : after.samples) {
    if (s.name != "etld_kafka_partition_fetched_total") continue;
    auto same = [&](const Sample& o) {
      return o.label("stage") == s.label("stage") && o.label("instance") == s.label("instance") &&
             o.label("topic") == s.label("topic") && o.label("partition") == s.label("partition");
    };
    PartitionRow row{s.label("stage"), s.label("topic")};
    row.partition = std::strtol(s.label("partition").c_str(), nullptr, 10);
    if (m.any("etld_kafka_consumer_lag", same)) row.lag = m.sum("etld_kafka_consumer_lag", same);
    row.fetched_per_second = m.rate("etld_kafka_partition_fetched_total", same);
    row.in_flight = m.sum("etld_kafka_partition_in_flight", same);
    row.buffered = m.sum("etld_kafka_partition_buffered", same);
    row.paused = m.sum("etld_kafka_partition_paused", same) > 0;
    row.held = m.sum("etld_kafka_partition_held", same) > 0;
    if (row.lag) view.total_lag = view.total_lag.value_or(0) + *row.lag;
    view.partitions.push_back(std::move(row));
  }
  std::stable_sort(view.partitions.begin(), view.partitions.end(), [](const auto& a, const auto& b) {
    return std::tie(a.stage, a.topic, a.partition) < std::tie(b.stage, b.topic, b.partition);
  });

  for (const auto& info : stage_list(after)) {
    auto is = of_stage(info.name);
    if (!m.any("etld_postgres_batches_total", is)) continue;
    SinkRow row{info.name};
    row.rows_per_second = m.rate("etld_postgres_rows_written_total", is);
    row.batches_per_second = m.rate("etld_postgres_batches_total", is);
    row.retries_per_second = m.rate("etld_postgres_retries_total", is);
    auto batches = m.increase("etld_postgres_batch_rows_count", is);
    row.batch_rows = ratio(m.increase("etld_postgres_batch_rows_sum", is), batches);
    row.batch_seconds = ratio(m.increase("etld_postgres_batch_seconds_sum", is),
                              m.increase("etld_postgres_batch_seconds_count", is));
    auto latency = bucket_increases(m, "etld_postgres_batch_seconds", is);
    row.batch_seconds_p50 = bucket_quantile(0.5, latency);
    row.batch_seconds_p99 = bucket_quantile(0.99, latency);
    row.rows_written = m.sum("etld_postgres_rows_written_total", is);
    row.batches = m.sum("etld_postgres_batches_total", is);
    row.retries = m.sum("etld_postgres_retries_total", is);
    row.dead_letters = m.sum("etld_postgres_dead_letters_total", is);
    // Connected when every instance is.
    row.connected = m.any("etld_postgres_connected", is) &&
                    !m.any("etld_postgres_connected", [&](const Sample& s) { return is(s) && s.value != 1; });
    view.sinks.push_back(std::move(row));
  }
  return view;
}

}  // namespace etld::top
