#include "connectors/postgres/pg_writer.hpp"

#include <algorithm>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "config/schema/printable.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/postgres/pg_writer_detail.hpp"
#include "connectors/postgres/schema_evolution.hpp"
#include "stages/engine/stage.hpp"
#include "stages/sink/bisect.hpp"

namespace etld::pg {

namespace {

// Whether rows are written to the config's table: not a routed stage's own (it holds the dead
// letters of records no table takes) nor a table whose columns come from each record's schema
// (the config made for each schema writes, schema_columns.hpp).
bool writes_rows(const PostgresSinkConfig& t) { return !t.routing && (!t.schema_columns || t.row_schema); }

std::optional<std::string> opt(bool present, std::string v) {
  return present ? std::optional<std::string>(std::move(v)) : std::nullopt;
}

// A dead letter's reason as written to the table or topic: remembered secrets masked (a server
// message may quote what it was given), control characters escaped and at most 1 KiB, whatever
// the record held (the record itself is kept whole in the value).
std::string dead_letter_reason(const std::string& error) { return printable(redact_secrets(error), 1024); }

}  // namespace

sink::Failure pg_failure(const PgError& e) {
  switch (e.error_class()) {
    case ErrorClass::transient: return sink::Failure::transient;
    case ErrorClass::data: return sink::Failure::bad_data;
    case ErrorClass::config: return sink::Failure::fatal;
  }
  return sink::Failure::fatal;
}

void mark_poison(Row& r, const PgError& e) {
  r.op = RowOp::poison;
  r.error = e.what();
  r.sqlstate = e.sqlstate;
}

// The dead-letter table: each batch's letters in a transaction of their own (with delivery:
// exactly_once they join the rows' transaction instead, see insert_dead_letters).
class Writer::DeadLetterTable final : public sink::DeadLetterDestination {
 public:
  explicit DeadLetterTable(Writer& w) : w_(w) {}
  std::string describe() const override {
    return w_.cfg_->routing ? std::string("the dead-letter tables") : "table " + w_.cfg_->dead_letter_display;
  }
  std::string write(const std::vector<sink::DeadLetter>& letters, const sink::StopSignal&) override {
    w_.ensure_connected();
    try {
      w_.conn_->exec("BEGIN");
      w_.insert_dead_letters(letters);
      w_.conn_->exec("COMMIT");
      return {};
    } catch (const PgError& e) {
      w_.rollback_quietly();
      if (e.error_class() != ErrorClass::transient)
        throw FatalStageError(fmt::format("cannot write to the dead-letter table {}: {} (SQLSTATE {})",
                                          w_.cfg_->dead_letter_display, e.what(), e.sqlstate));
      if (e.connection_lost) w_.drop_connection();
      return e.what();
    }
  }

