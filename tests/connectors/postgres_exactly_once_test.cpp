// The postgres sink's delivery: exactly_once against a real PostgreSQL (scripts/dev-env): rows,
// dead letters and the next offset of each partition commit in one transaction; claims bump the
// partition's epoch; a sink whose claim was taken over (a zombie) writes nothing; events of an
// assignment no longer held are dropped; the configuration checks that make the guarantee hold.
#include <doctest/doctest.h>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/pipeline.hpp"
#include "connectors/kafka/kafka_source.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/offset_store.hpp"
#include "stages/engine/pipeline.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_partition.hpp"

using namespace std::chrono_literals;
using etld::AckStatus;
using etld::Batch;
using etld::Event;

namespace {

using etld::test::TestPartition;

std::string scalar(etld::pg::PgConnection& c, const std::string& sql) {
  auto r = c.query(sql);
  return PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
}

std::string pipeline_yaml(const std::string& group, const std::string& table, const std::string& sink_extra,
                          const std::string& middle = "") {
  return "pipeline: eo\nstages:\n  in:\n    type: kafka\n    brokers: 127.0.0.1:1\n    topics: [orders]\n"
         "    group: " +
         group + "\n" + middle + "  out:\n    type: postgres\n    inputs: [" +
         (middle.empty() ? "in" : "mid") + "]\n    dsn: '" + etld::test::services().pg_dsn +
         "'\n    table: " + table +
         "\n    create_table: true\n    delivery: exactly_once\n    offsets_table: " + table +
         "_offsets\n    batch: { max_rows: 1000, max_wait: 10ms }\n"
         "    columns:\n      id: { from: id, type: bigint, required: true }\n"
         "      off: { from: _offset, type: bigint }\n" +
         sink_extra;
}

std::string config_error(const std::string& yaml) {
  etld::Diagnostics diags("p.yaml");
  auto p = etld::load_pipeline_text(yaml, "p.yaml", diags);
  return p ? std::string() : diags.format();
}

struct Rig {
  boost::asio::io_context io;
  etld::test::FakeSinkContext ctx{io, "out"};
  std::unique_ptr<etld::PipelineConfig> pipeline;
  std::unique_ptr<etld::StageFactory> factory;
  std::unique_ptr<etld::Sink> sink;
  std::shared_ptr<etld::OffsetStore> store;
  std::string group = etld::test::unique_name("eo-group");
  std::string table = "eo_" + std::to_string(::getpid()) + "_" + std::to_string(++counter());

