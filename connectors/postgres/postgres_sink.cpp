// postgres: the sink that writes events to a PostgreSQL table (COPY inserts, staged upserts,
// tombstone deletes, dead letters), registered as stage type `postgres`.
//
// Threading. The sink's methods and its completions run on its strand (see stages/engine/stage.hpp).
// PostgreSQL I/O runs on a dedicated connection thread per sink instance (the sink kit's
// BlockingWorker, stages/sink/), never on the pool:
// libpq's COPY, commit and reconnect calls block, and a slow table (locks, triggers, a server
// restart) would otherwise park pool threads that every other stage needs. One thread per
// instance (instances = `concurrency`, each with its own connection) is cheap next to a
// PostgreSQL backend per connection, keeps the code a plain sequence of blocking calls
// (bisect, backoff, reconnect) instead of a callback state machine around libpq's
// non-blocking API, and costs one hand-off per batch (thousands of rows), not per row. The
// hand-off is bounded: at most one batch is being written while the next accumulates on the
// strand; the worker posts each completion back to the strand.
// Memory is bounded by upstream credit: acks settle and ctx.done() releases credit only after
// the transaction committed, so the sink never holds more than it was granted.
//
// delivery: exactly_once (docs/delivery.md): the factory owns a PgOffsetStore that the pipeline
// binds to the kafka source upstream, which claims its partitions through it; the writer commits each batch
// with its partitions' next offsets under those claims. Rows whose earlier offsets have not
// reached the sink yet come back from the writer unsettled and wait at the queue's end.
#include "connectors/postgres/postgres_sink.hpp"

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include "config/schema/diagnostics.hpp"
#include "config/schema/printable.hpp"
#include "config/terminal_progress.hpp"
#include "connectors/postgres/avro_schema_check.hpp"
#include "connectors/postgres/pg_offset_store.hpp"
#include "connectors/postgres/pg_routing.hpp"
#include "connectors/postgres/pg_writer.hpp"
#include "connectors/postgres/schema_tables.hpp"
#include "stages/engine/registry.hpp"
#include "stages/sink/batcher.hpp"
#include "stages/sink/blocking_worker.hpp"
#include "stages/sink/stop_signal.hpp"
#ifdef ETLD_WITH_KAFKA
#include "connectors/kafka/dead_letter_topic.hpp"
#endif

namespace etld::pg {

namespace {

class PostgresSink final : public Sink {
 public:
  PostgresSink(std::shared_ptr<const PostgresSinkConfig> cfg, std::shared_ptr<PgOffsetStore> offsets)
      : cfg_(std::move(cfg)), offsets_(std::move(offsets)) {}

  void start(SinkContext& ctx) override {
    ctx_ = &ctx;
    batcher_.emplace(
        ctx.executor(), sink::BatchLimits{cfg_->max_rows, 0, cfg_->max_wait, cfg_->credit_limit},
        [this] {
          // Sized up front: growing by doubling moved every event and row several times per batch.
          auto w = std::make_unique<WorkBatch>();
          const std::size_t rows = std::min(cfg_->max_rows, cfg_->credit_limit);
          w->events.reserve(rows);
          w->rows.reserve(rows);
          w->buf.reserve(buf_hint_);
          return w;
        },
        [this] { maybe_submit(); });
    metrics_ = std::make_unique<SinkMetrics>(
        ctx.metrics(),
        ctx.readiness("postgres sink '" + ctx.stage_name() + "' (instance " + std::to_string(ctx.instance()) +
                      "): not connected to PostgreSQL at " + cfg_->dsn_redacted));
    std::unique_ptr<sink::DeadLetterDestination> topic;
#ifdef ETLD_WITH_KAFKA
    if (!cfg_->dead_letter_topic.empty())
      topic = kafka::make_dead_letter_topic({cfg_->dead_letter_brokers, cfg_->dead_letter_topic,
                                             cfg_->dead_letter_librdkafka, cfg_->pipeline, cfg_->stage},
                                            ctx.log());
#endif
    writer_ = std::make_unique<Writer>(cfg_, ctx.log(), stop_, metrics_.get(), offsets_, std::move(topic));
    if (cfg_->routing) router_.emplace(cfg_);
    ctx.log().info(
        "writing to {} ({}, {}) at {}",
        cfg_->routing ? "the tables " + describe_routing(*cfg_->routing) : "table " + cfg_->display,
        cfg_->mode == Mode::insert          ? "insert"
        : cfg_->mode == Mode::upsert        ? "upsert"
        : cfg_->mode == Mode::insert_ignore ? "insert_ignore"
        : cfg_->mode == Mode::merge         ? "merge"
                                            : "debezium",
        cfg_->exactly_once ? "exactly once, offsets in " + cfg_->offsets_display
                           : std::string("at least once"),
        cfg_->dsn_redacted);
    worker_.emplace(ctx.executor(), stop_, [this] { writer_->interrupt(); });
    worker_->start([this] {
      if (std::string fatal = writer_->connect(); !fatal.empty())
        worker_->post([this, fatal] { fail(fatal); });
    });
  }

