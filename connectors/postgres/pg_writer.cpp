#include "connectors/postgres/pg_writer.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace etld::pg {

Writer::Writer(std::shared_ptr<const PostgresSinkConfig> cfg, spdlog::logger& log, SinkMetrics* metrics)
    : cfg_(std::move(cfg)), log_(log), metrics_(metrics), backoff_(cfg_->initial_backoff) {}

Writer::~Writer() = default;

void Writer::stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  if (conn_) conn_->cancel();
  cv_.notify_all();
}

bool Writer::stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

void Writer::drop_connection() {
  std::unique_ptr<PgConnection> old;
  {
    std::lock_guard lock(mu_);
    old = std::move(conn_);
  }
  if (metrics_) metrics_->set_connected(false);
}

void Writer::backoff_wait() {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, backoff_, [&] { return stopping_; });
  if (stopping_) throw Stopped{};
  backoff_ = std::min(cfg_->max_backoff, backoff_ * 2);
}

void Writer::rollback_quietly() {
  if (!conn_ || !conn_->ok()) return;
  if (PQtransactionStatus(conn_->raw()) == PQTRANS_IDLE) return;
  PGresult* r = PQexec(conn_->raw(), "ROLLBACK");
  if (r) PQclear(r);
}

// DDL that several instances (concurrency: N) may run at once: serialised by an advisory lock,
// else concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique index.
void Writer::ddl(const std::string& sql) {
  conn_->exec("BEGIN");
  conn_->exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", {cfg_->lock_key});
  conn_->exec(sql);
  conn_->exec("COMMIT");
}

void Writer::ensure_connected() {
  while (!conn_ || !conn_->ok()) {
    if (stopping()) throw Stopped{};
    drop_connection();
    try {
      auto c = std::make_unique<PgConnection>(cfg_->dsn);
      {
        std::lock_guard lock(mu_);
        conn_ = std::move(c);
        if (stopping_) throw Stopped{};
      }
      conn_->exec("SET TimeZone = 'UTC'");
      conn_->exec_params("SELECT set_config('application_name', $1, false)",
                         {fmt::format("etld/{}/{}", cfg_->pipeline, cfg_->stage).substr(0, 63)});
      if (cfg_->create_table) ddl(cfg_->create_table_sql);
      if (cfg_->on_poison == PoisonPolicy::dead_letter && cfg_->dead_letter_table)
        ddl(cfg_->create_dead_letter_sql);
      if (cfg_->uses_stage) conn_->exec(cfg_->create_stage_sql);
      if (failures_ > 0)
        log_.info("connected to PostgreSQL ({}) after {} failed attempt(s)", cfg_->dsn_redacted, failures_);
      else
        log_.debug("connected to PostgreSQL ({})", cfg_->dsn_redacted);
      failures_ = 0;
      backoff_ = cfg_->initial_backoff;
      if (metrics_) metrics_->set_connected(true);
    } catch (const PgError& e) {
      rollback_quietly();
      if (e.error_class() != ErrorClass::transient)
        throw Fatal{
            fmt::format("preparing the connection to PostgreSQL ({}) for table {} failed: {} (SQLSTATE {})",
                        cfg_->dsn_redacted, cfg_->display, e.what(), e.sqlstate)};
      ++failures_;
      if (metrics_) metrics_->retries->inc();
      log_.warn("PostgreSQL unavailable ({}): {}; retrying in {} ms", cfg_->dsn_redacted, e.what(),
                backoff_.count());
      drop_connection();
      backoff_wait();
    }
  }
}

std::string Writer::connect() {
  try {
    ensure_connected();
  } catch (const Fatal& f) {
    return f.message;
  }
  return {};
}

void Writer::write_rows(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi) {
  auto slice = [&](std::size_t a, std::size_t z) {  // rows idx[a..z) are contiguous in buf
    std::size_t from = b.rows[idx[a]].begin, to = b.rows[idx[z - 1]].end;
    return std::string_view(b.buf).substr(from, to - from);
  };
  conn_->exec("BEGIN");
  if (cfg_->mode == Mode::insert) {
    // Runs of inserts go straight to the table; runs of deletes through the staging table.
    std::size_t a = lo;
    while (a < hi) {
      RowOp op = b.rows[idx[a]].op;
      std::size_t z = a + 1;
      while (z < hi && b.rows[idx[z]].op == op) ++z;
      if (op == RowOp::write) {
        conn_->copy_in(cfg_->copy_target_sql, slice(a, z));
      } else {
        conn_->copy_in(cfg_->copy_stage_sql, slice(a, z));
        conn_->exec(cfg_->delete_sql);
        conn_->exec(cfg_->clear_stage_sql);
      }
      a = z;
    }
  } else {
    bool has_del = false, has_write = false;
    for (std::size_t i = lo; i < hi; ++i) (b.rows[idx[i]].op == RowOp::del ? has_del : has_write) = true;
    conn_->copy_in(cfg_->copy_stage_sql, slice(lo, hi));
    if (has_del) conn_->exec(cfg_->delete_sql);
    if (has_write) conn_->exec(has_del ? cfg_->upsert_after_delete_sql : cfg_->upsert_sql);
  }
  conn_->exec("COMMIT");
}

