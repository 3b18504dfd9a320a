// The postgres sink's `mode: merge` against a real PostgreSQL (and, for exactly once end to end,
// the real broker) from scripts/dev-env: the table derived from the stage upstream's declared
// output, partial rows folded into stored ones (several batches, several partials of one key in
// one batch, null group values), bad rows dead-lettered, and partial records whose joined acks
// cover several offsets committed exactly once with their partition's next offset. The stage
// upstream is `test_partials`, registered here: the window stage is not what is under test.
#include <doctest/doctest.h>

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/event.hpp"
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
using etld::Value;
using etld::test::TestPartition;

namespace {

// Per input batch, one partial record per (source partition, g) of the records {"g": .., "v": n}
// in it: n (count), hi (max v), total (sum v) and avg, with the joined acks of exactly those
// records, their partition and their largest offset: what the window stage with emit: updates
// emits, reduced to what the sink needs.
class PartialsTransform final : public etld::Transform {
 public:
  void process(Batch& in, Batch& out) override {
    struct Group {
      Event first;  // topic and partition
      Value g;
      std::int64_t n = 0, hi = 0, total = 0, offset = -1;
      etld::AckBatch acks;
    };
    std::map<std::tuple<std::string, std::int32_t, std::string>, Group> groups;
    for (auto& e : in) {
      const Value& r = e.record();
      const Value* g = r.find("g");
      const Value* v = r.find("v");
      auto& grp = groups[{e.topic.str(), e.partition, g ? g->to_json() : "null"}];
      if (grp.offset < 0) {
        grp.first.topic = e.topic;
        grp.first.partition = e.partition;
        grp.g = g ? *g : Value();
        grp.hi = v->as_int();
      }
      ++grp.n;
      grp.hi = std::max(grp.hi, v->as_int());
      grp.total += v->as_int();
      grp.offset = std::max(grp.offset, e.offset);
      grp.acks.add(e.ack);
    }
    for (auto& [key, grp] : groups) {
      Event p;
      p.topic = grp.first.topic;
      p.partition = grp.first.partition;
      p.offset = grp.offset;
      p.ack = grp.acks.join();
      p.set_record(etld::Object{{"g", grp.g},
                                {"n", grp.n},
                                {"hi", grp.hi},
                                {"total", grp.total},
                                {"avg", static_cast<double>(grp.total) / static_cast<double>(grp.n)}});
      out.push_back(std::move(p));
    }
  }
};

struct PartialsFactory : etld::StageFactory {
  bool per_partition = true;
  std::unique_ptr<etld::Transform> make_transform(int) override {
    return std::make_unique<PartialsTransform>();
  }
  std::vector<etld::OutputColumn> output_columns() const override {
    return {{"g", "text", true, ""},
            {"n", "bigint", false, "{old:n} + {new:n}"},
            {"hi", "bigint", false, "GREATEST({old:hi}, {new:hi})"},
            {"total", "numeric", false, "{old:total} + {new:total}"},
            {"avg", "numeric", false, "({old:total} + {new:total}) / ({old:n} + {new:n})"},
            // A type etld does not convert (declared as written), without a rule (the incoming
            // value wins).
            {"tag", "varchar(20)", false, ""}};
  }
  bool partials_per_partition() const override { return per_partition; }
};

const etld::StageRegistration partials_reg{etld::StageType{
    .name = "test_partials",
    .role = etld::Role::transform,
    .summary = "test transform: per batch, partial count/max/sum/avg per (partition, g) with joined acks",
    .options = {{.name = "per_partition",
                 .kind = etld::OptionKind::boolean,
                 .doc = "declare partials_per_partition",
                 .default_text = "true"}},
    .configure = [](const etld::StageConfig& sc,
                    const etld::PipelineConfig&) -> std::unique_ptr<etld::StageFactory> {
      auto f = std::make_unique<PartialsFactory>();
      f->per_partition = sc.options.get_bool("per_partition");
      return f;
    }}};

std::string scalar(etld::pg::PgConnection& c, const std::string& sql) {
  auto r = c.query(sql);
  return PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
}

// The table's rows as "g|n|hi|total|avg(4 places)" in g order, nulls as <null>.
std::string table_text(etld::pg::PgConnection& c, const std::string& table) {
  return scalar(c,
                "SELECT string_agg(coalesce(g, '<null>') || '|' || n || '|' || hi || '|' || total || '|' || "
                "round(avg, 4), ' ' ORDER BY g NULLS FIRST) FROM " +
                    table);
}

std::string config_error(const std::string& yaml) {
  etld::Diagnostics diags("p.yaml");
  auto p = etld::load_pipeline_text(yaml, "p.yaml", diags);
  return p ? std::string() : diags.format();
}

// kafka -> agg (test_partials, or `middle`) -> out (postgres, mode merge, `sink_extra`).
std::string merge_yaml(const std::string& brokers, const std::string& topic, const std::string& group,
                       const std::string& table, const std::string& sink_extra,
                       const std::string& middle = "", const std::string& source_extra = "") {
  return "pipeline: merge\nstages:\n  in:\n    type: kafka\n    brokers: " + brokers + "\n    topics: [" +
         topic + "]\n    group: " + group + "\n" + source_extra +
         (middle.empty() ? "  agg: { type: test_partials, inputs: [in] }\n" : middle) +
         "  out:\n    type: postgres\n    inputs: [agg]\n    dsn: '" + etld::test::services().pg_dsn +
         "'\n    table: " + table + "\n    mode: merge\n    create_table: true\n" +
         "    batch: { max_rows: 1000, max_wait: 10ms }\n" + sink_extra;
}

int& counter() {
  static int n = 0;
  return n;
}

// The merge sink driven directly: partial events in, the table and the acks observed.
struct Rig {
  boost::asio::io_context io;
  etld::test::FakeSinkContext ctx{io, "out"};
  std::unique_ptr<etld::PipelineConfig> pipeline;
  std::unique_ptr<etld::StageFactory> factory;
  std::unique_ptr<etld::Sink> sink;
  std::string group = etld::test::unique_name("merge-group");
  std::string table = "merge_" + std::to_string(::getpid()) + "_" + std::to_string(++counter());
  std::shared_ptr<TestPartition> target = std::make_shared<TestPartition>();
  std::int64_t next_offset = 0;

