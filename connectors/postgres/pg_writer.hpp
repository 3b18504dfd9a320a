// Writes batches of encoded rows to PostgreSQL in transactions, the blocking half of the postgres
// sink: COPY for inserts, COPY into a staging table + INSERT ... ON CONFLICT for upserts, staged
// deletes for tombstones, and the dead-letter table. Retrying, bisecting rejected batches,
// routing dead letters and the dead-letter ratio guard come from the sink kit (stages/sink/).
// With delivery: exactly_once a batch, its dead letters and its partitions' next offsets are one
// transaction, fenced by the epochs of the PgOffsetStore's claims (docs/delivery.md,
// pg_writer_exactly_once.cpp).
// Threading: write() blocks and runs only on the sink's worker thread; interrupt() is
// thread-safe and cancels a running statement (the StopSignal ends a backoff wait).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/pg_metrics.hpp"
#include "connectors/postgres/pg_offset_store.hpp"
#include "stages/engine/event.hpp"
#include "stages/sink/dead_letter.hpp"
#include "stages/sink/ratio_guard.hpp"
#include "stages/sink/retry.hpp"

namespace etld::pg {

struct Row {
  RowOp op = RowOp::write;
  std::size_t begin = 0, end = 0;        // its COPY text in WorkBatch::buf (empty unless write/del)
  AckStatus status = AckStatus::failed;  // set by the writer
  std::string error;                     // poison: why
  std::string sqlstate;                  // poison rejected by the server: its SQLSTATE
  // exactly_once: not ours to write (a stale assignment, or a partition fenced by another
  // instance): settled done without being written.
  bool dropped = false;
  // exactly_once: an earlier offset of its partition is still on its way; the strand hands the
  // event back for a later batch (it is not settled).
  bool deferred = false;
  // A routed stage (pg_routing.hpp): the table the row goes to (its config lives as long as the
  // sink's router); null: the stage's own table (unrouted: its dead-letter table only).
  const PostgresSinkConfig* table = nullptr;
};

// One batch on its way through the writer: events and their rows, index for index.
struct WorkBatch {
  Batch events;
  std::vector<Row> rows;
  std::string buf;
  std::string fatal;  // set by the writer: the pipeline must stop (configuration error, guard)
};

class Writer {
 public:
  // `metrics` (optional) and `stop` must outlive the writer; `offsets`: the store of delivery:
  // exactly_once, else nullptr; `topic`: the dead-letter topic, else nullptr.
  Writer(std::shared_ptr<const PostgresSinkConfig> cfg, spdlog::logger& log, const sink::StopSignal& stop,
         SinkMetrics* metrics = nullptr, std::shared_ptr<PgOffsetStore> offsets = nullptr,
         std::unique_ptr<sink::DeadLetterDestination> topic = nullptr);
  ~Writer();

  // Connects (retrying transient failures) and prepares tables. Returns "" or the configuration
  // error that must stop the pipeline. Throws sink::Stopped.
  std::string connect();
  // Writes the batch; afterwards every row's status is done, dead_lettered or failed, and
  // `fatal` says whether the pipeline must stop. Retries transient errors until they pass or a
  // stop is requested (then throws sink::Stopped, leaving the batch unsettled).
  void write(WorkBatch& b);
  // Thread-safe: cancels the running statement, so that a stop need not wait for it.
  void interrupt();

 private:
  class DeadLetterTable;  // the dead-letter table as a sink::DeadLetterDestination

  // The rows idx[...] grouped by table, each group in batch order, the groups in order of first row.
  using TableRows = std::vector<std::pair<const PostgresSinkConfig*, std::vector<std::size_t>>>;
  TableRows by_table(const WorkBatch& b, const std::vector<std::size_t>& idx) const;
  const PostgresSinkConfig& table_of(const Row& r) const { return r.table ? *r.table : *cfg_; }
  // A routed table's DDL (create_table, its dead-letter table) and staging table, on this connection.
  void prepare(const PostgresSinkConfig& t);
  void prepare_new_tables(const WorkBatch& b);
  // A (table, record schema) config (schema_columns.hpp): its table created, evolved or refused.
  void prepare_for_schema(const PostgresSinkConfig& t);
  // Rows whose (table, schema) the table refused become poison with the reason.
  void poison_refused(WorkBatch& b) const;

  void ensure_connected();
  void connect_once();
  void drop_connection();
  void rollback_quietly();
  void write_slices(WorkBatch& b, const std::vector<std::size_t>& idx);
  void write_rows(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi);
  void write_rows_body(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi,
                       bool more_slices = false, bool begin = false);
  void merge_staged();
  void write_exactly_once(WorkBatch& b);
  void bisect_in_transaction(WorkBatch& b, const std::vector<std::size_t>& idx);
  bool guard_lets_through(WorkBatch& b);
  std::vector<sink::DeadLetter> poison_letters(const WorkBatch& b) const;
  void write_dead_letters(WorkBatch& b);
  void insert_dead_letters(const std::vector<sink::DeadLetter>& letters);
  void ddl(const std::string& sql, const std::string& lock_key);
  void count_transient(const PgError& e);

  std::shared_ptr<const PostgresSinkConfig> cfg_;
  const PostgresSinkConfig* cur_;              // the table being written: cfg_, or a routed table's
  const WorkBatch* batch_ = nullptr;           // the batch being written: the tables of its dead letters
  std::set<const PostgresSinkConfig*> known_;  // routed tables seen: prepared on every connection
  // (table, schema) configs whose table cannot take their records, with the reason; prepared
  // again on a new connection (the table may have been fixed meanwhile).
  std::map<const PostgresSinkConfig*, std::string> refused_;
  spdlog::logger& log_;
  const sink::StopSignal& stop_;
  std::unique_ptr<PgConnection> conn_;
  SinkMetrics* metrics_;
  std::shared_ptr<PgOffsetStore> offsets_;
  std::unique_ptr<sink::DeadLetterDestination> topic_, table_;
  std::mutex mu_;  // guards conn_ (swaps) against interrupt()
  sink::Backoff backoff_;
  sink::DeadLetterRatioGuard guard_;
  int failures_ = 0;  // consecutive transient failures, for log rate limiting
};

}  // namespace etld::pg