  void consume(Batch&& batch) override {
    if (failed_) {
      settle_all(batch, AckStatus::failed);
      ctx_->done(batch.size());
      return;
    }
    enqueue(batch);
    maybe_submit();
  }

  void drain() override {
    draining_ = true;
    batcher_->drain();
    maybe_submit();
    maybe_drained();
  }

 private:
  void enqueue(Batch& batch) {
    for (auto& e : batch) {
      WorkBatch& w = batcher_->open();
      Row r;
      r.begin = w.buf.size();
      const PostgresSinkConfig* table = router_ ? router_->route(e, r.error) : cfg_.get();
      if (table && table->schema_columns) table = schema_tables_.route(*table, e, r.error);
      r.table = table == cfg_.get() ? nullptr : table;
      if (table)
        r.op = encode_event(*table, e, seq_++, w.buf, r.error);
      else  // no table: a dead letter with the reason (to the stage's own), or a tombstone to skip
        r.op = r.error.empty() ? RowOp::skip : RowOp::poison;
      r.end = w.buf.size();
      w.rows.push_back(std::move(r));
      w.events.push_back(std::move(e));
      batcher_->added(1, w.rows.back().end - w.rows.back().begin);
    }
  }

  void maybe_submit() {
    if (worker_->busy() || failed_) return;
    std::unique_ptr<WorkBatch> b = batcher_->take_ready();
    if (!b) return;
    buf_hint_ = b->buf.size();
    auto shared = std::make_shared<std::unique_ptr<WorkBatch>>(std::move(b));
    worker_->submit([this, shared] { writer_->write(**shared); },
                    [this, shared] { on_written(std::move(*shared)); });
  }

  void maybe_drained() {
    if (!draining_ || drained_ || worker_->busy()) return;
    if (failed_) fail_pending();
    if (!batcher_->empty()) return;
    drained_ = true;
    ctx_->drained();
  }

  void fail_pending() {
    std::size_t n = 0;
    for (auto& w : batcher_->take_all()) {
      settle_all(w->events, AckStatus::failed);
      n += w->events.size();
    }
    if (n > 0) ctx_->done(n);
  }

  void fail(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    ctx_->log().error("stage {}: {}", cfg_->stage, message);
    // Configuration-class errors and the dead-letter guard: a restart would fail the same way.
    ctx_->fail(std::make_exception_ptr(FatalStageError(message)));
  }

  void on_written(std::unique_ptr<WorkBatch> b) {
    AckBatch done, dead, failed;
    Batch deferred;
    std::size_t logged = 0, poisoned = 0;
    for (std::size_t i = 0; i < b->rows.size(); ++i) {
      Row& r = b->rows[i];
      Event& e = b->events[i];
      if (r.deferred) {
        deferred.push_back(std::move(e));
        continue;
      }
      if (r.op == RowOp::poison && !r.dropped) {
        ++poisoned;
        if (logged < 10) {
          ++logged;
          const char* what = r.status == AckStatus::dead_lettered ? "dead-lettered" : "rejected";
          ctx_->log().warn("{} record {}/{}@{}: {}{}", what, e.topic.str(), e.partition, e.offset,
                           printable(r.error, 1024),  // a server's message may quote the whole row
                           r.sqlstate.empty() ? "" : " (SQLSTATE " + r.sqlstate + ")");
        }
      }
      (r.status == AckStatus::done ? done : r.status == AckStatus::dead_lettered ? dead : failed).add(e.ack);
    }
    if (poisoned > logged) ctx_->log().warn("... and {} more bad records in this batch", poisoned - logged);
    log_skipped(*b);
    done.settle(AckStatus::done);
    dead.settle(AckStatus::dead_lettered);
    failed.settle(AckStatus::failed);
    ctx_->done(b->events.size() - deferred.size());
    if (!deferred.empty()) {
      // exactly_once: they wait for earlier offsets of their partitions, now at the queue's end.
      enqueue(deferred);
      batcher_->restart_linger();
    }
    if (!b->fatal.empty()) fail(b->fatal);
    maybe_submit();
    maybe_drained();
  }

