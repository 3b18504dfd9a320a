// One postgres sink writing many tables (connectors/postgres/pg_routing.hpp): table templates
// ({topic}, mode debezium's {source.table}), tables: mappings with per-table columns, the
// configuration mistakes located at their option, and against a real PostgreSQL
// (scripts/dev-env): three topics into three tables with a poison record in one (only that
// table's dead letters grow), a name beyond 63 bytes and an unmapped topic dead-lettered with
// their reasons, max_tables, delivery: exactly_once committing every table, a row the server
// refuses and the offsets in one transaction, and `validate --against-db` checking every table of
// `tables:`.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/offset_store.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/postgres_sink_harness.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_partition.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;
using etld::Batch;
using etld::Event;

namespace {

using etld::test::Db;
using etld::test::dsn;

std::string unique(const std::string& base) { return etld::test::unique_name("rt", base); }

std::string config_error(const std::string& yaml) { return etld::test::postgres_option_error(yaml); }

// The sink fed events of several topics (offset = ack token).
struct Sink : etld::test::PostgresSinkHarness {
  Sink(const std::string& name, const std::string& options) : PostgresSinkHarness(name, options, "routing") {}
  // One batch of (topic, value) pairs; waits until all of it is settled.
  void send(const std::vector<std::pair<std::string, std::optional<std::string>>>& events) {
    Batch b;
    for (const auto& [topic, value] : events) {
      Event e;
      e.has_value = value.has_value();
      if (value) e.value = *value;
      e.topic = topic;
      e.partition = 0;
      number(e);
      b.push_back(std::move(e));
    }
    consume(std::move(b));
  }
};

std::string q(const std::string& name) { return "\"" + name + "\""; }

}  // namespace

