// Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
// exposition format 0.0.4 by the admin endpoint's /metrics.
//
// Each metric is declared once, as a Metric (name, type, help) that both the series it creates
// and the samples a collector writes use. A stage reaches its metrics through its context's
// MetricsScope (stages/engine/metrics_scope.hpp), which adds the pipeline/stage/instance labels;
// the registry itself belongs to whoever runs pipelines (the daemon keeps one across reloads).
//
// Hot path: a component looks its series up once (Family::with, which takes a lock) and keeps
// the returned shared_ptr; updating it is one relaxed atomic operation, no lock. Series live as
// long as their registry; their number is bounded by the configuration (stages, instances,
// partitions). State a component already keeps can instead be exposed at scrape time through a
// Collector, which writes samples into an Exposition while its owner keeps it.
// Threading: everything here is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace etld::metrics {

using LabelValues = std::vector<std::string>;  // in the order of the family's label names
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { counter, gauge, histogram };

// One metric's declaration: the only place its name, type and help are written.
struct Metric {
  const char* name;
  Type type;
  const char* help;
};

class Counter {
 public:
  void inc(std::uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

struct HistogramSnapshot {
  std::vector<double> bounds;         // upper bounds, ascending; +Inf implied
  std::vector<std::uint64_t> counts;  // per bucket (not cumulative), bounds.size() + 1 of them
  double sum = 0;
  std::uint64_t count = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  HistogramSnapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Bucket bounds: seconds from 100us to 10s; sizes as powers of 4 up to 65536.
const std::vector<double>& latency_buckets();
const std::vector<double>& size_buckets();

// Collects samples for one scrape and renders them grouped by family, each with its HELP and TYPE.
class Exposition {
 public:
  // Declares a family (type: counter, gauge or histogram); a second declaration is ignored.
  void family(const std::string& name, const char* type, const std::string& help);
  void family(const Metric& metric);
  // One sample of a declared family; `suffix` is "" or _bucket/_sum/_count for histograms.
  void sample(const std::string& name, const Labels& labels, double value, const char* suffix = "");
  // One sample of `metric`, declaring its family first if needed.
  void sample(const Metric& metric, const Labels& labels, double value);
  void histogram(const std::string& name, const Labels& labels, const HistogramSnapshot& h);
  std::string render() const;

 private:
  struct Family {
    std::string type, help;
    std::string lines;
  };
  std::map<std::string, Family> families_;
};

template <class T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The series for these label values, created on first use. Keep it: the lookup locks.
  std::shared_ptr<T> with(const LabelValues& values);
  void collect(Exposition& out) const;

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, std::shared_ptr<T>> series_;
};

// Writes samples at scrape time from state its owner keeps.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void collect(Exposition& out) const = 0;
};

class Registry {
 public:
  // Families are created once per name; asking again returns the same one (same type required).
  Family<Counter>& counter(const std::string& name, const std::string& help, std::vector<std::string> labels);
  Family<Gauge>& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels);
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> labels, std::vector<double> bounds);
  // The same for a declared metric; throws std::logic_error if its type is another.
  Family<Counter>& counter(const Metric& metric, std::vector<std::string> labels);
  Family<Gauge>& gauge(const Metric& metric, std::vector<std::string> labels);
  Family<Histogram>& histogram(const Metric& metric, std::vector<std::string> labels,
                               std::vector<double> bounds);

  // Called at every scrape while its owner keeps it.
  void add(const std::shared_ptr<const Collector>& collector);
  // Called at every scrape until the returned handle is destroyed.
  std::shared_ptr<void> add_collector(std::function<void(Exposition&)> collect);
  // The live collectors of type T (a connector reads its own instances' state back, for tests).
  template <class T>
  std::vector<std::shared_ptr<const T>> collectors_of() const {
    std::vector<std::shared_ptr<const T>> out;
    for (auto& c : live_collectors())
      if (auto t = std::dynamic_pointer_cast<const T>(c)) out.push_back(std::move(t));
    return out;
  }

  void collect(Exposition& out) const;

 private:
  std::vector<std::shared_ptr<const Collector>> live_collectors() const;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Family<Counter>>> counters_;
  std::map<std::string, std::shared_ptr<Family<Gauge>>> gauges_;
  std::map<std::string, std::shared_ptr<Family<Histogram>>> histograms_;
  std::vector<std::weak_ptr<const Collector>> collectors_;
};

// Whether a metric or label name is valid in the Prometheus data model.
bool valid_name(const std::string& name, bool label);

}  // namespace etld::metrics