void Writer::bisect(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi) {
  if (lo >= hi) return;
  for (;;) {
    ensure_connected();
    try {
      write_rows(b, idx, lo, hi);
      for (std::size_t i = lo; i < hi; ++i) b.rows[idx[i]].status = AckStatus::done;
      if (metrics_) metrics_->rows_written->inc(hi - lo);
      backoff_ = cfg_->initial_backoff;
      return;
    } catch (const PgError& e) {
      rollback_quietly();
      switch (e.error_class()) {
        case ErrorClass::transient: {
          if (stopping()) throw Stopped{};
          ++failures_;
          if (metrics_) metrics_->retries->inc();
          log_.warn("writing to {} failed transiently: {}{}; retrying {} row(s) in {} ms", cfg_->display,
                    e.what(), e.sqlstate.empty() ? "" : " (SQLSTATE " + e.sqlstate + ")", hi - lo,
                    backoff_.count());
          const std::string cls = e.sqlstate.substr(0, 2);
          if (e.connection_lost || cls == "08" || cls == "57") drop_connection();
          backoff_wait();
          continue;
        }
        case ErrorClass::data: {
          if (hi - lo == 1) {
            Row& r = b.rows[idx[lo]];
            r.op = RowOp::poison;
            r.error = e.what();
            r.sqlstate = e.sqlstate;
            return;
          }
          std::size_t mid = lo + (hi - lo) / 2;
          bisect(b, idx, lo, mid);
          bisect(b, idx, mid, hi);
          return;
        }
        case ErrorClass::config:
          throw Fatal{
              fmt::format("PostgreSQL rejected the writes to {}: {} (SQLSTATE {}): the configuration or the "
                          "table is wrong",
                          cfg_->display, e.what(), e.sqlstate)};
      }
    }
  }
}

namespace {
std::optional<std::string> opt(bool present, std::string v) {
  return present ? std::optional<std::string>(std::move(v)) : std::nullopt;
}
}  // namespace

// Kafka first, then the table: a batch whose table write fails after its topic write is not
// sent to the topic again while retrying here (a restart may send it again: at least once).
void Writer::write_dead_letters(WorkBatch& b) {
  if (!cfg_->dead_letter_topic.empty()) send_dead_letter_topic(b);
  if (cfg_->dead_letter_table) write_dead_letter_table(b);
}

// Blocks until the broker confirmed every dead letter (acks=all); a failure is transient: back
// off and send them again until they are delivered or stop() is called.
void Writer::send_dead_letter_topic(WorkBatch& b) {
  std::vector<DeadLetter> letters;
  for (std::size_t i = 0; i < b.rows.size(); ++i)
    if (b.rows[i].op == RowOp::poison) letters.push_back({&b.events[i], b.rows[i].error, b.rows[i].sqlstate});
  for (;;) {
    if (stopping()) throw Stopped{};
    std::optional<std::string> error;
    try {
      if (!dead_letter_producer_)
        dead_letter_producer_ = std::make_unique<DeadLetterProducer>(
            cfg_->dead_letter_brokers, cfg_->dead_letter_topic, cfg_->dead_letter_librdkafka, cfg_->pipeline,
            cfg_->stage, log_);
      error = dead_letter_producer_->send(letters, std::chrono::seconds(15), [this] { return stopping(); });
    } catch (const std::runtime_error& e) {
      throw Fatal{fmt::format("cannot create the producer for the dead-letter topic {}: {}",
                              cfg_->dead_letter_topic, e.what())};
    }
    if (!error) throw Stopped{};
    if (error->empty()) {
      backoff_ = cfg_->initial_backoff;
      return;
    }
    if (metrics_) metrics_->retries->inc();
    log_.warn("writing {} dead letter(s) to topic {} (brokers {}) failed transiently: {}; retrying in {} ms",
              letters.size(), cfg_->dead_letter_topic, cfg_->dead_letter_brokers, *error, backoff_.count());
    backoff_wait();
  }
}

