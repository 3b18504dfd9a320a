// One kafka source instance's latest stats snapshot, published on its strand and read from any
// thread: the instance registers it through its context's metrics scope, so it is scraped (the
// etld_kafka_* metrics, kafka_metrics.cpp) and read back by kafka_source_stats() while the
// instance keeps it, and by no other pipeline.
// Threading: thread-safe.
#pragma once

#include <mutex>
#include <utility>

#include "connectors/kafka/kafka_source.hpp"
#include "stages/engine/metrics.hpp"

namespace etld::kafka {

class StatsBoard final : public metrics::Collector {
 public:
  // `labels`: the instance's scope labels (pipeline, stage, instance).
  explicit StatsBoard(metrics::Labels labels) : labels_(std::move(labels)) {}

  void publish(KafkaSourceStats s) {
    std::lock_guard lock(mu_);
    stats_ = std::move(s);
  }
  KafkaSourceStats read() const {
    std::lock_guard lock(mu_);
    return stats_;
  }
  void collect(metrics::Exposition& out) const override;  // kafka_metrics.cpp

 private:
  const metrics::Labels labels_;
  mutable std::mutex mu_;
  KafkaSourceStats stats_;
};

}  // namespace etld::kafka