TEST_SUITE("postgres sink routing") {
  TEST_CASE("configuration: templates and tables checked, mistakes located at their option") {
    CHECK(config_error("table: \"raw_{topic}\"\ncolumns: {id: bigint}\n") == "");
    CHECK(config_error("table: \"replica.{topic}\"\ncolumns: {id: bigint}\n") == "");
    CHECK(config_error("table: \"raw_{topics}\"\ncolumns: {id: bigint}\n") ==
          "2: table template 'raw_{topics}': unknown placeholder {topics}");
    CHECK(config_error("table: \"{source.table}\"\ncolumns: {id: bigint}\n") ==
          "2: table template '{source.table}': {source.table} needs mode: debezium");
    CHECK(config_error("table: \"{source.schema}.{source.table}\"\nmode: debezium\nkey: [id]\ncolumns: {id: "
                       "bigint}\n") == "");
    CHECK(config_error("table: \"a.b.{topic}\"\ncolumns: {id: bigint}\n") ==
          "2: table template 'a.b.{topic}' has more than one '.' outside placeholders");
    CHECK(config_error("table: \"raw_{topic\"\ncolumns: {id: bigint}\n") ==
          "2: table template 'raw_{topic' has a '{' without its '}'");
    CHECK(config_error("columns: {id: bigint}\n") == "1: the postgres sink needs 'table' or 'tables'");
    CHECK(config_error("table: t\ntables: {a: t}\ncolumns: {id: bigint}\n") ==
          "3: options 'table' and 'tables' exclude each other");
    // An entry's own options: its columns, key and mode; a mistake there is located in it.
    CHECK(config_error("tables:\n  a: ta\n  b: {table: tb, mode: upsert, key: [id], columns: {id: bigint}}\n"
                       "columns: {id: bigint, v: text}\n") == "");
    CHECK(config_error("tables:\n  a: ta\n  b: {table: tb, mode: upsert, columns: {id: bigint}}\n"
                       "columns: {id: bigint}\n") == "4: mode 'upsert' needs 'key' (the conflict target)");
    CHECK(config_error("tables:\n  a: {table: ta, dsn: x}\ncolumns: {id: bigint}\n").find("'dsn'") !=
          std::string::npos);
    CHECK(config_error("tables:\n  a: \"t_{topic}\"\ncolumns: {id: bigint}\n") ==
          "3: tables.a: a table of 'tables' is a name, not a template");
    CHECK(config_error("table: \"{topic}\"\nmax_tables: 0\ncolumns: {id: bigint}\n") ==
          "3: max_tables must be between 1 and 100000");
  }

  TEST_CASE(
      "three topics into three tables by a template: a poison record grows only its table's dead letters") {
    Db db;
    const std::string name = unique("tpl");
    const std::string a = name + "_a", b = name + "_b.x-y";  // a topic's dots and dashes are kept
    Sink s(name, "table: \"" + name +
                     "_{topic}\"\nmode: upsert\nkey: [id]\ncreate_table: true\n"
                     "columns: {id: bigint, v: text}\n");
    auto row = [](int id, const std::string& v) {
      return R"({"id":)" + std::to_string(id) + R"(,"v":")" + v + R"("})";
    };
    s.send({{"a", row(1, "a1")},
            {"b.x-y", row(1, "b1")},
            {"c", row(1, "c1")},
            {"a", row(2, "a2")},
            {"b.x-y", R"({"id":"not a number"})"},
            {"c", row(2, "c2")},
            {"a", row(1, "a1'")}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + q(name + "_a")) ==
          "1=a1',2=a2");
    CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + q(name + "_b.x-y")) ==
          "1=b1");
    CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + q(name + "_c")) ==
          "1=c1,2=c2");
    CHECK(db.scalar("SELECT count(*) FROM " + q(b + "_dead_letters")) == "1");
    CHECK(db.scalar("SELECT error FROM " + q(b + "_dead_letters")) ==
          "table " + b + ": column id (bigint): 'not a number' is not an integer");
    CHECK(db.scalar("SELECT topic || '@' || \"offset\" FROM " + q(b + "_dead_letters")) == "b.x-y@4");
    for (const auto& t : {a, name + "_c"})
      CHECK(db.scalar("SELECT count(*) FROM " + q(t + "_dead_letters")) == "0");
    CHECK(s.acks->count(etld::AckStatus::dead_lettered) == 1);
    CHECK(s.acks->count(etld::AckStatus::done) == 6);

    // A name PostgreSQL would cut is a dead letter in the stage's own dead-letter table, never cut.
    const std::string long_topic(64, 'x');
    s.send({{long_topic, row(3, "long")}, {"a", row(3, "a3")}});
    CHECK(db.scalar("SELECT error FROM " + q(name + "_dead_letters"))
              .find("longer than PostgreSQL's 63-byte names") != std::string::npos);
    CHECK(db.scalar("SELECT count(*) FROM " + q(name + "_a")) == "3");
    for (const auto& t : {a, b, name + "_c"})
      db.exec("DROP TABLE IF EXISTS " + q(t) + ", " + q(t + "_dead_letters"));
    db.exec("DROP TABLE IF EXISTS " + q(name + "_dead_letters"));
  }

  TEST_CASE("tables: per-topic tables with their own columns; an unmapped topic is a dead letter naming it") {
    Db db;
    const std::string name = unique("map");
    const std::string orders = name + "_orders", users = name + "_users";
    db.exec("CREATE TABLE " + orders + " (id bigint, amount numeric)");
    db.exec("CREATE TABLE " + users + " (uid bigint PRIMARY KEY, email text)");
    Sink s(name, "tables:\n  orders: " + orders + "\n  users: {table: " + users +
                     ", mode: upsert, key: [uid], columns: {uid: {from: id, type: bigint}, email: text}}\n"
                     "columns: {id: bigint, amount: numeric}\n");
    s.send({{"orders", R"({"id":1,"amount":12345678901234567.89})"},
            {"users", R"({"id":7,"email":"a@x"})"},
            {"payments", R"({"id":1})"},
            {"users", R"({"id":7,"email":"b@x"})"}});
    CHECK(db.scalar("SELECT amount FROM " + orders) == "12345678901234567.89");
    CHECK(db.scalar("SELECT uid || ' ' || email FROM " + users) == "7 b@x");
    CHECK(db.scalar("SELECT error FROM " + q(name + "_dead_letters")) ==
          "no table for topic 'payments': it is not in 'tables'");
    CHECK(db.scalar("SELECT topic FROM " + q(name + "_dead_letters")) == "payments");
    db.exec("DROP TABLE " + orders + ", " + users + ", " + q(name + "_dead_letters"));
  }

  TEST_CASE("mode debezium: {source.table} names the table; max_tables bounds how many") {
    Db db;
    const std::string name = unique("dbz");
    Sink s(name, "table: \"" + name +
                     "_{source.table}\"\nmode: debezium\nkey: [id]\ncreate_table: true\nmax_tables: 2\n"
                     "columns: {id: bigint, v: text}\n");
    auto change = [](const std::string& table, int id, const std::string& v) {
      return R"({"before":null,"after":{"id":)" + std::to_string(id) + R"(,"v":")" + v +
             R"("},"source":{"schema":"public","table":")" + table + R"("},"op":"c"})";
    };
    s.send({{"srv.public.customers", change("customers", 1, "c1")},
            {"srv.public.orders", change("orders", 1, "o1")},
            {"srv.public.customers", std::nullopt},  // a tombstone: skipped
            {"srv.public.items", change("items", 1, "i1")},
            {"srv.public.customers", R"({"op":"c","after":{"id":2}})"}});
    CHECK(db.scalar("SELECT v FROM " + q(name + "_customers")) == "c1");
    CHECK(db.scalar("SELECT v FROM " + q(name + "_orders")) == "o1");
    CHECK(db.scalar("SELECT to_regclass('" + q(name + "_items") + "')") == "<null>");
    CHECK(db.scalar("SELECT string_agg(error, ' | ' ORDER BY id) FROM " + q(name + "_dead_letters")) ==
          "max_tables (2) reached: no new table " + name +
              "_items for this sink instance | table template '" + name +
              "_{source.table}': the record has no Debezium 'source' block to name its table");
    for (const char* t : {"_customers", "_orders"})
      db.exec("DROP TABLE IF EXISTS " + q(name + t) + ", " + q(name + t + "_dead_letters"));
    db.exec("DROP TABLE " + q(name + "_dead_letters"));
  }

  TEST_CASE("exactly_once: three tables, a row one of them refuses, and every offset in one transaction") {
    Db db;
    const std::string name = unique("eo");
    // Table b refuses id 5 on the server (a CHECK): bisected out inside the one transaction.
    db.exec("CREATE TABLE " + q(name + "_b") + " (id bigint CHECK (id <> 5), off bigint)");
    const std::string group = name + "_g";
    const std::string yaml =
        "pipeline: eo\nstages:\n  in:\n    type: kafka\n    brokers: 127.0.0.1:1\n    topic_pattern: 'x.*'\n"
        "    group: " +
        group + "\n  out:\n    type: postgres\n    inputs: [in]\n    dsn: '" + dsn() + "'\n    table: \"" +
        name + "_{topic}\"\n    create_table: true\n    delivery: exactly_once\n    offsets_table: " + name +
        "_offsets\n    batch: { max_rows: 1000, max_wait: 10ms }\n    columns:\n"
        "      id: { from: id, type: bigint, required: true }\n      off: { from: _offset, type: bigint }\n";
    etld::Diagnostics diags("p.yaml");
    auto pipeline = etld::load_pipeline_text(yaml, "p.yaml", diags);
    REQUIRE_MESSAGE(pipeline, diags.format());
    boost::asio::io_context io;
    etld::test::FakeSinkContext ctx{io, "out"};
    auto factory = etld::find_stage_type("postgres")->configure(*pipeline->find("out"), *pipeline);
    auto sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
    auto store = factory->offset_store();
    REQUIRE(store != nullptr);
    std::vector<std::shared_ptr<etld::test::TestPartition>> targets;
    std::vector<etld::PartitionClaimRequest> wanted;
    for (const char* topic : {"a", "b", "c"}) {
      targets.push_back(std::make_shared<etld::test::TestPartition>());
      wanted.push_back({topic, 0, targets.back(), group});
    }
    std::promise<std::string> claimed;
    store->claim(wanted, [&](std::vector<etld::PartitionClaim> c, std::string e) {
      claimed.set_value(e.empty() && c.size() == 3 ? "" : "claim failed: " + e);
    });
    REQUIRE(claimed.get_future().get() == "");
    Batch b;
    for (std::size_t t = 0; t < 3; ++t) {
      targets[t]->emitted(0, 10);
      for (int o = 0; o < 10; ++o) {
        Event e;
        e.value = "{\"id\": " + std::to_string(o) + "}";
        e.topic = std::string(1, static_cast<char>('a' + t));
        e.partition = 0;
        e.offset = o;
        e.ack = etld::Ack(targets[t], static_cast<std::uint64_t>(o));
        b.push_back(std::move(e));
      }
    }
    CHECK(ctx.consume_until_done(*sink, std::move(b), 20s));
    CHECK_MESSAGE(!ctx.error, ctx.failure_text());
    CHECK(db.scalar("SELECT count(*) || '/' || sum(id) FROM " + q(name + "_a")) == "10/45");
    CHECK(db.scalar("SELECT count(*) || '/' || sum(id) FROM " + q(name + "_b")) == "9/40");
    CHECK(db.scalar("SELECT count(*) || '/' || sum(id) FROM " + q(name + "_c")) == "10/45");
    CHECK(db.scalar("SELECT sqlstate || ' ' || \"offset\" FROM " + q(name + "_b_dead_letters")) == "23514 5");
    CHECK(db.scalar("SELECT count(*) FROM " + q(name + "_a_dead_letters")) == "0");
    CHECK(db.scalar("SELECT string_agg(topic || '=' || next_offset, ',' ORDER BY topic) FROM " +
                    q(name + "_offsets") + " WHERE consumer_group = '" + group + "'") == "a=10,b=10,c=10");
    sink.reset();
    etld::test::run_idle(io);
    for (const char* t : {"_a", "_b", "_c"})
      db.exec("DROP TABLE " + q(name + t) + ", " + q(name + t + "_dead_letters"));
    db.exec("DROP TABLE " + q(name + "_offsets"));  // the stage's own dead letters: out_dead_letters
  }

  TEST_CASE("validate --against-db checks every table of tables:, and no table of a template") {
    Db db;
    const std::string t = unique("live");
    db.exec("CREATE TABLE " + t + " (id bigint)");
    const etld::StageType* type = etld::find_stage_type("postgres");
    auto check = [&](const std::string& options) -> std::string {
      etld::PipelineConfig pipeline;
      try {
        type->check_live(etld::test::postgres_stage("to_pg", "dsn: '" + dsn() + "'\n" + options), pipeline);
      } catch (const etld::ConfigError& e) {
        return std::to_string(e.mark().line + 1) + ": " + e.what();
      }
      return "";
    };
    CHECK(check("tables:\n  a: " + t + "\ncolumns: {id: bigint}\n") == "");
    CHECK(check("tables:\n  a: " + t + "\n  b: " + t + "_missing\ncolumns: {id: bigint}\n") ==
          "4: table " + t + "_missing does not exist");
    CHECK(check("tables:\n  a: {table: " + t + ", columns: {idd: bigint}}\ncolumns: {id: bigint}\n") ==
          "3: table " + t + " has no column 'idd'");
    CHECK(check("table: \"" + t + "_{topic}\"\ncolumns: {id: bigint}\n") == "");
    db.exec("DROP TABLE " + t);
  }
}