  explicit Rig(bool exactly_once, const std::string& sink_extra = "") {
    etld::Diagnostics diags("p.yaml");
    pipeline = etld::load_pipeline_text(
        merge_yaml("127.0.0.1:1", "orders", group, table,
                   sink_extra + (exactly_once ? "    delivery: exactly_once\n    offsets_table: " + table +
                                                    "_offsets\n"
                                              : "")),
        "p.yaml", diags);
    REQUIRE_MESSAGE(pipeline, diags.format());
    factory = etld::find_stage_type("postgres")->configure(*pipeline->find("out"), *pipeline);
    sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
    if (exactly_once) {
      std::promise<std::string> done;
      factory->offset_store()->claim(
          {{"orders", 0, target, group}},
          [&](std::vector<etld::PartitionClaim>, std::string e) { done.set_value(e); });
      const std::string error = done.get_future().get();
      REQUIRE_MESSAGE(error.empty(), error);
    }
  }
  ~Rig() {
    sink.reset();
    etld::test::run_idle(io);
  }
  // A partial of partition 0 covering `count` new offsets (joined acks), record as given.
  Event partial(const std::string& record, int count) {
    target->emitted(next_offset, next_offset + count);
    etld::AckBatch acks;
    Event e;
    for (int i = 0; i < count; ++i, ++next_offset) {
      etld::Ack a(target, static_cast<std::uint64_t>(next_offset));
      acks.add(a);
      e.offset = next_offset;
    }
    e.topic = "orders";
    e.partition = 0;
    e.ack = acks.join();
    e.set_record(etld::parse_json(record));
    return e;
  }
  // Partials of partition 0 that all cover the same `count` new offsets, one per record: one
  // input batch that went into several windows (sliding), its joined ack split among them.
  std::vector<Event> split_partials(const std::vector<std::string>& records, int count) {
    Event joined = partial(records.front(), count);
    std::vector<etld::Ack> acks = joined.ack.split(records.size());
    std::vector<Event> out;
    for (std::size_t i = 0; i < records.size(); ++i) {
      Event e = joined.clone();
      e.set_record(etld::parse_json(records[i]));
      e.ack = std::move(acks[i]);
      out.push_back(std::move(e));
    }
    return out;
  }
  bool send_and_wait(Batch b) {
    const bool ok = ctx.consume_until_done(*sink, std::move(b), 20s);
    CHECK_MESSAGE(!ctx.error, ctx.failure_text());
    return ok;
  }
};

template <class... Events>
Batch batch_of(Events&&... events) {
  Batch b;
  (b.push_back(std::forward<Events>(events)), ...);
  return b;
}

}  // namespace