  Rig() {
    etld::Diagnostics diags("p.yaml");
    pipeline = etld::load_pipeline_text(pipeline_yaml(group, table, ""), "p.yaml", diags);
    REQUIRE_MESSAGE(pipeline, diags.format());
    factory = etld::find_stage_type("postgres")->configure(*pipeline->find("out"), *pipeline);
    sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
    store = factory->offset_store();
    REQUIRE(store != nullptr);
  }
  ~Rig() {
    sink.reset();
    etld::test::run_idle(io);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  etld::PartitionClaim claim(const std::shared_ptr<TestPartition>& target) {
    std::promise<std::pair<std::vector<etld::PartitionClaim>, std::string>> done;
    store->claim({{"orders", 0, target, group}}, [&](std::vector<etld::PartitionClaim> c, std::string e) {
      done.set_value({std::move(c), std::move(e)});
    });
    auto result = done.get_future().get();
    REQUIRE_MESSAGE(result.second.empty(), result.second);
    REQUIRE(result.first.size() == 1);
    return result.first[0];
  }
  // Events of partition 0 with offsets [from, to), ids = offsets, on `target`.
  Batch events(const std::shared_ptr<TestPartition>& target, std::int64_t from, std::int64_t to,
               std::int64_t bad = -1) {
    target->emitted(from, to);
    Batch b;
    for (auto o = from; o < to; ++o) {
      Event e;
      e.value = o == bad ? R"({"id": "not a number"})" : "{\"id\": " + std::to_string(o) + "}";
      e.topic = "orders";
      e.partition = 0;
      e.offset = o;
      e.ack = etld::Ack(target, static_cast<std::uint64_t>(o));
      b.push_back(std::move(e));
    }
    return b;
  }
  bool send_and_wait(Batch b) {
    const bool ok = ctx.consume_until_done(*sink, std::move(b), 20s);
    CHECK_MESSAGE(!ctx.error, ctx.failure_text());
    return ok;
  }
};

// Runs kafka -> postgres in process over `n` records per partition of a 2-partition topic, and
// returns the kafka source's stats once `settled` holds for both partitions.
std::vector<etld::KafkaPartitionStats> run_and_observe(
    const std::string& delivery, const std::string& source_extra, int n,
    const std::function<bool(const etld::KafkaPartitionStats&)>& settled, bool& exactly_once) {
  const auto& svc = etld::test::services();
  const auto topic = etld::test::unique_name("eo-stats");
  const auto group = etld::test::unique_name("eo-stats-g");
  etld::test::create_topic(svc.kafka_brokers, topic, 2);
  {
    etld::test::TestProducer producer(svc.kafka_brokers);
    for (int part = 0; part < 2; ++part)
      for (int i = 0; i < n; ++i) {
        etld::test::TestRecord r;
        r.partition = part;
        r.value = "{\"id\": " + std::to_string(part * n + i) + "}";
        producer.send(topic, r);
      }
    producer.flush();
  }
  const std::string table = "eo_stats_" + std::to_string(::getpid()) + "_" + delivery;
  const std::string yaml =
      "pipeline: stats\nstages:\n  in:\n    type: kafka\n    brokers: " + svc.kafka_brokers +
      "\n    topics: [" + topic + "]\n    group: " + group + "\n" + source_extra +
      "  out:\n    type: postgres\n    inputs: [in]\n    dsn: '" + svc.pg_dsn + "'\n    table: " + table +
      "\n    create_table: true\n    delivery: " + delivery + "\n    columns: { id: bigint }\n";
  etld::Diagnostics diags("stats.yaml");
  auto cfg = etld::load_pipeline_text(yaml, "stats.yaml", diags);
  REQUIRE_MESSAGE(cfg, diags.format());
  etld::Pipeline p(std::shared_ptr<const etld::PipelineConfig>(std::move(cfg)));
  p.start();
  std::vector<etld::KafkaPartitionStats> parts;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    parts.clear();
    for (auto& s : etld::kafka_source_stats(p.metrics()))
      if (s.group == group) {
        exactly_once = s.exactly_once;
        parts = s.partitions;
      }
    if (parts.size() == 2 && std::all_of(parts.begin(), parts.end(), settled)) break;
    std::this_thread::sleep_for(50ms);
  }
  p.stop();
  CHECK(p.wait_for(60s));
  CHECK_FALSE(p.error().has_value());
  return parts;
}

}  // namespace

