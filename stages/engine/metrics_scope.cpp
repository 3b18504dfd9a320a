#include "stages/engine/metrics_scope.hpp"

#include <utility>

namespace etld::metrics {

MetricsScope::MetricsScope(Registry& registry, const std::string& pipeline, const std::string& stage,
                           int instance)
    : registry_(&registry),
      labels_{{"pipeline", pipeline}, {"stage", stage}, {"instance", std::to_string(instance)}} {}

std::vector<std::string> MetricsScope::names() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : labels_) out.push_back(name);
  return out;
}

LabelValues MetricsScope::values() const {
  LabelValues out;
  for (const auto& [name, value] : labels_) out.push_back(value);
  return out;
}

std::shared_ptr<Counter> MetricsScope::counter(const Metric& metric) const {
  return registry_->counter(metric, names()).with(values());
}

std::shared_ptr<Gauge> MetricsScope::gauge(const Metric& metric) const {
  return registry_->gauge(metric, names()).with(values());
}

std::shared_ptr<Histogram> MetricsScope::histogram(const Metric& metric, std::vector<double> bounds) const {
  return registry_->histogram(metric, names(), std::move(bounds)).with(values());
}

void MetricsScope::add(const std::shared_ptr<const Collector>& collector) const { registry_->add(collector); }

}  // namespace etld::metrics
