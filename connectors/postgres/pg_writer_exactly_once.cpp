// The postgres writer's delivery: exactly_once path (docs/delivery.md): a batch's rows, its dead
// letters and its partitions' next offsets in one transaction, fenced by the claims' epochs.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "connectors/postgres/pg_writer.hpp"
#include "connectors/postgres/pg_writer_detail.hpp"
#include "stages/engine/offset_store.hpp"
#include "stages/engine/stage.hpp"
#include "stages/sink/bisect.hpp"

namespace etld::pg {

namespace {

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

// The source positions one row covers, all of one partition assignment (`target`).
struct Covered {
  const AckTarget* target = nullptr;
  std::vector<std::uint64_t> tokens;
  std::int64_t last = -1;
  std::string error;  // the row's ack cannot be tied to one assignment: committing it would lie
};

Covered covered_positions(const Event& e) {
  Covered c;
  bool mixed = false, untracked = false;
  e.ack.visit_covered([&](AckTarget& target, std::uint64_t token) {
    if (!c.target) c.target = &target;
    mixed = mixed || c.target != &target;
    untracked = untracked || dynamic_cast<const TrackedPartition*>(&target) == nullptr;
    c.tokens.push_back(token);
    c.last = std::max(c.last, static_cast<std::int64_t>(token));
  });
  if (mixed || untracked)
    c.error = fmt::format(
        "delivery: exactly_once: the record of {}[{}] at offset {} carries an acknowledgement that {}; its "
        "rows cannot be committed with exact source positions, so nothing of its batch was written",
        e.topic.str(), e.partition, e.offset,
        mixed ? "covers records of several partitions or assignments"
              : "stands for no source partition's records");
  return c;
}

}  // namespace

// Bisection inside the open transaction: each slice under a savepoint, so a rejected slice rolls
// back alone and the good rows stay in the one transaction. Transient and configuration errors
// propagate (the caller rolls the whole transaction back).
void Writer::bisect_in_transaction(WorkBatch& b, const std::vector<std::size_t>& idx) {
  auto write = [&](std::size_t lo, std::size_t hi) -> std::optional<PgError> {
    conn_->exec("SAVEPOINT etld_rows");
    try {
      write_rows_body(b, idx, lo, hi, /*more_slices=*/true);
      conn_->exec("RELEASE SAVEPOINT etld_rows");
      return std::nullopt;
    } catch (const PgError& e) {
      if (e.error_class() != ErrorClass::data) throw;
      conn_->exec("ROLLBACK TO SAVEPOINT etld_rows");
      conn_->exec("RELEASE SAVEPOINT etld_rows");
      return e;
    }
  };
  auto bad = [&](std::size_t i, PgError&& e) { mark_poison(b.rows[idx[i]], e); };
  sink::bisect(0, idx.size(), write, bad);
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
  std::vector<std::int64_t> row_last(b.rows.size(), -1);         // the largest position a row covers
  std::map<std::size_t, std::vector<std::uint64_t>> row_tokens;  // of rows that cover several
  std::map<const AckTarget*, std::pair<std::size_t, std::size_t>> splits;  // parts here, parts unsettled
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
    if (part && part->claim.target.get() == e.ack.target()) {  // a plain ack: the common case
      part->rows.push_back(i);
      row_last[i] = static_cast<std::int64_t>(e.ack.token());
      continue;
    }
    // The source positions the row covers: for a partial record (a joined ack of several inputs
    // of its partition), every input's.
    const Covered covered = covered_positions(e);
    if (!covered.error.empty()) {
      b.fatal = covered.error;
      return;
    }
    if (!part || covered.target != part->claim.target.get()) {
      r.dropped = true;  // an assignment we no longer hold: its new owner reads it again
      r.status = AckStatus::done;
      ++dropped;
      continue;
    }
    part->rows.push_back(i);
    row_last[i] = covered.last;
    row_tokens.emplace(i, covered.tokens);
    if (const std::size_t parts = e.ack.target()->unsettled_parts(); parts > 0) {
      auto& [seen, need] = splits[e.ack.target()];
      ++seen;
      need = parts;
    }
  }
  // The parts of a split ack (a record that went into several partials: sliding windows) cover
  // the same positions: they commit together or wait together for the missing ones.
  for (auto& [key, p] : parts) {
    std::vector<std::size_t> keep;
    for (auto i : p.rows) {
      auto it = splits.find(b.events[i].ack.target());
      if (it != splits.end() && it->second.first < it->second.second) {
        b.rows[i].deferred = true;
        ++deferred;
      } else {
        keep.push_back(i);
        if (auto t = row_tokens.find(i); t != row_tokens.end())
          p.tokens.insert(p.tokens.end(), t->second.begin(), t->second.end());
        else
          p.tokens.push_back(b.events[i].ack.token());
      }
    }
    p.rows.swap(keep);
  }
  // The offset stored is where a restart resumes: every row written must lie below it. A row at
  // or past it (an earlier offset of its partition is still on its way, e.g. reordered by a
  // transform's rejections) waits for a later batch.
  for (auto& [key, p] : parts) {
    p.next = p.claim.target->next_offset_with(p.tokens);
    std::vector<std::size_t> keep;
    for (auto i : p.rows)
      if (row_last[i] >= p.next) {
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
      if (r.op == RowOp::write || r.op == RowOp::del || r.op == RowOp::truncate) idx.push_back(i);
    }
    if (!any) return;
    ensure_connected();
    try {
      if (!optimistic || idx.empty()) conn_->exec("BEGIN");
      // Every table of the batch (one, unless the stage routes) in the one transaction.
      const TableRows tables = by_table(b, idx);
      if (!optimistic) {
        for (const auto& [table, rows] : tables) {
          cur_ = table;
          bisect_in_transaction(b, rows);
        }
      } else if (!idx.empty()) {
        try {
          bool begin = true;
          for (const auto& [table, rows] : tables) {
            cur_ = table;
            write_rows_body(b, rows, 0, rows.size(), /*more_slices=*/false, begin);
            begin = false;
          }
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
      if (!guard_lets_through(b)) {
        // pause holds the whole batch (every row stays failed): its rows and offsets are one
        // transaction, so the good rows cannot commit without the bad ones' offsets.
        rollback_quietly();
        return;
      }
      if (poisoned && cfg_->on_poison == PoisonPolicy::dead_letter && cfg_->dead_letter_table)
        insert_dead_letters(poison_letters(b));
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
                              cur_->display, e.what(), e.sqlstate);
        return;
      }
      stop_.throw_if_stopping();
      log_.warn("writing to {} failed transiently: {}{}; retrying the transaction in {} ms", cfg_->display,
                e.what(), e.sqlstate.empty() ? "" : " (SQLSTATE " + e.sqlstate + ")",
                backoff_.next().count());
      count_transient(e);
      backoff_.wait(stop_);
      continue;
    } catch (const FatalStageError& f) {
      b.fatal = f.what();
      return;
    }
    backoff_.reset();
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