 private:
  Writer& w_;
};

Writer::Writer(std::shared_ptr<const PostgresSinkConfig> cfg, spdlog::logger& log,
               const sink::StopSignal& stop, SinkMetrics* metrics, std::shared_ptr<PgOffsetStore> offsets,
               std::unique_ptr<sink::DeadLetterDestination> topic)
    : cfg_(std::move(cfg)),
      cur_(cfg_.get()),
      log_(log),
      stop_(stop),
      metrics_(metrics),
      offsets_(std::move(offsets)),
      topic_(std::move(topic)),
      table_(cfg_->dead_letter_table ? std::make_unique<DeadLetterTable>(*this) : nullptr),
      backoff_(cfg_->initial_backoff, cfg_->max_backoff),
      guard_(cfg_->max_dead_letter_ratio, cfg_->on_dead_letter_ratio) {}

Writer::~Writer() = default;

void Writer::interrupt() {
  std::lock_guard lock(mu_);
  if (conn_) conn_->cancel();
}

void Writer::drop_connection() {
  std::unique_ptr<PgConnection> old;
  {
    std::lock_guard lock(mu_);
    old = std::move(conn_);
  }
  if (metrics_) metrics_->set_connected(false);
}

void Writer::rollback_quietly() {
  if (!conn_ || !conn_->ok()) return;
  if (PQtransactionStatus(conn_->raw()) == PQTRANS_IDLE) return;
  PGresult* r = PQexec(conn_->raw(), "ROLLBACK");
  if (r) PQclear(r);
}

void Writer::count_transient(const PgError& e) {
  ++failures_;
  if (metrics_) metrics_->retries->inc();
  const std::string cls = e.sqlstate.substr(0, 2);
  if (e.connection_lost || cls == "08" || cls == "57") drop_connection();
}

// DDL that several instances (concurrency: N) may run at once: serialised by an advisory lock,
// else concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique index.
void Writer::ddl(const std::string& sql, const std::string& lock_key) {
  conn_->exec("BEGIN");
  conn_->exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", {lock_key});
  conn_->exec(sql);
  conn_->exec("COMMIT");
}

void Writer::connect_once() {
  drop_connection();
  try {
    auto c = std::make_unique<PgConnection>(cfg_->dsn);
    {
      std::lock_guard lock(mu_);
      conn_ = std::move(c);
    }
    stop_.throw_if_stopping();  // a stop that came before conn_ was there to interrupt
    conn_->exec("SET TimeZone = 'UTC'");
    conn_->exec_params("SELECT set_config('application_name', $1, false)",
                       {fmt::format("etld/{}/{}", cfg_->pipeline, cfg_->stage).substr(0, 63)});
    if (cfg_->create_table && writes_rows(*cfg_)) ddl(cfg_->create_table_sql, cfg_->lock_key);
    if (cfg_->on_poison == PoisonPolicy::dead_letter && cfg_->dead_letter_table)
      ddl(cfg_->create_dead_letter_sql, cfg_->lock_key);
    if (cfg_->exactly_once) ddl(cfg_->create_offsets_sql, cfg_->offsets_lock_key);
    if (cfg_->uses_stage && writes_rows(*cfg_)) conn_->exec(cfg_->create_stage_sql);
    for (const PostgresSinkConfig* t : known_) prepare(*t);  // temporary staging tables died with the old one
  } catch (const PgError& e) {
    rollback_quietly();
    if (e.error_class() != ErrorClass::transient)
      throw FatalStageError(
          fmt::format("preparing the connection to PostgreSQL ({}) for table {} failed: {} (SQLSTATE {})",
                      cfg_->dsn_redacted, cfg_->display, e.what(), e.sqlstate));
    throw;
  }
  if (failures_ > 0)
    log_.info("connected to PostgreSQL ({}) after {} failed attempt(s)", cfg_->dsn_redacted, failures_);
  else
    log_.debug("connected to PostgreSQL ({})", cfg_->dsn_redacted);
  failures_ = 0;
  if (metrics_) metrics_->set_connected(true);
}

void Writer::prepare(const PostgresSinkConfig& t) {
  if (t.row_schema)
    prepare_for_schema(t);
  else if (t.create_table && writes_rows(t))
    ddl(t.create_table_sql, t.lock_key);
  if (t.on_poison == PoisonPolicy::dead_letter && t.dead_letter_table &&
      t.dead_letter_qualified != cfg_->dead_letter_qualified)
    ddl(t.create_dead_letter_sql, t.lock_key);
  if (t.uses_stage && writes_rows(t) && !refused_.count(&t)) conn_->exec(t.create_stage_sql);
}

void Writer::prepare_for_schema(const PostgresSinkConfig& t) {
  SchemaReadiness ready;
  try {
    ready = ready_table_for_schema(*conn_, t);
  } catch (const PgError& e) {
    if (e.error_class() == ErrorClass::transient) throw;
    // Not allowed to change the table, or PostgreSQL refused the change: this schema's records
    // are dead letters with the reason, the other tables and schemas go on.
    ready.refusal =
        fmt::format("changing it for the records' schema failed: {} (SQLSTATE {})", e.what(), e.sqlstate);
  }
  // Names in these lines may come from the records (a JSON field, a Debezium source table):
  // escaped, so that a name cannot forge a log line.
  for (const std::string& change : ready.changes) {
    log_.info("table {}: {}", printable(t.display, 200), printable(change, 1024));
    if (metrics_) metrics_->schema_changes->inc();
  }
  if (ready.refusal.empty()) {
    refused_.erase(&t);
    return;
  }
  if (refused_.emplace(&t, ready.refusal).second) {
    log_.warn("table {} cannot take the records of a schema: {}; they go to the dead letters",
              printable(t.display, 200), dead_letter_reason(ready.refusal));
    if (metrics_) metrics_->schema_refusals->inc();
  }
}

void Writer::poison_refused(WorkBatch& b) const {
  if (refused_.empty()) return;
  for (Row& r : b.rows) {
    if (!r.table || (r.op != RowOp::write && r.op != RowOp::del && r.op != RowOp::truncate)) continue;
    auto it = refused_.find(r.table);
    if (it == refused_.end()) continue;
    r.op = RowOp::poison;
    r.error = it->second;
  }
}

// Tables the batch names for the first time: created (create_table) under the DDL lock, with
// their dead-letter tables and staging tables, before anything of the batch is written.
void Writer::prepare_new_tables(const WorkBatch& b) {
  std::vector<const PostgresSinkConfig*> fresh;
  for (const Row& r : b.rows)
    if (r.table && known_.insert(r.table).second) fresh.push_back(r.table);
  if (fresh.empty()) return;
  sink::retry<PgError>(
      backoff_, stop_,
      [&] {
        ensure_connected();  // a new connection prepares every known table, these too
        for (const PostgresSinkConfig* t : fresh) {
          try {
            prepare(*t);
          } catch (const PgError& e) {
            rollback_quietly();
            if (e.error_class() != ErrorClass::transient)
              throw FatalStageError(fmt::format("preparing table {} failed: {} (SQLSTATE {})", t->display,
                                                e.what(), e.sqlstate));
            throw;
          }
        }
      },
      pg_failure,
      [&](const PgError& e, std::chrono::milliseconds delay) {
        log_.warn("preparing {} new table(s) failed transiently: {}; retrying in {} ms", fresh.size(),
                  e.what(), delay.count());
        count_transient(e);
      });
  for (const PostgresSinkConfig* t : fresh) log_.info("writing to table {} too", printable(t->display, 200));
}

Writer::TableRows Writer::by_table(const WorkBatch& b, const std::vector<std::size_t>& idx) const {
  TableRows groups;
  for (std::size_t i : idx) {
    const PostgresSinkConfig* t = &table_of(b.rows[i]);
    if (!groups.empty() && groups.back().first == t) {  // rows come in runs of one topic
      groups.back().second.push_back(i);
      continue;
    }
    // The group of the same config, unless a later group writes the same table (records of
    // another schema): then a new group keeps the table's rows in order (an upsert's last wins).
    auto it = groups.end();
    for (auto g = groups.rbegin(); g != groups.rend(); ++g) {
      if (g->first == t) {
        it = std::prev(g.base());
        break;
      }
      if (g->first->qualified == t->qualified) break;
    }
    if (it == groups.end()) it = groups.insert(groups.end(), {t, {}});
    it->second.push_back(i);
  }
  return groups;
}

void Writer::ensure_connected() {
  if (conn_ && conn_->ok()) return;
  sink::retry<PgError>(
      backoff_, stop_, [&] { connect_once(); }, pg_failure,
      [&](const PgError& e, std::chrono::milliseconds delay) {
        ++failures_;
        if (metrics_) metrics_->retries->inc();
        log_.warn("PostgreSQL unavailable ({}): {}; retrying in {} ms", cfg_->dsn_redacted, e.what(),
                  delay.count());
        drop_connection();
      });
}

std::string Writer::connect() {
  try {
    ensure_connected();
  } catch (const FatalStageError& f) {
    return f.what();
  }
  return {};
}

void Writer::write_rows(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo, std::size_t hi) {
  const bool one_copy =
      cur_->mode == Mode::insert && std::all_of(idx.begin() + static_cast<std::ptrdiff_t>(lo),
                                                idx.begin() + static_cast<std::ptrdiff_t>(hi),
                                                [&](std::size_t i) { return b.rows[i].op == RowOp::write; });
  if (one_copy) {
    // A lone COPY is a transaction of its own: BEGIN and COMMIT would only add two round trips
    // per batch, which is what small batches pay most for.
    write_rows_body(b, idx, lo, hi);
    return;
  }
  write_rows_body(b, idx, lo, hi, /*more_slices=*/false, /*begin=*/true);
  conn_->exec("COMMIT");
}

// The rows idx[lo..hi) inside the open transaction, or with `begin` inside one that its first
// COPY opens ("BEGIN; COPY ...": one round trip less). With `more_slices` (bisection inside one
// exactly_once transaction) the staging table is left empty for the next slice: ON COMMIT
// DELETE ROWS comes too late for them.
void Writer::write_rows_body(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo,
                             std::size_t hi, bool more_slices, bool begin) {
  // Rows idx[a..z) as COPY text. Rows left out of idx (dropped: a partition no longer ours;
  // deferred: past the offset this transaction stores) may lie between them in buf, and must
  // not be written: then the rows are gathered into a buffer of their own.
  std::string gathered;
  auto slice = [&](std::size_t a, std::size_t z) -> std::string_view {
    bool contiguous = true;
    for (std::size_t k = a + 1; k < z && contiguous; ++k)
      contiguous = b.rows[idx[k]].begin == b.rows[idx[k - 1]].end;
    if (contiguous) {
      std::size_t from = b.rows[idx[a]].begin, to = b.rows[idx[z - 1]].end;
      return std::string_view(b.buf).substr(from, to - from);
    }
    gathered.clear();
    for (std::size_t k = a; k < z; ++k)
      gathered.append(b.buf, b.rows[idx[k]].begin, b.rows[idx[k]].end - b.rows[idx[k]].begin);
    return gathered;
  };
  auto copy = [&](const std::string& sql, std::string_view rows) {
    conn_->copy_in(begin ? "BEGIN; " + sql : sql, rows);
    begin = false;
  };
  if (cur_->mode == Mode::insert) {
    // Runs of inserts go straight to the table; runs of deletes through the staging table.
    std::size_t a = lo;
    while (a < hi) {
      RowOp op = b.rows[idx[a]].op;
      std::size_t z = a + 1;
      while (z < hi && b.rows[idx[z]].op == op) ++z;
      if (op == RowOp::write) {
        copy(cur_->copy_target_sql, slice(a, z));
      } else {
        copy(cur_->copy_stage_sql, slice(a, z));
        conn_->exec(cur_->delete_sql);
        conn_->exec(cur_->clear_stage_sql);
      }
      a = z;
    }
  } else {
    // mode debezium: a truncate (op t) wipes what came before it, so only the rows after the last
    // one are written.
    for (std::size_t i = lo; i < hi; ++i)
      if (b.rows[idx[i]].op == RowOp::truncate) {
        conn_->exec(begin ? "BEGIN; " + cur_->truncate_sql : cur_->truncate_sql);
        begin = false;
        lo = i + 1;
      }
    if (lo == hi) return;
    bool has_del = false, has_write = false;
    for (std::size_t i = lo; i < hi; ++i) (b.rows[idx[i]].op == RowOp::del ? has_del : has_write) = true;
    copy(cur_->copy_stage_sql, slice(lo, hi));
    if (has_del && !cur_->delete_sql.empty()) conn_->exec(cur_->delete_sql);
    if (has_write && cur_->mode == Mode::merge) {
      merge_staged();
    } else if (has_write) {
      conn_->exec(has_del ? cur_->upsert_after_delete_sql : cur_->upsert_sql);
    }
    if (has_del && !cur_->soft_delete_sql.empty()) conn_->exec(cur_->soft_delete_sql);
    if (more_slices) conn_->exec(cur_->clear_stage_sql);
  }
}

// mode merge: folds the staged rows into the table, a key's n-th row in round n (pg_merge.hpp).
void Writer::merge_staged() {
  Result r = conn_->query(cur_->merge_rounds_sql);
  const long rounds = std::stol(PQgetvalue(r.get(), 0, 0));
  for (long round = 1; round <= rounds; ++round)
    conn_->exec_params(cur_->merge_round_sql, {std::to_string(round)});
}

// The rows idx[...] in transactions of their own, retrying transient failures; a slice the
// table rejects for bad data is bisected down to its poison rows.
void Writer::write_slices(WorkBatch& b, const std::vector<std::size_t>& idx) {
  auto write = [&](std::size_t lo, std::size_t hi) -> std::optional<PgError> {
    return sink::retry<PgError>(
        backoff_, stop_,
        [&]() -> std::optional<PgError> {
          ensure_connected();
          try {
            write_rows(b, idx, lo, hi);
          } catch (const PgError& e) {
            rollback_quietly();
            if (e.error_class() == ErrorClass::data) return e;
            if (e.error_class() == ErrorClass::config)
              throw FatalStageError(
                  fmt::format("PostgreSQL rejected the writes to {}: {} (SQLSTATE {}): the configuration or "
                              "the table is wrong",
                              cur_->display, e.what(), e.sqlstate));
            throw;
          }
          for (std::size_t i = lo; i < hi; ++i) b.rows[idx[i]].status = AckStatus::done;
          if (metrics_) metrics_->rows_written->inc(hi - lo);
          return std::nullopt;
        },
        pg_failure,
        [&](const PgError& e, std::chrono::milliseconds delay) {
          log_.warn("writing to {} failed transiently: {}{}; retrying {} row(s) in {} ms", cur_->display,
                    e.what(), e.sqlstate.empty() ? "" : " (SQLSTATE " + e.sqlstate + ")", hi - lo,
                    delay.count());
          count_transient(e);
        });
  };
  auto bad = [&](std::size_t i, PgError&& e) { mark_poison(b.rows[idx[i]], e); };
  sink::bisect(0, idx.size(), write, bad);
}

// The batch's poison rows (but dropped or deferred ones) as dead letters.
std::vector<sink::DeadLetter> Writer::poison_letters(const WorkBatch& b) const {
  std::vector<sink::DeadLetter> letters;
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    const Row& r = b.rows[i];
    if (r.op == RowOp::poison && !r.dropped && !r.deferred)
      letters.push_back({&b.events[i],
                         dead_letter_reason(r.table ? "table " + r.table->display + ": " + r.error : r.error),
                         r.sqlstate});
  }
  return letters;
}

