#include "connectors/postgres/pg_writer.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "config/printable.hpp"
#include "config/secrets.hpp"

namespace etld::pg {

namespace {

// A dead letter's reason as written to the table or topic: remembered secrets masked (a server
// message may quote what it was given), control characters escaped and at most 1 KiB, whatever
// the record held (the record itself is kept whole in the value).
std::string dead_letter_reason(const std::string& error) { return printable(redact_secrets(error), 1024); }

// Bisection came down to one row that PostgreSQL refuses: it is poison, with the reason.
void mark_poison(Row& r, const PgError& e) {
  r.op = RowOp::poison;
  r.error = e.what();
  r.sqlstate = e.sqlstate;
}

// A PostgreSQL array literal of `items` ("NULL" stays a null unless quoted); strings are quoted.
std::string array_literal(const std::vector<std::string>& items, bool quote = false) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    if (!quote) {
      out += item;
      continue;
    }
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

Writer::Writer(std::shared_ptr<const PostgresSinkConfig> cfg, spdlog::logger& log, SinkMetrics* metrics,
               std::shared_ptr<PgOffsetStore> offsets)
    : cfg_(std::move(cfg)),
      log_(log),
      metrics_(metrics),
      offsets_(std::move(offsets)),
      backoff_(cfg_->initial_backoff) {}

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
void Writer::ddl(const std::string& sql, const std::string& lock_key) {
  conn_->exec("BEGIN");
  conn_->exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", {lock_key});
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
      if (cfg_->create_table) ddl(cfg_->create_table_sql, cfg_->lock_key);
      if (cfg_->on_poison == PoisonPolicy::dead_letter && cfg_->dead_letter_table)
        ddl(cfg_->create_dead_letter_sql, cfg_->lock_key);
      if (cfg_->exactly_once) ddl(cfg_->create_offsets_sql, cfg_->offsets_lock_key);
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
  const bool one_copy =
      cfg_->mode == Mode::insert && std::all_of(idx.begin() + static_cast<std::ptrdiff_t>(lo),
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
  auto slice = [&](std::size_t a, std::size_t z) {  // rows idx[a..z) are contiguous in buf
    std::size_t from = b.rows[idx[a]].begin, to = b.rows[idx[z - 1]].end;
    return std::string_view(b.buf).substr(from, to - from);
  };
  auto copy = [&](const std::string& sql, std::string_view rows) {
    conn_->copy_in(begin ? "BEGIN; " + sql : sql, rows);
    begin = false;
  };
  if (cfg_->mode == Mode::insert) {
    // Runs of inserts go straight to the table; runs of deletes through the staging table.
    std::size_t a = lo;
    while (a < hi) {
      RowOp op = b.rows[idx[a]].op;
      std::size_t z = a + 1;
      while (z < hi && b.rows[idx[z]].op == op) ++z;
      if (op == RowOp::write) {
        copy(cfg_->copy_target_sql, slice(a, z));
      } else {
        copy(cfg_->copy_stage_sql, slice(a, z));
        conn_->exec(cfg_->delete_sql);
        conn_->exec(cfg_->clear_stage_sql);
      }
      a = z;
    }
  } else {
    bool has_del = false, has_write = false;
    for (std::size_t i = lo; i < hi; ++i) (b.rows[idx[i]].op == RowOp::del ? has_del : has_write) = true;
    copy(cfg_->copy_stage_sql, slice(lo, hi));
    if (has_del) conn_->exec(cfg_->delete_sql);
    if (has_write) conn_->exec(has_del ? cfg_->upsert_after_delete_sql : cfg_->upsert_sql);
    if (more_slices) conn_->exec(cfg_->clear_stage_sql);
  }
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
          if (hi - lo == 1) return mark_poison(b.rows[idx[lo]], e);
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
    if (b.rows[i].op == RowOp::poison)
      letters.push_back({&b.events[i], dead_letter_reason(b.rows[i].error), b.rows[i].sqlstate});
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
      insert_dead_letters(b);
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

// The batch's poison rows (but dropped or deferred ones) into the dead-letter table, inside the
// open transaction.
void Writer::insert_dead_letters(WorkBatch& b) {
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    const Row& r = b.rows[i];
    if (r.op != RowOp::poison || r.dropped || r.deferred) continue;
    const Event& e = b.events[i];
    std::optional<std::string> headers;
    if (!e.headers.empty()) {
      Object o;
      for (const auto& h : e.headers) o.emplace_back(sanitize_utf8(h.name), Value(sanitize_utf8(h.value)));
      headers = Value(std::move(o)).to_json();
    }
    conn_->exec_params(
        cfg_->insert_dead_letter_sql,
        {cfg_->pipeline, cfg_->stage, opt(!e.topic.empty(), sanitize_utf8(e.topic.str())),
         opt(e.partition >= 0, std::to_string(e.partition)), opt(e.offset >= 0, std::to_string(e.offset)),
         opt(e.has_key, e.key), opt(e.has_value, e.value), headers, dead_letter_reason(r.error),
         opt(!r.sqlstate.empty(), r.sqlstate)},
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
  if (offsets_) return write_exactly_once(b);
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

  if (std::string why = dead_letter_ratio_exceeded(b); !why.empty() && !guard_lets_through(b, why)) return;
  if (std::none_of(b.rows.begin(), b.rows.end(), [](const Row& r) { return r.op == RowOp::poison; }) ||
      cfg_->on_poison != PoisonPolicy::dead_letter)
    return;  // poison rows stay failed: the source pauses the partition or stops
  try {
    write_dead_letters(b);
  } catch (const Fatal& f) {
    b.fatal = f.message;
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

// The guard: a high dead-letter rate means the mapping or the table is wrong; then the rows are
// not dead-lettered but failed, so that a fixed configuration can replay them. Returns why the
// pipeline must stop, or "".
std::string Writer::dead_letter_ratio_exceeded(const WorkBatch& b) {
  std::size_t dead = 0;
  const std::string* first_error = nullptr;
  for (const auto& r : b.rows)
    if (r.op == RowOp::poison && !r.dropped && !r.deferred) {
      ++dead;
      if (!first_error) first_error = &r.error;
    }
  if (dead == 0 || cfg_->on_poison != PoisonPolicy::dead_letter) {
    window_total_ += b.rows.size();
    return {};
  }
  const double ratio = cfg_->max_dead_letter_ratio;
  bool trip = b.rows.size() >= 100 && static_cast<double>(dead) > ratio * static_cast<double>(b.rows.size());
  window_total_ += b.rows.size();
  window_dead_ += dead;
  std::size_t wt = window_total_, wd = window_dead_;
  if (window_total_ >= 1000) {
    trip = trip || static_cast<double>(window_dead_) > ratio * static_cast<double>(window_total_);
    window_total_ = window_dead_ = 0;
  }
  if (trip && ratio < 1.0)
    return fmt::format(
        "{} of {} records in a batch ({} of the last {}) could not be written to {}, more than "
        "max_dead_letter_ratio "
        "{}: the configuration is probably wrong, or a producer sends bad records; first error: {}",
        dead, b.rows.size(), wd, wt, cfg_->display, ratio, first_error ? *first_error : "");
  return {};
}

// The tripped guard's action: whether the batch's bad records are dead-lettered all the same
// (alert). stop sets `fatal`; pause leaves them failed, and the kafka source holds each of their
// partitions at the first of them.
bool Writer::guard_lets_through(WorkBatch& b, const std::string& why) {
  if (metrics_) metrics_->guard_trips->inc();
  switch (cfg_->on_dead_letter_ratio) {
    case GuardAction::stop: b.fatal = why + " (on_dead_letter_ratio: stop)"; return false;
    case GuardAction::pause:
      log_.error(
          "{} (on_dead_letter_ratio: pause): not dead-lettering them; their partitions are held at the first "
          "of them until a restart (see docs/operations.md, \"The dead-letter guard tripped\")",
          why);
      return false;
    case GuardAction::alert:
      log_.error("{} (on_dead_letter_ratio: alert): dead-lettering them all the same", why);
      return true;
  }
  return false;
}

// Bisection inside the open transaction: each slice under a savepoint, so a rejected slice rolls
// back alone and the good rows stay in the one transaction. Transient and configuration errors
// propagate (the caller rolls the whole transaction back).
void Writer::bisect_in_transaction(WorkBatch& b, const std::vector<std::size_t>& idx, std::size_t lo,
                                   std::size_t hi) {
  if (lo >= hi) return;
  conn_->exec("SAVEPOINT etld_rows");
  try {
    write_rows_body(b, idx, lo, hi, /*more_slices=*/true);
    conn_->exec("RELEASE SAVEPOINT etld_rows");
    return;
  } catch (const PgError& e) {
    if (e.error_class() != ErrorClass::data) throw;
    conn_->exec("ROLLBACK TO SAVEPOINT etld_rows");
    conn_->exec("RELEASE SAVEPOINT etld_rows");
    if (hi - lo == 1) return mark_poison(b.rows[idx[lo]], e);
  }
  std::size_t mid = lo + (hi - lo) / 2;
  bisect_in_transaction(b, idx, lo, mid);
  bisect_in_transaction(b, idx, mid, hi);
}

// delivery: exactly_once. One transaction holds the batch's rows, its dead letters and, per Kafka
// partition it covers, the next offset to read, written only if the partition's epoch is still
// ours and its offset row is where we left it. A partition that fails that check was claimed by
// another instance (we are a zombie of an old assignment): its rows are dropped and the rest of
// the batch is written again without them.
void Writer::write_exactly_once(WorkBatch& b) {
  struct Part {
    std::string topic;
    std::int32_t partition = 0;
    PgOffsetStore::Live claim;
    std::vector<std::uint64_t> tokens;
    std::vector<std::size_t> rows;
    std::int64_t next = -1;
  };
  std::map<std::pair<std::string, std::int32_t>, Part> parts;
  std::size_t dropped = 0, deferred = 0;
  // Rows come in runs of one partition: look a partition up once per run, not once per row.
  Part* part = nullptr;
  SharedName part_topic;
  std::int32_t part_partition = -1;
  bool looked_up = false;
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    Row& r = b.rows[i];
    const Event& e = b.events[i];
    if (!looked_up || !(e.topic == part_topic) || e.partition != part_partition) {
      auto key = std::make_pair(e.topic.str(), e.partition);
      auto it = parts.find(key);
      if (it == parts.end()) {
        auto live = offsets_->live(e.topic, e.partition);
        if (live) it = parts.emplace(key, Part{e.topic, e.partition, *live, {}, {}, -1}).first;
      }
      part = it == parts.end() ? nullptr : &it->second;
      part_topic = e.topic;
      part_partition = e.partition;
      looked_up = true;
    }
    if (!part || part->claim.target.get() != e.ack.target()) {
      r.dropped = true;  // an assignment we no longer hold: its new owner reads it again
      r.status = AckStatus::done;
      ++dropped;
      continue;
    }
    part->tokens.push_back(e.ack.token());
    part->rows.push_back(i);
  }
  // The offset stored is where a restart resumes: every row written must lie below it. A row at
  // or past it (an earlier offset of its partition is still on its way, e.g. reordered by a
  // transform's rejections) waits for a later batch.
  for (auto& [key, p] : parts) {
    p.next = p.claim.target->next_offset_with(p.tokens);
    std::vector<std::size_t> keep;
    for (auto i : p.rows)
      if (b.events[i].offset >= p.next) {
        b.rows[i].deferred = true;
        ++deferred;
      } else {
        keep.push_back(i);
      }
    p.rows.swap(keep);
  }
  if (dropped > 0)
    log_.warn(
        "dropping {} record(s) of partitions this instance no longer owns (revoked or claimed by another "
        "instance); their new owner reads them again",
        dropped);
  if (deferred > 0)
    log_.debug("{} record(s) wait for earlier offsets of their partitions before they can commit", deferred);

  bool optimistic = true;
  for (;;) {
    // The rows of the partitions still held, in batch order (COPY slices must be contiguous in
    // buf): the others are dropped (not ours, or fenced) or deferred.
    std::vector<std::size_t> idx;
    bool any = false;
    for (std::size_t i = 0; i < b.rows.size(); ++i) {
      const Row& r = b.rows[i];
      if (r.dropped || r.deferred) continue;
      any = true;
      if (r.op == RowOp::write || r.op == RowOp::del) idx.push_back(i);
    }
    if (!any) return;
    ensure_connected();
    try {
      if (!optimistic || idx.empty()) conn_->exec("BEGIN");
      if (!optimistic) {
        bisect_in_transaction(b, idx, 0, idx.size());
      } else if (!idx.empty()) {
        try {
          write_rows_body(b, idx, 0, idx.size(), /*more_slices=*/false, /*begin=*/true);
        } catch (const PgError& e) {
          if (e.error_class() != ErrorClass::data) throw;
          // A row the table refuses: start over, with each slice under a savepoint, to find it.
          // Savepoints cost two round trips per slice, so only batches with bad rows pay them.
          rollback_quietly();
          optimistic = false;
          continue;
        }
      }
      bool poisoned = false;
      for (auto& [key, p] : parts)
        for (auto i : p.rows) poisoned = poisoned || b.rows[i].op == RowOp::poison;
      if (poisoned && cfg_->on_poison == PoisonPolicy::stop) {
        rollback_quietly();
        b.fatal = "a record could not be written (on_poison: stop); nothing of its batch was committed";
        return;
      }
      if (std::string why = dead_letter_ratio_exceeded(b); !why.empty() && !guard_lets_through(b, why)) {
        // pause holds the whole batch (every row stays failed): its rows and offsets are one
        // transaction, so the good rows cannot commit without the bad ones' offsets.
        rollback_quietly();
        return;
      }
      if (poisoned && cfg_->on_poison == PoisonPolicy::dead_letter && cfg_->dead_letter_table)
        insert_dead_letters(b);
      std::vector<std::pair<std::string, std::int32_t>> lost;
      {
        std::vector<std::string> topics, partitions, epochs, nexts, expected;
        std::string owner;  // one source feeds the sink: every claim has the same group
        for (auto& [key, p] : parts) {
          if (p.rows.empty()) continue;
          owner = p.claim.owner;
          topics.push_back(p.topic);
          partitions.push_back(std::to_string(p.partition));
          epochs.push_back(std::to_string(p.claim.epoch));
          nexts.push_back(std::to_string(p.next));
          expected.push_back(p.claim.written < 0 ? "NULL" : std::to_string(p.claim.written));
        }
        Result r = conn_->exec_params(cfg_->advance_offsets_sql,
                                      {owner, array_literal(topics, true), array_literal(partitions),
                                       array_literal(epochs), array_literal(nexts), array_literal(expected)});
        std::set<std::pair<std::string, std::int32_t>> advanced;
        for (int row = 0; row < PQntuples(r.get()); ++row)
          advanced.emplace(PQgetvalue(r.get(), row, 0), std::stoi(PQgetvalue(r.get(), row, 1)));
        for (auto& [key, p] : parts)
          if (!p.rows.empty() && !advanced.count(key)) lost.push_back(key);
      }
      if (!lost.empty()) {
        rollback_quietly();
        for (const auto& key : lost) {
          Part& p = parts.at(key);
          Result r = conn_->exec_params(cfg_->read_offset_sql,
                                        {p.claim.owner, p.topic, std::to_string(p.partition)});
          const bool found = PQntuples(r.get()) == 1;
          const std::int64_t epoch = found ? std::stoll(PQgetvalue(r.get(), 0, 0)) : 0;
          const std::int64_t next =
              found && !PQgetisnull(r.get(), 0, 1) ? std::stoll(PQgetvalue(r.get(), 0, 1)) : -1;
          if (epoch == p.claim.epoch && next == p.next) {
            // An earlier attempt committed, and the connection died before we heard it.
            log_.info(
                "the commit of {} row(s) of {}[{}] up to offset {} had succeeded before the connection was "
                "lost",
                p.rows.size(), p.topic, p.partition, p.next);
            offsets_->committed(p.topic, p.partition, p.claim.epoch, p.next);
          } else {
            log_.warn(
                "fenced: {}[{}] was claimed by another instance (epoch {} in {}, ours {}; offset {} there, "
                "{} "
                "expected): dropping {} row(s) of a stale assignment, not committing them",
                p.topic, p.partition, epoch, cfg_->offsets_display, p.claim.epoch, next, p.claim.written,
                p.rows.size());
            offsets_->fenced(p.topic, p.partition, p.claim.epoch);
          }
          for (auto i : p.rows) {
            b.rows[i].dropped = true;
            b.rows[i].status = AckStatus::done;
          }
          p.rows.clear();
        }
        continue;
      }
      conn_->exec("COMMIT");
    } catch (const PgError& e) {
      rollback_quietly();
      if (e.error_class() != ErrorClass::transient) {
        b.fatal = fmt::format("PostgreSQL rejected the exactly-once transaction on {}: {} (SQLSTATE {})",
                              cfg_->display, e.what(), e.sqlstate);
        return;
      }
      if (stopping()) throw Stopped{};
      ++failures_;
      if (metrics_) metrics_->retries->inc();
      log_.warn("writing to {} failed transiently: {}{}; retrying the transaction in {} ms", cfg_->display,
                e.what(), e.sqlstate.empty() ? "" : " (SQLSTATE " + e.sqlstate + ")", backoff_.count());
      const std::string cls = e.sqlstate.substr(0, 2);
      if (e.connection_lost || cls == "08" || cls == "57") drop_connection();
      backoff_wait();
      continue;
    } catch (const Fatal& f) {
      b.fatal = f.message;
      return;
    }
    backoff_ = cfg_->initial_backoff;
    std::uint64_t written = 0, dead = 0;
    for (auto& [key, p] : parts) {
      if (p.rows.empty()) continue;
      offsets_->committed(p.topic, p.partition, p.claim.epoch, p.next);
      for (auto i : p.rows) {
        const bool poison = b.rows[i].op == RowOp::poison;
        b.rows[i].status = poison ? AckStatus::dead_lettered : AckStatus::done;
        ++(poison ? dead : written);
      }
    }
    if (metrics_) {
      metrics_->rows_written->inc(written);
      metrics_->dead_letters->inc(dead);
    }
    return;
  }
}

}  // namespace etld::pg
