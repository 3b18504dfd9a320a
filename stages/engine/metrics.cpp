#include "stages/engine/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace etld::metrics {

namespace {

void append_value(std::string& out, double v) {
  if (std::isnan(v))
    out += "NaN";
  else if (std::isinf(v))
    out += v > 0 ? "+Inf" : "-Inf";
  else
    fmt::format_to(std::back_inserter(out), "{}", v);
}

void append_label_value(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

std::string help_text(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void check_names(const std::string& name, const std::vector<std::string>& labels) {
  if (!valid_name(name, false)) throw std::invalid_argument("invalid metric name '" + name + "'");
  for (const auto& l : labels)
    if (!valid_name(l, true)) throw std::invalid_argument("invalid label name '" + l + "' of " + name);
}

const char* type_name(Type type) {
  switch (type) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
  }
  return "untyped";
}

void check_type(const Metric& metric, Type want) {
  if (metric.type != want)
    throw std::logic_error(
        fmt::format("metric {} is a {}, not a {}", metric.name, type_name(metric.type), type_name(want)));
}

Labels zip(const std::vector<std::string>& names, const LabelValues& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], values[i]);
  return out;
}

}  // namespace

bool valid_name(const std::string& name, bool label) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(label && name.starts_with("__"));
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()))
    throw std::invalid_argument("histogram bounds must be ascending");
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return b;
}

const std::vector<double>& size_buckets() {
  static const std::vector<double> b{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
  return b;
}

void Exposition::family(const std::string& name, const char* type, const std::string& help) {
  families_.try_emplace(name, Family{type, help, {}});
}

void Exposition::family(const Metric& metric) { family(metric.name, type_name(metric.type), metric.help); }

void Exposition::sample(const Metric& metric, const Labels& labels, double value) {
  family(metric);
  sample(metric.name, labels, value);
}

void Exposition::sample(const std::string& name, const Labels& labels, double value, const char* suffix) {
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metric family '" + name + "' sampled before declared");
  std::string& out = it->second.lines;
  out += name;
  out += suffix;
  if (!labels.empty()) {
    out += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out += ',';
      out += labels[i].first;
      out += "=\"";
      append_label_value(out, labels[i].second);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_value(out, value);
  out += '\n';
}

void Exposition::histogram(const std::string& name, const Labels& labels, const HistogramSnapshot& h) {
  auto with_le = labels;
  with_le.emplace_back("le", "");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    std::string le;
    append_value(le, i < h.bounds.size() ? h.bounds[i] : INFINITY);
    with_le.back().second = le;
    sample(name, with_le, static_cast<double>(cumulative), "_bucket");
  }
  sample(name, labels, h.sum, "_sum");
  sample(name, labels, static_cast<double>(h.count), "_count");
}

std::string Exposition::render() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + help_text(f.help) + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    out += f.lines;
  }
  return out;
}

template <class T>
std::shared_ptr<T> Family<T>::with(const LabelValues& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument(
        fmt::format("metric {} takes {} label values, got {}", name_, label_names_.size(), values.size()));
  std::lock_guard lock(mu_);
  auto& slot = series_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>)
      slot = std::make_shared<Histogram>(bounds_);
    else
      slot = std::make_shared<T>();
  }
  return slot;
}

template <class T>
void Family<T>::collect(Exposition& out) const {
  std::lock_guard lock(mu_);
  if constexpr (std::is_same_v<T, Counter>)
    out.family(name_, "counter", help_);
  else if constexpr (std::is_same_v<T, Gauge>)
    out.family(name_, "gauge", help_);
  else
    out.family(name_, "histogram", help_);
  for (const auto& [values, series] : series_) {
    if constexpr (std::is_same_v<T, Histogram>)
      out.histogram(name_, zip(label_names_, values), series->snapshot());
    else
      out.sample(name_, zip(label_names_, values), static_cast<double>(series->value()));
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {
template <class T, class... Extra>
Family<T>& find_or_add(std::map<std::string, std::shared_ptr<Family<T>>>& families, std::mutex& mu,
                       const std::string& name, const std::string& help, std::vector<std::string> labels,
                       Extra&&... extra) {
  check_names(name, labels);
  std::lock_guard lock(mu);
  auto& slot = families[name];
  if (!slot) slot = std::make_shared<Family<T>>(name, help, std::move(labels), std::forward<Extra>(extra)...);
  return *slot;
}
}  // namespace

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels) {
  return find_or_add(counters_, mu_, name, help, std::move(labels));
}
Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels) {
  return find_or_add(gauges_, mu_, name, help, std::move(labels));
}
Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels, std::vector<double> bounds) {
  return find_or_add(histograms_, mu_, name, help, std::move(labels), std::move(bounds));
}

Family<Counter>& Registry::counter(const Metric& metric, std::vector<std::string> labels) {
  check_type(metric, Type::counter);
  return counter(metric.name, metric.help, std::move(labels));
}
Family<Gauge>& Registry::gauge(const Metric& metric, std::vector<std::string> labels) {
  check_type(metric, Type::gauge);
  return gauge(metric.name, metric.help, std::move(labels));
}
Family<Histogram>& Registry::histogram(const Metric& metric, std::vector<std::string> labels,
                                       std::vector<double> bounds) {
  check_type(metric, Type::histogram);
  return histogram(metric.name, metric.help, std::move(labels), std::move(bounds));
}

void Registry::add(const std::shared_ptr<const Collector>& collector) {
  std::lock_guard lock(mu_);
  std::erase_if(collectors_, [](const auto& w) { return w.expired(); });
  collectors_.push_back(collector);
}

std::shared_ptr<void> Registry::add_collector(std::function<void(Exposition&)> collect) {
  struct FunctionCollector : Collector {
    explicit FunctionCollector(std::function<void(Exposition&)> f) : f(std::move(f)) {}
    void collect(Exposition& out) const override { f(out); }
    std::function<void(Exposition&)> f;
  };
  auto handle = std::make_shared<const FunctionCollector>(std::move(collect));
  add(handle);
  return std::const_pointer_cast<FunctionCollector>(handle);
}

std::vector<std::shared_ptr<const Collector>> Registry::live_collectors() const {
  std::vector<std::shared_ptr<const Collector>> out;
  std::lock_guard lock(mu_);
  for (auto& w : collectors_)
    if (auto c = w.lock()) out.push_back(std::move(c));
  return out;
}

void Registry::collect(Exposition& out) const {
  std::vector<std::shared_ptr<Family<Counter>>> counters;
  std::vector<std::shared_ptr<Family<Gauge>>> gauges;
  std::vector<std::shared_ptr<Family<Histogram>>> histograms;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, f] : counters_) counters.push_back(f);
    for (auto& [n, f] : gauges_) gauges.push_back(f);
    for (auto& [n, f] : histograms_) histograms.push_back(f);
  }
  for (auto& f : counters) f->collect(out);
  for (auto& f : gauges) f->collect(out);
  for (auto& f : histograms) f->collect(out);
  for (auto& c : live_collectors()) c->collect(out);
}

}  // namespace etld::metrics