TEST_SUITE("postgres merge") {
  TEST_CASE("create_table derives the columns and a key constraint that holds nulls equal") {
    Rig rig(false, "    columns: { hi: integer }\n");  // a derived column's type overridden
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    REQUIRE(etld::test::run_until(
        rig.io, [&] { return scalar(db, "SELECT to_regclass('" + rig.table + "') IS NOT NULL") == "t"; },
        20s));
    CHECK(scalar(db,
                 "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                 "information_schema.columns WHERE table_name = '" +
                     rig.table + "'") ==
          "g text, n bigint, hi integer, total numeric, avg numeric, tag character varying");
    CHECK(scalar(db,
                 "SELECT string_agg(pg_get_constraintdef(oid), '; ') FROM pg_constraint WHERE conrelid = '" +
                     rig.table + "'::regclass") == "UNIQUE NULLS NOT DISTINCT (g)");
  }

  TEST_CASE("partials fold exactly: across batches, several of one key in a batch, and null groups") {
    Rig rig(false);
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    // One batch, three partials of 'a' (three rounds), two of the null group, one of 'b'.
    REQUIRE(rig.send_and_wait(
        batch_of(rig.partial(R"({"g": "a", "n": 2, "hi": 5, "total": 7, "avg": 3.5, "tag": "first"})", 2),
                 rig.partial(R"({"g": null, "n": 1, "hi": 4, "total": 4, "avg": 4})", 1),
                 rig.partial(R"({"g": "a", "n": 3, "hi": 9, "total": 10, "avg": 3.33})", 3),
                 rig.partial(R"({"g": "b", "n": 1, "hi": 1, "total": 1, "avg": 1})", 1),
                 rig.partial(R"({"n": 2, "hi": 6, "total": 8, "avg": 4})", 2),  // g missing: null too
                 rig.partial(R"({"g": "a", "n": 1, "hi": 2, "total": 2, "avg": 2, "tag": "third"})", 1))));
    CHECK(table_text(db, rig.table) == "<null>|3|6|12|4.0000 a|6|9|19|3.1667 b|1|1|1|1.0000");
    CHECK(scalar(db, "SELECT tag FROM " + rig.table + " WHERE g = 'a'") == "third");  // folded last
    // A later batch folds into the stored rows.
    REQUIRE(
        rig.send_and_wait(batch_of(rig.partial(R"({"g": "b", "n": 4, "hi": 8, "total": 20, "avg": 5})", 4),
                                   rig.partial(R"({"g": null, "n": 1, "hi": 1, "total": 1, "avg": 1})", 1))));
    CHECK(table_text(db, rig.table) == "<null>|4|6|13|3.2500 a|6|9|19|3.1667 b|5|8|21|4.2000");
    CHECK(rig.target->count(AckStatus::done) == 15);
  }

  TEST_CASE("a partial the table refuses is dead-lettered and the others of its batch still fold") {
    Rig rig(false);
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    REQUIRE(rig.send_and_wait(
        batch_of(rig.partial(R"({"g": "big", "n": 9223372036854775807, "hi": 1, "total": 1, "avg": 1})", 1),
                 rig.partial(R"({"g": "a", "n": 1, "hi": 1, "total": 1, "avg": 1})", 1))));
    // Folding n = 1 into bigint's largest value overflows (22003) inside PostgreSQL: bisection
    // finds that one row; the other rows of 'a' (two rounds) fold in.
    REQUIRE(
        rig.send_and_wait(batch_of(rig.partial(R"({"g": "a", "n": 2, "hi": 3, "total": 4, "avg": 2})", 1),
                                   rig.partial(R"({"g": "big", "n": 1, "hi": 1, "total": 1, "avg": 1})", 1),
                                   rig.partial(R"({"g": "a", "n": 3, "hi": 2, "total": 3, "avg": 1})", 1))));
    CHECK(scalar(db, "SELECT n || '|' || hi || '|' || total FROM " + rig.table + " WHERE g = 'a'") ==
          "6|3|8");
    CHECK(scalar(db, "SELECT n FROM " + rig.table + " WHERE g = 'big'") == "9223372036854775807");
    CHECK(scalar(db, "SELECT sqlstate || ' ' || \"offset\" FROM " + rig.table + "_dead_letters") ==
          "22003 3");
    CHECK(rig.target->count(AckStatus::dead_lettered) == 1);
    CHECK(rig.target->count(AckStatus::done) == 4);
  }

  TEST_CASE(
      "exactly_once: every offset a partial covers commits with it, and a partial waits for earlier ones") {
    Rig rig(true);
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    Event first = rig.partial(R"({"g": "a", "n": 3, "hi": 3, "total": 6, "avg": 2})", 3);     // 0..2
    Event second = rig.partial(R"({"g": "a", "n": 2, "hi": 5, "total": 9, "avg": 4.5})", 2);  // 3..4
    Event third = rig.partial(R"({"g": "b", "n": 5, "hi": 5, "total": 5, "avg": 1})", 5);     // 5..9
    // 3..4 and 5..9 first: offsets 0..2 are still on their way, so both wait.
    rig.ctx.consume(*rig.sink, batch_of(std::move(second), std::move(third)));
    etld::test::run_until(
        rig.io, [] { return false; }, 300ms);
    CHECK(rig.ctx.done_total == 0);
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "0");
    rig.ctx.consume(*rig.sink, batch_of(std::move(first)));
    REQUIRE(etld::test::run_until(
        rig.io, [&] { return rig.ctx.done_total >= 3; }, 20s));
    CHECK(table_text(db, rig.table) == "a|5|5|15|3.0000 b|5|5|5|1.0000");
    CHECK(scalar(db, "SELECT next_offset FROM " + rig.table + "_offsets WHERE consumer_group = '" +
                         rig.group + "'") == "10");
    CHECK(rig.target->count(AckStatus::done) == 10);
  }

  TEST_CASE("exactly_once: the partials that share one split ack commit together or not at all") {
    Rig rig(true);
    etld::pg::PgConnection db(etld::test::services().pg_dsn);
    auto parts = rig.split_partials({R"({"g": "w1", "n": 4, "hi": 4, "total": 10, "avg": 2.5})",
                                     R"({"g": "w2", "n": 4, "hi": 4, "total": 10, "avg": 2.5})"},
                                    4);  // offsets 0..3 in two windows
    rig.ctx.consume(*rig.sink, batch_of(std::move(parts[0])));
    etld::test::run_until(
        rig.io, [] { return false; }, 300ms);
    // Committing w1 alone would store offset 4, and a restart would never add 0..3 to w2.
    CHECK(rig.ctx.done_total == 0);
    CHECK(scalar(db, "SELECT count(*) FROM " + rig.table) == "0");
    rig.ctx.consume(*rig.sink, batch_of(std::move(parts[1])));
    REQUIRE(etld::test::run_until(
        rig.io, [&] { return rig.ctx.done_total >= 2; }, 20s));
    CHECK(table_text(db, rig.table) == "w1|4|4|10|2.5000 w2|4|4|10|2.5000");
    CHECK(scalar(db, "SELECT next_offset FROM " + rig.table + "_offsets WHERE consumer_group = '" +
                         rig.group + "'") == "4");
    CHECK(rig.target->count(AckStatus::done) == 4);
  }

  TEST_CASE("mode merge is checked where it is written") {
    auto sink = [](const std::string& extra, const std::string& middle = "") {
      return config_error(merge_yaml("127.0.0.1:1", "t", "g", "t", extra, middle));
    };
    CHECK(sink("").empty());
    CHECK(sink("    delivery: exactly_once\n").empty());
    auto err = sink("", "  agg: { type: map, inputs: [in], set: { x: '1' } }\n");
    CHECK(err.find("p.yaml:14:") == 0);  // at `mode`
    CHECK(err.find("mode: merge needs a stage upstream that declares its output, such as window with emit: "
                   "updates; stage 'agg' (type map) does not") != std::string::npos);
    CHECK(sink("    columns: { n: numeric }\n").empty());  // another type for a derived column
    err = sink("    columns: { nn: numeric }\n");
    CHECK(err.find("p.yaml:17:") == 0);
    CHECK(err.find("column 'nn' is not one of stage 'agg''s output") != std::string::npos);
    err = sink("    columns: { n: { from: x, type: bigint } }\n");
    CHECK(err.find("column 'n' takes only a type") != std::string::npos);
    err = sink("    columns: { n: bigintt }\n");
    CHECK(err.find("column 'n': unknown type 'bigintt'") != std::string::npos);
    err = sink("    key: [g]\n");
    CHECK(err.find("option 'key' does not apply to mode: merge") != std::string::npos);
    err = sink("    delete_on_tombstone: true\n");
    CHECK(err.find("delete_on_tombstone does not apply to mode: merge") != std::string::npos);
    err = sink("    guard: n\n");
    CHECK(err.find("applies to mode upsert only") != std::string::npos);
    // Every other mode maps its columns, or takes them from the records (schema_columns.hpp).
    err = config_error(
        "stages:\n  gen: { type: generate, count: 1 }\n  out:\n    type: postgres\n    inputs: [gen]\n"
        "    dsn: 'host=x'\n    table: t\n");
    CHECK(err.empty());
  }

  TEST_CASE("exactly_once lets a stage of per-partition partials sit between the source and the sink") {
    auto err = config_error(merge_yaml("127.0.0.1:1", "t", "g", "t", "    delivery: exactly_once\n"));
    CHECK(err.empty());
    // The same stage without the promise is refused, at the sink's `delivery`.
    err = config_error(merge_yaml("127.0.0.1:1", "t", "g", "t", "    delivery: exactly_once\n",
                                  "  agg: { type: test_partials, inputs: [in], per_partition: false }\n"));
    CHECK(err.find("p.yaml:17:") == 0);
    CHECK(err.find(
              "stage 'agg' (type test_partials) between the source and the sink does not keep one output per "
              "input record") != std::string::npos);
  }

  TEST_CASE("kafka -> partials -> merge exactly once: a restart mid-way counts nothing twice") {
    const auto& svc = etld::test::services();
    const auto topic = etld::test::unique_name("merge-eo");
    const auto group = etld::test::unique_name("merge-eo-g");
    const std::string table = "merge_eo_" + std::to_string(::getpid());
    constexpr int partitions = 3;
    etld::test::create_topic(svc.kafka_brokers, topic, partitions);
    // The reference, computed from what is produced: per g, count, max and sum.
    struct Ref {
      std::int64_t n = 0, hi = 0, total = 0;
    };
    std::map<std::string, Ref> ref;
    int produced = 0;
    auto produce = [&](int count) {
      etld::test::TestProducer producer(svc.kafka_brokers);
      for (int i = 0; i < count; ++i, ++produced) {
        const int v = (produced * 37) % 101;
        const char* groups[] = {"x", "y", "z", nullptr};
        const char* g = groups[produced % 4];
        etld::test::TestRecord r;
        r.partition = produced % partitions;
        r.value = std::string("{\"g\": ") + (g ? "\"" + std::string(g) + "\"" : "null") +
                  ", \"v\": " + std::to_string(v) + "}";
        producer.send(topic, r);
        Ref& x = ref[g ? g : "<null>"];
        x.hi = x.n == 0 ? v : std::max<std::int64_t>(x.hi, v);
        ++x.n;
        x.total += v;
      }
      producer.flush();
    };
    etld::pg::PgConnection db(svc.pg_dsn);
    auto committed = [&] {
      return scalar(db, "SELECT coalesce(sum(next_offset), 0) FROM " + table +
                            "_offsets WHERE consumer_group = '" + group + "'");
    };
    auto run = [&](const std::function<bool()>& until) {
      etld::Diagnostics diags("merge.yaml");
      auto cfg = etld::load_pipeline_text(
          merge_yaml(svc.kafka_brokers, topic, group, table,
                     "    delivery: exactly_once\n    offsets_table: " + table + "_offsets\n", "",
                     "    max_in_flight_per_partition: 8\n"),  // slow enough to stop part of the way
          "merge.yaml", diags);
      REQUIRE_MESSAGE(cfg, diags.format());
      etld::Pipeline p(std::shared_ptr<const etld::PipelineConfig>(std::move(cfg)));
      p.start();
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < deadline && !until()) std::this_thread::sleep_for(20ms);
      p.stop();
      CHECK(p.wait_for(60s));
      CHECK_FALSE(p.error().has_value());
    };
    produce(600);
    // Stopped as soon as something is committed: the rest is read again from the stored offsets.
    run([&] {
      try {
        return committed() != "0";
      } catch (const std::exception&) {
        return false;  // the offsets table is not there yet
      }
    });
    const std::string mid = committed();
    CHECK(mid != "0");
    WARN_MESSAGE(mid != "600", "the first run read everything before it was stopped");
    produce(900);
    run([&] { return committed() == std::to_string(produced); });
    CHECK(committed() == "1500");
    std::string want;
    for (const auto& [g, x] : ref) {
      if (!want.empty()) want += ' ';
      want += g + "|" + std::to_string(x.n) + "|" + std::to_string(x.hi) + "|" + std::to_string(x.total);
    }
    CHECK(scalar(db,
                 "SELECT string_agg(coalesce(g, '<null>') || '|' || n || '|' || hi || '|' || total, ' ' "
                 "ORDER BY g NULLS FIRST) FROM " +
                     table) == want);
    CHECK(scalar(db, "SELECT count(*) FROM " + table + "_dead_letters") == "0");
  }
}