// Kafka first, then the table: a batch whose table write fails after its topic write is not
// sent to the topic again while retrying here (a restart may send it again: at least once).
void Writer::write_dead_letters(WorkBatch& b) {
  const std::vector<sink::DeadLetter> letters = poison_letters(b);
  sink::write_dead_letters(
      {topic_.get(), table_.get()}, letters, backoff_, stop_,
      [&](const sink::DeadLetterDestination& d, const std::string& error, std::chrono::milliseconds delay) {
        if (metrics_) metrics_->retries->inc();
        log_.warn("writing {} dead letter(s) to {} failed transiently: {}; retrying in {} ms", letters.size(),
                  d.describe(), error, delay.count());
      });
}

// The letters into the dead-letter table, inside the open transaction.
void Writer::insert_dead_letters(const std::vector<sink::DeadLetter>& letters) {
  for (const sink::DeadLetter& l : letters) {
    const Event& e = *l.event;
    const Row& row = batch_->rows[static_cast<std::size_t>(l.event - batch_->events.data())];
    std::optional<std::string> headers;
    if (!e.headers.empty()) {
      Object o;
      for (const auto& h : e.headers) o.emplace_back(sanitize_utf8(h.name), Value(sanitize_utf8(h.value)));
      headers = Value(std::move(o)).to_json();
    }
    conn_->exec_params(
        table_of(row).insert_dead_letter_sql,
        {cfg_->pipeline, cfg_->stage, opt(!e.topic.empty(), sanitize_utf8(e.topic.str())),
         opt(e.partition >= 0, std::to_string(e.partition)), opt(e.offset >= 0, std::to_string(e.offset)),
         opt(e.has_key, e.key), opt(e.has_value, e.value), headers, l.reason, opt(!l.code.empty(), l.code)},
        {false, false, false, false, false, true, true, false, false, false});
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
  batch_ = &b;
  try {
    prepare_new_tables(b);
  } catch (const FatalStageError& f) {
    b.fatal = f.what();
    return;
  }
  poison_refused(b);
  if (offsets_) {
    try {
      write_exactly_once(b);
    } catch (const FatalStageError& f) {  // a reconnect that found the configuration wrong
      b.fatal = f.what();
    }
    return;
  }
  std::vector<std::size_t> idx;
  idx.reserve(b.rows.size());
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    Row& r = b.rows[i];
    if (r.op == RowOp::write || r.op == RowOp::del || r.op == RowOp::truncate) idx.push_back(i);
    if (r.op == RowOp::skip) r.status = AckStatus::done;
  }
  try {
    for (auto& [table, rows] : by_table(b, idx)) {
      cur_ = table;
      write_slices(b, rows);
    }
    cur_ = cfg_.get();
  } catch (const FatalStageError& f) {
    cur_ = cfg_.get();
    b.fatal = f.what();  // rows not committed stay failed
    return;
  }

  if (!guard_lets_through(b)) return;
  if (std::none_of(b.rows.begin(), b.rows.end(), [](const Row& r) { return r.op == RowOp::poison; }) ||
      cfg_->on_poison != PoisonPolicy::dead_letter)
    return;  // poison rows stay failed: the source pauses the partition or stops
  try {
    write_dead_letters(b);
  } catch (const FatalStageError& f) {
    b.fatal = f.what();
    return;
  }
  std::uint64_t dead = 0;
  for (auto& r : b.rows)
    if (r.op == RowOp::poison) {
      r.status = AckStatus::dead_lettered;
      ++dead;
    }
  if (metrics_) metrics_->dead_letters->inc(dead);
}

