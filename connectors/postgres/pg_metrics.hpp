// The postgres sink's metrics and readiness, one set per sink instance, from its stage context.
// Threading: updated from the instance's connection thread; read by the admin endpoint.
#pragma once

#include <memory>

#include "stages/engine/metrics_scope.hpp"
#include "stages/engine/readiness.hpp"

namespace etld::pg {

struct SinkMetrics {
  // `probe`: the context's readiness probe for this instance's connection.
  SinkMetrics(const metrics::MetricsScope& scope, ReadinessProbe probe);

  // Connection state: the gauge and the /readyz probe together.
  void set_connected(bool connected);

  std::shared_ptr<metrics::Counter> rows_written, batches, retries, dead_letters, guard_trips, schema_changes,
      schema_refusals;
  std::shared_ptr<metrics::Histogram> batch_rows, batch_seconds;
  std::shared_ptr<metrics::Gauge> connected;
  ReadinessProbe probe;
};

}  // namespace etld::pg