void Writer::write_dead_letter_table(WorkBatch& b) {
  for (;;) {
    ensure_connected();
    try {
      conn_->exec("BEGIN");
      for (std::size_t i = 0; i < b.rows.size(); ++i) {
        const Row& r = b.rows[i];
        if (r.op != RowOp::poison) continue;
        const Event& e = b.events[i];
        std::optional<std::string> headers;
        if (!e.headers.empty()) {
          Object o;
          for (const auto& h : e.headers)
            o.emplace_back(sanitize_utf8(h.name), Value(sanitize_utf8(h.value)));
          headers = Value(std::move(o)).to_json();
        }
        conn_->exec_params(
            cfg_->insert_dead_letter_sql,
            {cfg_->pipeline, cfg_->stage, opt(!e.topic.empty(), sanitize_utf8(e.topic)),
             opt(e.partition >= 0, std::to_string(e.partition)), opt(e.offset >= 0, std::to_string(e.offset)),
             opt(e.has_key, e.key), opt(e.has_value, e.value), headers, sanitize_utf8(r.error),
             opt(!r.sqlstate.empty(), r.sqlstate)},
            {false, false, false, false, false, true, true, false, false, false});
      }
      conn_->exec("COMMIT");
      return;
    } catch (const PgError& e) {
      rollback_quietly();
      if (e.error_class() != ErrorClass::transient)
        throw Fatal{fmt::format("cannot write to the dead-letter table {}: {} (SQLSTATE {})",
                                cfg_->dead_letter_display, e.what(), e.sqlstate)};
      if (stopping()) throw Stopped{};
      if (metrics_) metrics_->retries->inc();
      log_.warn("writing dead letters to {} failed transiently: {}; retrying in {} ms",
                cfg_->dead_letter_display, e.what(), backoff_.count());
      if (e.connection_lost) drop_connection();
      backoff_wait();
    }
  }
}

void Writer::write(WorkBatch& b) {
  // Counted on every way out: a batch that failed took time too.
  struct Observe {
    SinkMetrics* m;
    std::size_t rows;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    ~Observe() {
      if (!m) return;
      m->batches->inc();
      m->batch_rows->observe(static_cast<double>(rows));
      m->batch_seconds->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } observe{metrics_, b.rows.size()};
  std::vector<std::size_t> idx;
  idx.reserve(b.rows.size());
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    Row& r = b.rows[i];
    if (r.op == RowOp::write || r.op == RowOp::del) idx.push_back(i);
    if (r.op == RowOp::skip) r.status = AckStatus::done;
  }
  try {
    bisect(b, idx, 0, idx.size());
  } catch (const Fatal& f) {
    b.fatal = f.message;  // rows not committed stay failed
    return;
  }

  std::size_t dead = 0;
  const std::string* first_error = nullptr;
  for (const auto& r : b.rows)
    if (r.op == RowOp::poison) {
      ++dead;
      if (!first_error) first_error = &r.error;
    }
  if (dead == 0 || cfg_->on_poison != PoisonPolicy::dead_letter) {
    window_total_ += b.rows.size();
    return;  // poison rows stay failed: the source pauses the partition or stops
  }

  // The guard: a high dead-letter rate means the mapping or the table is wrong; then the rows
  // are not dead-lettered but failed, so that a fixed configuration can replay them.
  const double ratio = cfg_->max_dead_letter_ratio;
  bool trip = b.rows.size() >= 100 && static_cast<double>(dead) > ratio * static_cast<double>(b.rows.size());
  window_total_ += b.rows.size();
  window_dead_ += dead;
  std::size_t wt = window_total_, wd = window_dead_;
  if (window_total_ >= 1000) {
    trip = trip || static_cast<double>(window_dead_) > ratio * static_cast<double>(window_total_);
    window_total_ = window_dead_ = 0;
  }
  if (trip && ratio < 1.0) {
    b.fatal = fmt::format(
        "{} of {} records in a batch ({} of the last {}) could not be written to {}, more than "
        "max_dead_letter_ratio "
        "{}: the configuration is probably wrong; first error: {}",
        dead, b.rows.size(), wd, wt, cfg_->display, ratio, first_error ? *first_error : "");
    return;
  }
  try {
    write_dead_letters(b);
  } catch (const Fatal& f) {
    b.fatal = f.message;
    return;
  }
  for (auto& r : b.rows)
    if (r.op == RowOp::poison) r.status = AckStatus::dead_lettered;
  if (metrics_) metrics_->dead_letters->inc(dead);
}

}  // namespace etld::pg
