// A stage instance's metrics, as its context hands them out (StageContext::metrics()): series
// and collectors in the registry of whoever runs the pipeline, already labelled with the
// pipeline, stage and instance, so that a stage names only the Metric it updates.
// Threading: thread-safe, like the registry it writes to.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "stages/engine/metrics.hpp"

namespace etld::metrics {

class MetricsScope {
 public:
  MetricsScope(Registry& registry, const std::string& pipeline, const std::string& stage, int instance);

  // The series of `metric` with this scope's labels, created on first use. Keep it: the lookup
  // locks. An instance rebuilt with the same labels gets the same series back.
  std::shared_ptr<Counter> counter(const Metric& metric) const;
  std::shared_ptr<Gauge> gauge(const Metric& metric) const;
  std::shared_ptr<Histogram> histogram(const Metric& metric, std::vector<double> bounds) const;
  // Scraped while the caller keeps it; it writes its samples with labels() (and its own after).
  void add(const std::shared_ptr<const Collector>& collector) const;

  // pipeline, stage and instance, in that order.
  const Labels& labels() const { return labels_; }

 private:
  std::vector<std::string> names() const;
  LabelValues values() const;

  Registry* registry_;
  Labels labels_;
};

}  // namespace etld::metrics
