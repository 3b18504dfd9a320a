#include "connectors/postgres/pg_metrics.hpp"

#include <utility>

namespace etld::pg {

namespace {

using metrics::Metric;
using metrics::Type;

constexpr Metric kRowsWritten{"etld_postgres_rows_written_total", Type::counter,
                              "Rows committed to the table (inserted, upserted or deleted)."};
constexpr Metric kBatches{"etld_postgres_batches_total", Type::counter,
                          "Batches written (each one or more transactions)."};
constexpr Metric kRetries{
    "etld_postgres_retries_total", Type::counter,
    "Transient failures retried after a backoff (connection lost, serialization, server "
    "shutdown, dead-letter topic unavailable)."};
constexpr Metric kDeadLetters{"etld_postgres_dead_letters_total", Type::counter,
                              "Records written to the dead-letter table or topic instead of the table."};
constexpr Metric kGuardTrips{"etld_postgres_dead_letter_guard_trips_total", Type::counter,
                             "Batches in which more than max_dead_letter_ratio of the records were bad (the "
                             "guard tripped and did what on_dead_letter_ratio says)."};
constexpr Metric kSchemaChanges{
    "etld_postgres_schema_changes_total", Type::counter,
    "Changes made to tables from the records' schemas: tables created (create_table), columns added and "
    "widened (evolve: add_columns); each is also logged."};
constexpr Metric kSchemaRefusals{
    "etld_postgres_schema_refusals_total", Type::counter,
    "Record schemas a table cannot take (a column missing without evolve, a type that cannot be widened "
    "safely, a NOT NULL column the schema has no field for): their records go to the dead letters."};
constexpr Metric kBatchRows{"etld_postgres_batch_rows", Type::histogram, "Rows per batch."};
constexpr Metric kBatchSeconds{"etld_postgres_batch_seconds", Type::histogram,
                               "Time to write one batch, retries and dead letters included."};
constexpr Metric kConnected{"etld_postgres_connected", Type::gauge,
                            "1 while the sink instance has a working connection."};

}  // namespace

SinkMetrics::SinkMetrics(const metrics::MetricsScope& scope, ReadinessProbe probe)
    : rows_written(scope.counter(kRowsWritten)),
      batches(scope.counter(kBatches)),
      retries(scope.counter(kRetries)),
      dead_letters(scope.counter(kDeadLetters)),
      guard_trips(scope.counter(kGuardTrips)),
      schema_changes(scope.counter(kSchemaChanges)),
      schema_refusals(scope.counter(kSchemaRefusals)),
      batch_rows(scope.histogram(kBatchRows, metrics::size_buckets())),
      batch_seconds(scope.histogram(kBatchSeconds, metrics::latency_buckets())),
      connected(scope.gauge(kConnected)),
      probe(std::move(probe)) {
  connected->set(0);
}

void SinkMetrics::set_connected(bool c) {
  connected->set(c ? 1 : 0);
  probe.set(c);
}

}  // namespace etld::pg