TEST_SUITE("postgres exactly once") {
  TEST_CASE("per partition: fetched, in flight, written, committed, epoch, and duplicate exposure") {
    constexpr int n = 150;
    bool exactly_once = false;
    // exactly_once: written is what PostgreSQL holds; Kafka's commit follows it; no exposure.
    auto parts = run_and_observe(
        "exactly_once", "", n,
        [](const etld::KafkaPartitionStats& s) { return s.written_offset == n && s.committed_offset == n; },
        exactly_once);
    CHECK(exactly_once);
    REQUIRE(parts.size() == 2);
    for (const auto& s : parts) {
      CHECK(s.fetched_offset == n);
      CHECK(s.written_offset == n);
      CHECK(s.committed_offset == n);
      CHECK(s.in_flight == 0);
      CHECK(s.epoch >= 1);
      CHECK(s.duplicate_exposure == 0);
    }
    // at_least_once with commits held back: everything written is exposed to a replay.
    parts = run_and_observe(
        "at_least_once", "    commit_interval: 1h\n", n,
        [](const etld::KafkaPartitionStats& s) { return s.written_offset == n; }, exactly_once);
    CHECK_FALSE(exactly_once);
    REQUIRE(parts.size() == 2);
    for (const auto& s : parts) {
      CHECK(s.written_offset == n);
      CHECK(s.committed_offset == -1);
      CHECK(s.duplicate_exposure == static_cast<std::uint64_t>(n));
      CHECK(s.epoch == 0);
    }
  }

  TEST_CASE("rows, dead letters and the partition's next offset commit together; a claim bumps the epoch") {
    Rig rig;
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto target = std::make_shared<TestPartition>();
    auto first = rig.claim(target);
    CHECK(first.epoch == 1);
    CHECK(first.next_offset == -1);

    REQUIRE(rig.send_and_wait(rig.events(target, 0, 100, /*bad=*/42)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "99");
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table + "_dead_letters WHERE \"offset\" = 42") == "1");
    const std::string where = " FROM " + rig.table + "_offsets WHERE consumer_group = '" + rig.group + "'";
    CHECK(scalar(db, "SELECT next_offset || '/' || epoch || '/' || topic || '/' || \"partition\"" + where) ==
          "100/1/orders/0");
    CHECK(rig.store->written("orders", 0) == 100);
    CHECK(target->count(AckStatus::done) == 99);
    CHECK(target->count(AckStatus::dead_lettered) == 1);

    // A restart's claim resumes where the rows stopped, under a new epoch.
    auto again = std::make_shared<TestPartition>();
    auto second = rig.claim(again);
    CHECK(second.epoch == 2);
    CHECK(second.next_offset == 100);
    // Events of the assignment we no longer hold are dropped, not written.
    REQUIRE(rig.send_and_wait(rig.events(target, 100, 150)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "99");
    CHECK(target->count(AckStatus::done) == 149);
    REQUIRE(rig.send_and_wait(rig.events(again, 100, 150)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "149");
    CHECK(scalar(db, "SELECT next_offset || '/' || epoch" + where) == "150/2");
  }

  TEST_CASE("a row the table refuses is found and dead-lettered inside the transaction") {
    Rig rig;
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto target = std::make_shared<TestPartition>();
    rig.claim(target);
    REQUIRE(rig.send_and_wait(rig.events(target, 0, 10)));  // creates the table
    db.exec("ALTER TABLE " + rig.table + " ADD CONSTRAINT no_77 CHECK (id <> 77)");

    // The batch's single COPY fails on row 77; the transaction starts over and bisects.
    REQUIRE(rig.send_and_wait(rig.events(target, 10, 100)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "99");
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table + " WHERE id = 77") == "0");
    CHECK(scalar(db, "SELECT sqlstate FROM " + rig.table + "_dead_letters WHERE \"offset\" = 77") == "23514");
    CHECK(scalar(db, "SELECT next_offset FROM " + rig.table + "_offsets WHERE consumer_group = '" +
                         rig.group + "'") == "100");
    CHECK(target->count(AckStatus::done) == 99);
    CHECK(target->count(AckStatus::dead_lettered) == 1);
  }

  TEST_CASE("a transient failure of the offsets table's DDL does not poison the claim's connection") {
    Rig rig;
    etld::pg::PgConnection holder(etld::test::services().pg_dsn);
    const std::string key = "etld:" + rig.table + "_offsets";
    holder.exec_params("SELECT pg_advisory_lock(hashtext($1))", {key});
    auto target = std::make_shared<TestPartition>();
    std::promise<std::pair<std::vector<etld::PartitionClaim>, std::string>> done;
    rig.store->claim({{"orders", 0, target, rig.group}},
                     [&](std::vector<etld::PartitionClaim> c, std::string e) {
                       done.set_value({std::move(c), std::move(e)});
                     });
    // The claim's DDL waits for the lock we hold; cancelling it (57014: transient) aborts its
    // transaction on a connection that stays open. The retry must not run in that transaction.
    const std::string cancel_waiters =
        "SELECT count(pg_cancel_backend(w.pid)) FROM pg_locks w JOIN pg_locks h ON h.locktype = 'advisory' "
        "AND h.granted AND h.pid = pg_backend_pid() AND w.classid = h.classid AND w.objid = h.objid AND "
        "w.objsubid = h.objsubid JOIN pg_stat_activity a ON a.pid = w.pid WHERE w.locktype = 'advisory' AND "
        "NOT w.granted AND a.application_name NOT LIKE 'etld/%'";  // the store's, not the sink's
    int cancelled = 0;
    for (int i = 0; i < 200 && cancelled == 0; ++i) {
      cancelled = std::stoi(scalar(holder, cancel_waiters));
      if (cancelled == 0) std::this_thread::sleep_for(50ms);
    }
    CHECK(cancelled >= 1);
    holder.exec_params("SELECT pg_advisory_unlock(hashtext($1))", {key});
    auto result = done.get_future();
    REQUIRE(result.wait_for(30s) == std::future_status::ready);
    auto [claims, error] = result.get();
    CHECK_MESSAGE(error.empty(), error);
    REQUIRE(claims.size() == 1);
    CHECK(claims[0].epoch == 1);
  }

  TEST_CASE("a zombie whose partition was claimed elsewhere cannot commit its batch") {
    Rig rig;
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto target = std::make_shared<TestPartition>();
    rig.claim(target);
    REQUIRE(rig.send_and_wait(rig.events(target, 0, 10)));
    // Another instance takes the partition over (as its claim would) and commits further on.
    db.exec("UPDATE " + rig.table +
            "_offsets SET epoch = epoch + 1, next_offset = 20 WHERE consumer_group = '" + rig.group + "'");
    REQUIRE(rig.send_and_wait(rig.events(target, 10, 20)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "10");
    CHECK(scalar(db, "SELECT next_offset || '/' || epoch FROM " + rig.table + "_offsets") == "20/2");
    CHECK(rig.store->written("orders", 0) == -1);  // the claim is void: nothing more to commit
    CHECK(rig.store->epoch("orders", 0) == 0);
    // Its later batches are dropped without touching the table.
    REQUIRE(rig.send_and_wait(rig.events(target, 20, 30)));
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "10");
    CHECK(target->count(AckStatus::failed) == 0);
  }

  TEST_CASE("a row whose earlier offsets are still on their way waits for them") {
    Rig rig;
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto target = std::make_shared<TestPartition>();
    rig.claim(target);
    Batch early = rig.events(target, 0, 5);
    Batch late = rig.events(target, 5, 10);
    // 5..9 arrive first: nothing below them has settled, so committing them would store an
    // offset that a restart would read past... or before: they wait.
    rig.ctx.consume(*rig.sink, std::move(late));
    etld::test::run_until(
        rig.io, [] { return false; }, 200ms);
    CHECK(rig.ctx.done_total == 0);
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "0");
    rig.ctx.consume(*rig.sink, std::move(early));
    REQUIRE(etld::test::run_until(
        rig.io, [&] { return rig.ctx.done_total >= 10; }, 20s));
    CHECK(scalar(db, "SELECT count(*) || '/' || count(DISTINCT id) FROM " + rig.table) == "10/10");
    CHECK(scalar(db, "SELECT next_offset FROM " + rig.table + "_offsets") == "10");
  }

  TEST_CASE("rows of an assignment no longer held are not written, even between rows that are") {
    // A revoke that came while events travelled: one batch holds the current claim's events
    // with the old assignment's between them, all in one COPY text. Writing the span from the
    // first kept row to the last also wrote the dropped ones, without their offsets: the new
    // owner read them again, and a merged table counted them twice.
    Rig rig;
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto stale = std::make_shared<TestPartition>();
    auto current = std::make_shared<TestPartition>();
    rig.claim(current);
    Batch b = rig.events(current, 0, 5);
    for (auto& e : rig.events(stale, 100, 105)) b.push_back(std::move(e));
    for (auto& e : rig.events(current, 5, 10)) b.push_back(std::move(e));
    REQUIRE(rig.send_and_wait(std::move(b)));
    CHECK(scalar(db, "SELECT count(*) || '/' || min(id) || '/' || max(id) FROM " + rig.table) == "10/0/9");
    CHECK(scalar(db, "SELECT next_offset FROM " + rig.table + "_offsets") == "10");
  }

  TEST_CASE("configurations under which exactly_once cannot hold are rejected at the culprit") {
    const std::string g = "g";
    CHECK(config_error(pipeline_yaml(g, "t", "")).empty());
    CHECK(config_error(pipeline_yaml(g, "t", "", "  mid: { type: map, inputs: [in], set: { x: '1' } }\n"))
              .empty());
    auto err = config_error(pipeline_yaml(g, "t", "    concurrency: 2\n"));
    CHECK(err.find("p.yaml:") == 0);
    CHECK(err.find("one sink instance") != std::string::npos);
    CHECK(config_error(pipeline_yaml(g, "t", "    concurrency: 2\n    partition_by: _partition\n")).empty());
    err = config_error(
        pipeline_yaml(g, "t", "", "  mid: { type: map, inputs: [in], concurrency: 2, set: { x: '1' } }\n"));
    CHECK(err.find("in order") != std::string::npos);
    err =
        config_error(pipeline_yaml(g, "t", "", "  mid: { type: flat_map, inputs: [in], explode: items }\n"));
    CHECK(err.find("does not keep one output per input record") != std::string::npos);
    err = config_error(pipeline_yaml(g, "t", "    dead_letter: { topic: dlq, brokers: 127.0.0.1:1 }\n"));
    CHECK(err.find("cannot join the PostgreSQL transaction") != std::string::npos);
    err = config_error(
        "stages:\n  gen: { type: generate, count: 1 }\n  out:\n    type: postgres\n    inputs: [gen]\n"
        "    dsn: 'host=x'\n    table: t\n    delivery: exactly_once\n    columns: { id: bigint }\n");
    CHECK(err.find("needs a source that can keep its positions") != std::string::npos);
    CHECK(err.find("p.yaml:8:") == 0);  // at `delivery`
    err = config_error(pipeline_yaml(
        g, "t", "",
        "  mid: { type: map, inputs: [in], set: { x: '1' } }\n  other: { type: stdout, inputs: [in] }\n"));
    CHECK(err.find("must feed nothing else") != std::string::npos);
  }

  TEST_CASE("guard and offsets_table are checked where they are written") {
    auto sink = [](const std::string& extra) {
      return config_error(
          "stages:\n  gen: { type: generate, count: 1 }\n  out:\n    type: postgres\n    inputs: [gen]\n"
          "    dsn: 'host=x'\n    table: t\n    columns: { id: bigint, v: bigint }\n" +
          extra);
    };
    CHECK(sink("    mode: upsert\n    key: [id]\n    guard: v\n").empty());
    auto err = sink("    guard: v\n");
    CHECK(err.find("p.yaml:9:") == 0);
    CHECK(err.find("applies to mode upsert only") != std::string::npos);
    err = sink("    mode: upsert\n    key: [id]\n    guard: w\n");
    CHECK(err.find("guard column 'w' is not in 'columns'") != std::string::npos);
    err = sink("    mode: upsert\n    key: [id]\n    guard: id\n");
    CHECK(err.find("is a key column") != std::string::npos);
    err = sink("    offsets_table: o\n");
    CHECK(err.find("needs delivery: exactly_once") != std::string::npos);
  }
}