// The guard (stages/sink/ratio_guard.hpp): a high dead-letter rate means the mapping or the
// table is wrong; then the rows are not dead-lettered but failed, so that a fixed configuration
// can replay them. Returns whether the batch's bad records may be dead-lettered; on stop it sets
// `fatal`, on pause the kafka source holds each of their partitions at the first of them.
bool Writer::guard_lets_through(WorkBatch& b) {
  std::size_t bad = 0;
  const std::string* first_error = nullptr;
  for (const auto& r : b.rows)
    if (r.op == RowOp::poison && !r.dropped && !r.deferred) {
      ++bad;
      if (!first_error) first_error = &r.error;
    }
  if (cfg_->on_poison != PoisonPolicy::dead_letter) bad = 0;
  const std::string why = guard_.check(b.rows.size(), bad, cfg_->display, first_error ? *first_error : "");
  if (why.empty()) return true;
  if (metrics_) metrics_->guard_trips->inc();
  switch (guard_.act(why, log_)) {
    case sink::GuardVerdict::dead_letter: return true;
    case sink::GuardVerdict::stop: b.fatal = sink::DeadLetterRatioGuard::stop_reason(why); return false;
    case sink::GuardVerdict::hold: return false;
  }
  return false;
}

}  // namespace etld::pg
