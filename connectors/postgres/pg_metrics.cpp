#include "connectors/postgres/pg_metrics.hpp"

namespace etld::pg {

namespace {
const std::vector<std::string> kLabels{"pipeline", "stage", "instance"};
}

SinkMetrics::SinkMetrics(const std::string& pipeline, const std::string& stage, int instance,
                         const std::string& where)
    : probe("postgres sink '" + stage + "' (instance " + std::to_string(instance) +
            "): not connected to PostgreSQL at " + where) {
  auto& r = metrics::registry();
  metrics::LabelValues v{pipeline, stage, std::to_string(instance)};
  rows_written = r.counter("etld_postgres_rows_written_total",
                           "Rows committed to the table (inserted, upserted or deleted).", kLabels)
                     .with(v);
  batches =
      r.counter("etld_postgres_batches_total", "Batches written (each one or more transactions).", kLabels)
          .with(v);
  retries = r.counter("etld_postgres_retries_total",
                      "Transient failures retried after a backoff (connection lost, serialization, server "
                      "shutdown, dead-letter topic unavailable).",
                      kLabels)
                .with(v);
  dead_letters = r.counter("etld_postgres_dead_letters_total",
                           "Records written to the dead-letter table or topic instead of the table.", kLabels)
                     .with(v);
  guard_trips = r.counter("etld_postgres_dead_letter_guard_trips_total",
                          "Batches in which more than max_dead_letter_ratio of the records were bad (the "
                          "guard tripped and did what on_dead_letter_ratio says).",
                          kLabels)
                    .with(v);
  batch_rows =
      r.histogram("etld_postgres_batch_rows", "Rows per batch.", kLabels, metrics::size_buckets()).with(v);
  batch_seconds = r.histogram("etld_postgres_batch_seconds",
                              "Time to write one batch, retries and dead letters included.", kLabels,
                              metrics::latency_buckets())
                      .with(v);
  connected =
      r.gauge("etld_postgres_connected", "1 while the sink instance has a working connection.", kLabels)
          .with(v);
  connected->set(0);
}

void SinkMetrics::set_connected(bool c) {
  connected->set(c ? 1 : 0);
  probe.set(c);
}

}  // namespace etld::pg