  // mode debezium: events skipped with a reason (op t with truncate: false), once per batch.
  void log_skipped(const WorkBatch& b) {
    std::size_t n = 0;
    const Event* first = nullptr;
    const std::string* why = nullptr;
    for (std::size_t i = 0; i < b.rows.size(); ++i)
      if (b.rows[i].op == RowOp::skip && !b.rows[i].deferred && !b.rows[i].error.empty() && ++n == 1) {
        first = &b.events[i];
        why = &b.rows[i].error;
      }
    if (n > 0)
      ctx_->log().warn("{} record(s) skipped, the first {}/{}@{}: {}; set truncate: true to apply them", n,
                       first->topic.str(), first->partition, first->offset, *why);
  }

  std::shared_ptr<const PostgresSinkConfig> cfg_;
  std::shared_ptr<PgOffsetStore> offsets_;  // exactly_once only
  SinkContext* ctx_ = nullptr;

  // Strand state.
  std::optional<sink::Batcher<WorkBatch>> batcher_;
  std::optional<TableRouter> router_;  // a routed stage: each record's table
  SchemaTables schema_tables_;         // columns from the schema: each (table, schema)
  std::uint64_t seq_ = 0;
  std::size_t buf_hint_ = 0;  // COPY bytes of the last batch: the next one's reserve
  bool draining_ = false, drained_ = false, failed_ = false;

  // Destroyed in reverse: the worker (stopped and joined) first, then the writer it used.
  sink::StopSignal stop_;
  std::unique_ptr<SinkMetrics> metrics_;  // before writer_: outlives it
  std::unique_ptr<Writer> writer_;
  std::optional<sink::BlockingWorker> worker_;
};

// With delivery: exactly_once the factory owns the stage's offset store, shared by its instances
// and handed to the engine, which binds it to the source upstream when it builds the graph. The
// store touches nothing until a source claims through it: making the factory has no side effect.
class PostgresSinkFactory final : public StageFactory {
 public:
  explicit PostgresSinkFactory(PostgresSinkConfig cfg)
      : cfg_(std::make_shared<const PostgresSinkConfig>(std::move(cfg))),
        offsets_(cfg_->exactly_once ? std::make_shared<PgOffsetStore>(cfg_) : nullptr) {}
  std::unique_ptr<Sink> make_sink(int) override { return std::make_unique<PostgresSink>(cfg_, offsets_); }
  std::shared_ptr<OffsetStore> offset_store() const override { return offsets_; }

 private:
  std::shared_ptr<const PostgresSinkConfig> cfg_;
  std::shared_ptr<PgOffsetStore> offsets_;
};

const StageRegistration registration{StageType{
    "postgres",
    Role::sink,
    "writes events to a PostgreSQL table: COPY inserts, upserts, tombstone deletes, dead letters",
    option_specs(),
    [](const StageConfig& stage, const PipelineConfig& pipeline) -> std::unique_ptr<StageFactory> {
      return std::make_unique<PostgresSinkFactory>(parse_config(stage, pipeline));
    },
    [](const StageConfig& stage, const PipelineConfig& pipeline) {
      const PostgresSinkConfig cfg = parse_config(stage, pipeline);
      std::vector<ConfigError> errors;
      try {
        check_live(cfg, stage);
      } catch (const ConfigError& e) {
        errors.push_back(e);
      }
      std::vector<std::string> warnings;
      check_against_avro_schemas(cfg, stage, pipeline, errors, warnings);
      if (auto* progress = current_progress(); progress && !warnings.empty()) progress->clear();
      for (const auto& w : warnings) std::cerr << w << "\n";
      ConfigErrors::throw_if_any(std::move(errors));
    },
    /*takes_rejected=*/true,  // rejected events become poison rows: see encode_event
    // Enough credit for several batches in flight: with the engine's default of 1000, the
    // default batch of 10,000 rows was never full (every batch was cut at 1,000 rows) and
    // nothing arrived while one was being written; with twice the batch, small batches waited
    // on each commit's round trip back to the source (batch 1,000: 3.7..7.9 s for 1M rows
    // against 2.7..2.9 s with 20,000 of credit).
    [](const YAML::Node& node) -> std::size_t {
      const Options options(node, &option_specs());
      std::size_t rows = 0;
      try {
        rows = batch_max_rows(options);
      } catch (const ConfigError&) {
        // A bad max_rows is reported by the option's own check: size the demand for the default.
        rows = static_cast<std::size_t>(scalar_int(options.default_node("batch")["max_rows"]));
      }
      return std::max<std::size_t>(20000, 2 * rows);
    },
}};

}  // namespace

}  // namespace etld::pg
