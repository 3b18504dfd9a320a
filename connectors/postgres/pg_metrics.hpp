// The postgres sink's metrics and readiness, one set per sink instance.
// Threading: updated from the instance's connection thread; read by the admin endpoint.
#pragma once

#include <memory>
#include <string>

#include "stages/engine/metrics.hpp"
#include "stages/engine/readiness.hpp"

namespace etld::pg {

struct SinkMetrics {
  SinkMetrics(const std::string& pipeline, const std::string& stage, int instance, const std::string& where);

  // Connection state: the gauge and the /readyz probe together.
  void set_connected(bool connected);

  std::shared_ptr<metrics::Counter> rows_written, batches, retries, dead_letters, guard_trips;
  std::shared_ptr<metrics::Histogram> batch_rows, batch_seconds;
  std::shared_ptr<metrics::Gauge> connected;
  ReadinessProbe probe;
};

}  // namespace etld::pg
