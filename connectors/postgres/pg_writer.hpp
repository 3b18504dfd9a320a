// Writes batches of encoded rows to PostgreSQL in transactions, the blocking half of the postgres
// sink: COPY for inserts, COPY into a staging table + INSERT ... ON CONFLICT for upserts,
// staged deletes for tombstones, bisection of batches the server rejects for bad data, the
// dead-letter table and topic, reconnects with exponential backoff, and the dead-letter-rate guard.
// With delivery: exactly_once a batch, its dead letters and its partitions' next offsets are one
// transaction, fenced by the epochs of the PgOffsetStore's claims (docs/delivery.md).
// Threading: write() blocks and runs only on the sink's dedicated connection thread; stop() is
// thread-safe and interrupts a backoff wait or a running statement.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/dead_letter_topic.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/pg_metrics.hpp"
#include "connectors/postgres/pg_offset_store.hpp"
#include "stages/event.hpp"

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
};

// One batch on its way through the writer: events and their rows, index for index.
struct WorkBatch {
  Batch events;
  std::vector<Row> rows;
  std::string buf;
  std::string fatal;  // set by the writer: the pipeline must stop (configuration error, guard)
};

struct Stopped {};  // thrown by the writer when stop() interrupted it

class Writer {
 public:
  // `metrics` (optional) must outlive the writer; `offsets`: the store of delivery:
  // exactly_once, else nullptr.
  Writer(std::shared_ptr<const PostgresSinkConfig> cfg, spdlog::logger& log, SinkMetrics* metrics = nullptr,
         std::shared_ptr<PgOffsetStore> offsets = nullptr);
  ~Writer();

  // Connects (retrying transient failures) and prepares tables. Returns "" or the configuration
  // error that must stop the pipeline. Throws Stopped.
  std::string connect();
  // Writes the batch; afterwards every row's status is done, dead_lettered or failed, and
  // `fatal` says whether the pipeline must stop. Retries transient errors until they pass or
  // stop() is called (then throws Stopped, leaving the batch unsettled).
  void write(WorkBatch& b);
  void stop();

 private:
  struct Fatal {
    std::string message;
  };
  void ensure_connected();
  void drop_connection();
  void backoff_wait();
  void rollback_quietly();
  void bisect(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi);
  void write_rows(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi);
  void write_rows_body(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi,
                       bool more_slices = false, bool begin = false);
  void write_exactly_once(WorkBatch& b);
  void bisect_in_transaction(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo,
                             std::size_t hi);
  std::string dead_letter_ratio_exceeded(const WorkBatch& b);
  bool guard_lets_through(WorkBatch& b, const std::string& why);
  void write_dead_letters(WorkBatch& b);
  void write_dead_letter_table(WorkBatch& b);
  void insert_dead_letters(WorkBatch& b);
  void send_dead_letter_topic(WorkBatch& b);
  void ddl(const std::string& sql, const std::string& lock_key);
  bool stopping();

  std::shared_ptr<const PostgresSinkConfig> cfg_;
  spdlog::logger& log_;
  std::unique_ptr<PgConnection> conn_;
  SinkMetrics* metrics_;
  std::shared_ptr<PgOffsetStore> offsets_;
  std::unique_ptr<DeadLetterProducer> dead_letter_producer_;  // created on first use
  std::mutex mu_;  // guards conn_ (swaps) and stopping_ against stop()
  std::condition_variable cv_;
  bool stopping_ = false;
  std::chrono::milliseconds backoff_;
  int failures_ = 0;                                // consecutive transient failures, for log rate limiting
  std::size_t window_total_ = 0, window_dead_ = 0;  // dead-letter guard
};

}  // namespace etld::pg
