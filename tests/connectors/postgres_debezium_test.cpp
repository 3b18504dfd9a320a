// The postgres sink's mode debezium: the envelope read from JSON (with and without Kafka Connect's
// schema/payload wrapper) and from a decoded record, its configuration checks, and, against a real
// PostgreSQL (scripts/dev-env), inserts, updates, deletes with and without their tombstones, a key
// deleted and inserted again in one batch, the guard holding against replayed older events, soft
// deletes, truncates on and off, poison envelopes dead-lettered with their reasons and the
// `validate --against-db` checks of the soft-delete and guard columns; events recorded from Debezium
// (tests/fixtures/debezium) with bytes, json and isostring dates.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/debezium_fixture.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_partition.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;
using etld::AckStatus;
using etld::Batch;
using etld::Event;
using etld::pg::RowOp;

namespace {

using etld::test::Db;
using etld::test::dsn;

// A change event: op, the row images (JSON or "null") and source.lsn; wrapped in Kafka Connect's
// {"schema": ..., "payload": ...} when `wrapped`.
std::string change(const std::string& op, const std::string& before, const std::string& after, long lsn,
                   bool wrapped = false) {
  const std::string payload = R"({"before":)" + before + R"(,"after":)" + after +
                              R"(,"source":{"version":"2.7.0","connector":"postgresql","lsn":)" +
                              std::to_string(lsn) + R"(,"ts_ms":1700000000000},"op":")" + op +
                              R"(","ts_ms":1700000000123})";
  if (!wrapped) return payload;
  return R"({"schema":{"type":"struct","optional":false,"name":"srv.public.customers.Envelope"},"payload":)" +
         payload + "}";
}

etld::StageConfig stage(const std::string& yaml) {
  const etld::StageType* type = etld::find_stage_type("postgres");
  REQUIRE(type != nullptr);
  etld::StageConfig cfg;
  cfg.name = "replica";
  cfg.type = "postgres";
  cfg.node = YAML::Load(yaml);
  cfg.options = etld::Options(cfg.node, &type->options);
  return cfg;
}

etld::pg::PostgresSinkConfig parse(const std::string& yaml) {
  etld::PipelineConfig pipeline;
  pipeline.name = "cdc";
  return etld::pg::parse_config(stage(yaml), pipeline);
}

// "line: message | hint" of the ConfigError the options raise, or "".
std::string config_error(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const etld::ConfigError& e) {
    return std::to_string(e.mark().line + 1) + ": " + e.what() + " | " + e.hint();
  }
  return "";
}

const std::string kOptions = R"(dsn: 'host=localhost'
table: customers
mode: debezium
key: [id]
columns:
  id: {from: id, type: bigint}
  email: {from: email, type: text}
  lsn: {from: _source.lsn, type: bigint}
  op: {from: _op, type: text}
  deleted: boolean
soft_delete: deleted
guard: source.lsn
)";

struct Encoded {
  RowOp op;
  std::string row, error;
};

Encoded encode(const etld::pg::PostgresSinkConfig& cfg, const std::optional<std::string>& value,
               const std::optional<std::string>& key = std::nullopt, bool decoded = false) {
  Event e;
  e.has_value = value.has_value();
  if (value) e.value = *value;
  if (value && decoded) e.set_record(etld::parse_json(*value));
  e.has_key = key.has_value();
  if (key) e.key = *key;
  Encoded r;
  r.op = etld::pg::encode_event(cfg, e, 7, r.row, r.error);
  return r;
}

std::string unique_table(const std::string& base) {
  static int n = 0;
  return "dbz_" + base + "_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
}

// The sink on a real io_context, fed events with Kafka coordinates (offset = ack token).
struct Sink {
  boost::asio::io_context io;
  etld::test::FakeSinkContext ctx{io, "replica"};
  std::shared_ptr<etld::test::RecordingAcks> acks = std::make_shared<etld::test::RecordingAcks>();
  std::unique_ptr<etld::StageFactory> factory;
  std::unique_ptr<etld::Sink> sink;
  std::uint64_t next = 0;

  explicit Sink(const std::string& table, const std::string& options) {
    etld::PipelineConfig pipeline;
    pipeline.name = "cdc";
    factory =
        etld::find_stage_type("postgres")
            ->configure(stage("dsn: '" + dsn() + "'\ntable: " + table + "\nmode: debezium\nkey: [id]\n" +
                              "batch: {max_rows: 1000, max_wait: 10ms}\n" + options),
                        pipeline);
    sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
  }
  ~Sink() {
    sink.reset();
    etld::test::run_idle(io);
  }
  Event event(const std::optional<std::string>& value, const std::optional<std::string>& key) {
    Event e;
    e.has_value = value.has_value();
    if (value) e.value = *value;
    e.has_key = key.has_value();
    if (key) e.key = *key;
    e.topic = "srv.public.customers";
    e.partition = 0;
    e.offset = static_cast<std::int64_t>(next);
    e.ack = etld::Ack(acks, next++);
    return e;
  }
  // One batch of (value, key) pairs; waits until all of it is settled.
  void send(const std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>>& events) {
    Batch b;
    for (const auto& [v, k] : events) b.push_back(event(v, k));
    const std::size_t want = ctx.done_total + b.size();
    ctx.consume(*sink, std::move(b));
    REQUIRE(etld::test::run_until(
        io, [&] { return ctx.done_total >= want || ctx.error != nullptr; }, 20s));
    REQUIRE(ctx.error == nullptr);
  }
};

std::string key(int id) { return R"({"id":)" + std::to_string(id) + "}"; }
std::string row(int id, const std::string& email) {
  return R"({"id":)" + std::to_string(id) + R"(,"email":")" + email + R"("})";
}

}  // namespace

TEST_SUITE("postgres sink mode debezium") {
  TEST_CASE("the envelope: plain, wrapped and decoded read the same; ops; tombstones; poison reasons") {
    const auto cfg = parse(kOptions);
    const std::string insert = change("c", "null", row(1, "a@x"), 100);
    const Encoded plain = encode(cfg, insert, key(1));
    CHECK(plain.op == RowOp::write);
    CHECK(plain.row == "7\tf\t1\ta@x\t100\tc\tf\n");
    CHECK(encode(cfg, change("c", "null", row(1, "a@x"), 100, true), key(1)).row == plain.row);
    CHECK(encode(cfg, insert, key(1), /*decoded=*/true).row == plain.row);
    // The key in the Kafka key wins; wrapped or not; without one, `after`'s.
    CHECK(encode(cfg, insert, key(9)).row == "7\tf\t9\ta@x\t100\tc\tf\n");
    CHECK(encode(cfg, insert, R"({"schema":{"type":"struct"},"payload":{"id":9}})").row ==
          "7\tf\t9\ta@x\t100\tc\tf\n");
    CHECK(encode(cfg, insert).row == plain.row);
    CHECK(encode(cfg, insert, "not json").row == plain.row);
    for (const char* op : {"u", "r"})
      CHECK(encode(cfg, change(op, "null", row(1, "a@x"), 100), key(1)).op == RowOp::write);
    // A delete: the key, the envelope's columns and the flag; the other columns are not read.
    const Encoded del = encode(cfg, change("d", row(1, "a@x"), "null", 200), key(1));
    CHECK(del.op == RowOp::del);
    CHECK(del.row == "7\tt\t1\t\\N\t200\td\tt\n");
    CHECK(encode(cfg, change("d", R"({"id":3})", "null", 200)).row == "7\tt\t3\t\\N\t200\td\tt\n");
    // The tombstone after it, plain or wrapped.
    CHECK(encode(cfg, std::nullopt, key(1)).op == RowOp::skip);
    CHECK(encode(cfg, R"({"schema":null,"payload":null})", key(1)).op == RowOp::skip);
    // Truncate: only when asked.
    const Encoded skipped = encode(cfg, change("t", "null", "null", 300));
    CHECK(skipped.op == RowOp::skip);
    CHECK(skipped.error == "truncate skipped (truncate: false)");
    CHECK(encode(parse(kOptions + "truncate: true\n"), change("t", "null", "null", 300)).op ==
          RowOp::truncate);
    // Not change events.
    auto reason = [&](const std::string& value, const std::optional<std::string>& k = std::nullopt) {
      const Encoded r = encode(cfg, value, k);
      CHECK(r.op == RowOp::poison);
      CHECK(r.row.empty());
      return r.error;
    };
    CHECK(reason(R"({"id":1,"email":"a@x"})") == "not a Debezium change event: no 'op' field");
    CHECK(reason(R"([1,2])") == "not a Debezium change event: the value is array, not an object");
    CHECK(reason(change("x", "null", row(1, "a"), 1)) ==
          "unknown Debezium op 'x' (expected c, u, r, d or t)");
    CHECK(reason(change("c", "null", "null", 1), key(1)) == "op 'c' without 'after': nothing to write");
    CHECK(reason(change("d", "null", "null", 1)) ==
          "delete without a key: no value for key column id in the Kafka key or 'before'");
    CHECK(reason(R"({"op":"c","after":{"id":1}})") == "guard source.lsn: the change event has no source.lsn");
    CHECK(reason(R"({"op":"c","after":{"id":"one"},"source":{"lsn":1}})").find("column id (bigint)") == 0);
    CHECK(reason("{\"op\":").rfind("invalid JSON", 0) == 0);
  }

  TEST_CASE("Kafka Connect's logical types named by the wrapper's schema are written exactly") {
    Db db;
    const std::string t = unique_table("logical");
    db.exec("CREATE TABLE " + t +
            " (id bigint PRIMARY KEY, born date, seen timestamp, at timestamptz, opens time, price "
            "numeric(30,9), "
            "score numeric, days_raw integer)");
    Sink s(
        t,
        "columns: {id: bigint, born: date, seen: timestamptz, at: timestamptz, opens: text, price: numeric, "
        "score: numeric, days_raw: {from: born, type: integer}}\n");
    auto field = [](const char* name, const char* type, const std::string& extra = "") {
      return std::string(R"({"type":")") + type + R"(","optional":true,"field":")" + name + "\"" +
             (extra.empty() ? "" : "," + extra) + "}";
    };
    const std::string row_schema =
        R"({"type":"struct","optional":true,"name":"srv.public.t.Value","fields":[)" + field("id", "int64") +
        "," + field("born", "int32", R"("name":"io.debezium.time.Date")") + "," +
        field("seen", "int64", R"("name":"io.debezium.time.MicroTimestamp")") + "," +
        field("at", "string", R"("name":"io.debezium.time.ZonedTimestamp")") + "," +
        field("opens", "int64", R"("name":"io.debezium.time.MicroTime")") + "," +
        field(
            "price", "bytes",
            R"("name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"9","connect.decimal.precision":"30"})") +
        "," + field("score", "struct", R"("name":"io.debezium.data.VariableScaleDecimal")") + "]}";
    auto event = [&](int id, const std::string& price, const std::string& score) {
      const std::string after = R"({"id":)" + std::to_string(id) +
                                R"(,"born":7441,"seen":1709212455123456,"at":"2024-02-29T13:14:15.5+02:00",)"
                                R"("opens":34200000001,"price":")" +
                                price + R"(","score":{"scale":2,"value":")" + score + R"("}})";
      return R"({"schema":{"type":"struct","name":"srv.public.t.Envelope","fields":[)" +
             std::string(
                 R"({"type":"struct","optional":true,"name":"srv.public.t.Value","field":"before","fields":[]},)") +
             row_schema.substr(0, row_schema.size() - 1) +
             R"(,"field":"after"}]},"payload":{"before":null,"after":)" + after +
             R"(,"source":{"lsn":1},"op":"c","ts_ms":1}})";
    };
    s.send({{event(1, "J+QbMka+ybFuOYEV", "AeI6"), key(1)},
            {event(2, "/h3G", "+w=="), key(2)},
            {event(3, "AA==", "not base64!"), key(3)}});
    CHECK(
        db.scalar("SELECT string_agg(concat_ws('|', id, born, seen, at, opens, price, score, days_raw), ',' "
                  "ORDER BY id) FROM " +
                  t) ==
        "1|1990-05-17|2024-02-29 13:14:15.123456|2024-02-29 11:14:15.5+00|09:30:00.000001|"
        "12345678901234567890.123456789|1234.50|7441,"
        "2|1990-05-17|2024-02-29 13:14:15.123456|2024-02-29 11:14:15.5+00|09:30:00.000001|"
        "-0.000123450|-0.05|7441");
    CHECK(db.scalar("SELECT error FROM " + t + "_dead_letters") ==
          "column score (io.debezium.data.VariableScaleDecimal): the value is not base64 bytes");
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("recorded events: bytes, Json and isostring dates reach their columns exactly") {
    Db db;
    // With the wrapper (decimal.handling.mode=precise): the JsonConverter writes bytes as base64
    // and Debezium json(b) as its text; bytea gets the bytes, jsonb the document.
    const std::string t = unique_table("recorded");
    db.exec("CREATE TABLE " + t +
            " (id bigint PRIMARY KEY, b bytea, bits bytea, j jsonb, jb jsonb, b_text text, j_text text, "
            "n102 numeric(10,2), nfree numeric, d date)");
    {
      Sink s(
          t,
          "columns: {id: bigint, b: bytea, bits: bytea, j: jsonb, jb: jsonb, b_text: {from: b, type: text}, "
          "j_text: {from: j, type: text}, n102: numeric, nfree: numeric, d: date}\n");
      const auto types = etld::test::debezium_fixture("types.schemas.tsv");
      // Row 1 again as rows 3 and 4, with a value that is not base64 and one that is not JSON.
      auto poisoned = [&](int id, const std::string& from, const std::string& to) {
        auto [k, v] = types[0];
        const std::string id_text = R"("id":)" + std::to_string(id);
        k.replace(k.find(R"("id":1)"), 6, id_text);
        v.replace(v.find(R"("id":1)"), 6, id_text);
        REQUIRE(v.find(from) != std::string::npos);
        v.replace(v.find(from), from.size(), to);
        return std::pair<std::optional<std::string>, std::optional<std::string>>{v, k};
      };
      s.send({{types[0].second, types[0].first},
              {types[1].second, types[1].first},
              poisoned(3, R"("b":"AP8Q")", R"("b":"AP8")"),
              poisoned(4, R"("j":"{\"a\")", R"("j":"{\"a)")});
    }
    CHECK(
        db.scalar("SELECT concat_ws('|', id, encode(b, 'hex'), encode(bits, 'hex'), j, jsonb_typeof(j), jb, "
                  "b_text, j_text, n102, nfree, d) FROM " +
                  t + " WHERE id = 1") ==
        R"(1|00ff10|05|{"a": [1, 2.50]}|object|{"b": null}|AP8Q|{"a": [1, 2.50]}|-12345678.91|)"
        "3.14159265358979323846264338327950288|1990-01-02");
    CHECK(db.scalar("SELECT concat_ws('|', id, b, j, d) FROM " + t + " WHERE id = 2") == "2");
    CHECK(db.scalar("SELECT count(*) FROM " + t + " WHERE id > 2") == "0");
    const std::string errors =
        db.scalar("SELECT string_agg(error, ' / ' ORDER BY \"offset\") FROM " + t + "_dead_letters");
    CHECK(
        errors.find("column b (bytes): the value is not base64 bytes / column j (io.debezium.data.Json): the "
                    "value is not JSON text: ") == 0);
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");

    // Without it (scripts/cdc's settings, time.precision.mode=isostring): "1990-01-02Z".
    const std::string c = unique_table("isodate");
    db.exec("CREATE TABLE " + c + " (id bigint PRIMARY KEY, born date, seen timestamptz)");
    {
      Sink s(c, "columns: {id: bigint, born: date, seen: timestamptz}\n");
      const auto customers = etld::test::debezium_fixture("customers.tsv");
      s.send({{customers[0].second, customers[0].first}});
    }
    CHECK(db.scalar("SELECT concat_ws('|', id, born, seen) FROM " + c) ==
          "1|1990-01-02|2026-12-06 12:00:00.123456+00");
    CHECK(db.scalar("SELECT count(*) FROM " + c + "_dead_letters") == "0");
    db.exec("DROP TABLE " + c + ", " + c + "_dead_letters");
  }

  TEST_CASE("configuration: mistakes located at their option, the list form of columns") {
    CHECK(config_error(kOptions) == "");
    const std::string base = "dsn: 'host=localhost'\ntable: t\nmode: debezium\n";
    CHECK(config_error(base + "columns: {id: bigint}\n").find("3: mode 'debezium' needs 'key'") == 0);
    const std::string keyed =
        base + "key: [id]\ncolumns:\n  id: bigint\n  lsn: {from: _source.lsn, type: bigint}\n";
    CHECK(config_error(keyed) == "");
    CHECK(config_error(keyed + "soft_delete: gone\n")
              .find("8: soft_delete column 'gone' is not in 'columns'") == 0);
    CHECK(config_error(keyed + "  gone: text\nsoft_delete: gone\n")
              .find("8: soft_delete column 'gone' is mapped as text: it must be boolean") == 0);
    CHECK(config_error(keyed + "  gone: {from: x, type: boolean}\nsoft_delete: gone\n")
              .find("8: soft_delete column 'gone' takes etld's value") == 0);
    CHECK(config_error(keyed + "guard: version\n")
              .find("8: guard 'version' is not a field of the Debezium envelope") == 0);
    CHECK(config_error(keyed + "guard: ts_ms\n").find("8: guard ts_ms needs a column that stores it") == 0);
    CHECK(config_error(keyed + "guard: source.lsn\n") == "");
    CHECK(config_error(base + "key: [id]\ncolumns:\n  id: bigint\n  lsn: {from: _source.lsn, type: jsonb}\n"
                              "guard: source.lsn\n")
              .find("7: guard column 'lsn' is mapped as jsonb") == 0);
    CHECK(config_error(keyed + "delete_on_tombstone: true\n").find("8: mode debezium ignores tombstones") ==
          0);
    CHECK(config_error(keyed + "  x: {from: _source.lsn., type: text}\n").find("invalid envelope path") !=
          std::string::npos);
    const std::string upsert =
        "dsn: 'host=localhost'\ntable: t\nmode: upsert\nkey: [id]\ncolumns:\n  id: bigint\n";
    CHECK(config_error(upsert + "truncate: true\n")
              .find("7: option 'truncate' applies to mode debezium only") == 0);
    CHECK(config_error(upsert + "soft_delete: id\n").find("option 'soft_delete' applies to mode debezium") !=
          std::string::npos);
    CHECK(config_error(upsert + "  lsn: {from: _source.lsn, type: bigint}\n")
              .find("7: column 'lsn': '_source.lsn' reads the envelope of a Debezium change event") == 0);
    // Columns as a list, as the design's YAML writes them.
    const auto listed = parse(base +
                              "key: [id]\ncolumns:\n  - {name: id, type: integer}\n"
                              "  - {name: mail, from: email, type: text}\n");
    REQUIRE(listed.columns.size() == 2);
    CHECK(listed.columns[1].name == "mail");
    CHECK(listed.columns[1].path == "email");
    etld::Diagnostics diags("p.yaml");
    const auto loaded = etld::load_pipeline_text(
        "pipeline: p\nstages:\n  in:\n    type: kafka\n    brokers: b:1\n    topics: [t]\n    group: g\n"
        "  out:\n    type: postgres\n    inputs: [in]\n    dsn: 'host=localhost'\n    table: t\n"
        "    mode: debezium\n    key: [id]\n    columns:\n      - {name: id, type: integer}\n",
        "p.yaml", diags);
    CHECK_MESSAGE(loaded != nullptr, diags.format());
    CHECK(config_error(base + "key: [id]\ncolumns: 5\n").find("5: option 'columns' must be") == 0);
    CHECK(
        config_error(base + "key: [id]\ncolumns:\n  - {type: integer}\n").find("6: an entry of 'columns'") ==
        0);
  }

  TEST_CASE(
      "inserts, updates and deletes, with and without tombstones, wrapped or not; poison dead-lettered") {
    Db db;
    const std::string t = unique_table("basic");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, email text, note text DEFAULT 'kept')");
    Sink s(t, "columns: {id: bigint, email: text}\n");
    s.send({{change("r", "null", row(1, "a@x"), 10), key(1)},
            {change("c", "null", row(2, "b@x"), 11, true), key(2)},
            {change("c", "null", row(3, "c@x"), 12), key(3)},
            {change("c", "null", row(4, "d@x"), 13), key(4)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email, ',' ORDER BY id) FROM " + t) ==
          "1=a@x,2=b@x,3=c@x,4=d@x");
    s.send({{change("u", row(1, "a@x"), row(1, "a2@x"), 20, true), key(1)},
            {change("d", row(2, "b@x"), "null", 21), key(2)},
            {std::nullopt, key(2)},                                  // its tombstone
            {change("d", R"({"id":3})", "null", 22, true), key(3)},  // no tombstone
            {change("d", row(4, "d@x"), "null", 23), key(4)},        // deleted ...
            {std::nullopt, key(4)},
            {change("c", "null", row(4, "d2@x"), 24), key(4)},  // ... and inserted again
            {change("d", row(5, "e@x"), "null", 25), key(5)},   // no such row: nothing
            {R"({"id":6,"email":"plain@x"})", key(6)},          // not a change event
            {change("x", "null", row(7, "g@x"), 26), key(7)},
            {change("c", "null", "null", 27), key(8)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || '/' || note, ',' ORDER BY id) FROM " + t) ==
          "1=a2@x/kept,4=d2@x/kept");
    CHECK(s.acks->count(AckStatus::done) == 12);
    CHECK(s.acks->count(AckStatus::dead_lettered) == 3);
    CHECK(db.scalar("SELECT string_agg(\"offset\" || ': ' || error, ' | ' ORDER BY \"offset\") FROM " + t +
                    "_dead_letters") ==
          "12: not a Debezium change event: no 'op' field | 13: unknown Debezium op 'x' (expected c, u, r, d "
          "or t) | "
          "14: op 'c' without 'after': nothing to write");
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("guard: source.lsn: an older event replayed after a newer one neither replaces nor deletes") {
    Db db;
    const std::string t = unique_table("guard");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, email text, lsn bigint)");
    Sink s(t,
           "columns: {id: bigint, email: text, lsn: {from: _source.lsn, type: bigint}}\nguard: source.lsn\n");
    s.send({{change("c", "null", row(1, "a1"), 100), key(1)},
            {change("c", "null", row(2, "b1"), 101), key(2)},
            {change("u", "null", row(1, "a2"), 102), key(1)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || '@' || lsn, ',' ORDER BY id) FROM " + t) ==
          "1=a2@102,2=b1@101");
    // A replay from the start: the same events again, then in one batch older ones after newer ones.
    s.send({{change("c", "null", row(1, "a1"), 100), key(1)},
            {change("d", row(2, "b1"), "null", 99), key(2)},
            {change("u", "null", row(2, "b0"), 90), key(2)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || '@' || lsn, ',' ORDER BY id) FROM " + t) ==
          "1=a2@102,2=b1@101");
    s.send({{change("u", "null", row(1, "a3"), 110), key(1)},
            {change("u", "null", row(1, "stale"), 105), key(1)},  // older, later in the batch
            {change("d", row(2, "b1"), "null", 111), key(2)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || '@' || lsn, ',' ORDER BY id) FROM " + t) ==
          "1=a3@110");
    // Deleted and inserted again in one batch, then an older delete replayed.
    s.send({{change("c", "null", row(2, "b2"), 120), key(2)},
            {change("d", row(2, "b2"), "null", 121), key(2)},
            {change("c", "null", row(2, "b3"), 122), key(2)}});
    s.send({{change("d", row(2, "b2"), "null", 121), key(2)}});
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || '@' || lsn, ',' ORDER BY id) FROM " + t) ==
          "1=a3@110,2=b3@122");
    CHECK(s.acks->exactly_once(13, AckStatus::done));
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("soft_delete keeps the row flagged; the guard keeps a replay from bringing it back") {
    Db db;
    const std::string t = unique_table("soft");
    db.exec("CREATE TABLE " + t +
            " (id bigint PRIMARY KEY, email text, lsn bigint, op text, deleted boolean)");
    Sink s(t,
           "columns: {id: bigint, email: text, lsn: {from: _source.lsn, type: bigint}, op: {from: _op, type: "
           "text}, "
           "deleted: boolean}\nsoft_delete: deleted\nguard: source.lsn\n");
    auto table = [&] {
      return db.scalar(
          "SELECT string_agg(id || '=' || email || '@' || lsn || op || ':' || deleted, ',' ORDER BY id) "
          "FROM " +
          t);
    };
    s.send({{change("c", "null", row(1, "a"), 10), key(1)}, {change("c", "null", row(2, "b"), 11), key(2)}});
    s.send(
        {{change("d", row(1, "a"), "null", 20), key(1)},
         {std::nullopt, key(1)},
         {change("c", "null", row(3, "c"), 21), key(3)},  // inserted and deleted in one batch: kept, flagged
         {change("d", R"({"id":3})", "null", 22), key(3)},
         {change("d", R"({"id":9})", "null", 23), key(9)}});  // never seen: nothing
    CHECK(table() == "1=a@20d:true,2=b@11c:false,3=c@22d:true");
    // A replay of the insert: older than the delete, so the row stays deleted; a newer insert revives it.
    s.send({{change("c", "null", row(1, "a"), 10), key(1)}, {change("c", "null", row(2, "b2"), 30), key(2)}});
    CHECK(table() == "1=a@20d:true,2=b2@30c:false,3=c@22d:true");
    s.send({{change("c", "null", row(1, "a2"), 40), key(1)}});
    CHECK(table() == "1=a2@40c:false,2=b2@30c:false,3=c@22d:true");
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("op t truncates only with truncate: true; the events after it in the batch stay") {
    Db db;
    for (const bool truncate : {false, true}) {
      CAPTURE(truncate);
      const std::string t = unique_table("trunc");
      db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, email text)");
      Sink s(t, std::string("columns: {id: bigint, email: text}\ntruncate: ") +
                    (truncate ? "true" : "false") + "\n");
      s.send(
          {{change("c", "null", row(1, "a"), 10), key(1)}, {change("c", "null", row(2, "b"), 11), key(2)}});
      s.send({{change("c", "null", row(3, "c"), 12), key(3)},
              {change("t", "null", "null", 13), std::nullopt},
              {change("c", "null", row(4, "d"), 14), key(4)}});
      CHECK(db.scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM " + t) ==
            (truncate ? "4" : "1,2,3,4"));
      CHECK(s.acks->exactly_once(5, AckStatus::done));
      db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
    }
  }

  TEST_CASE(
      "exactly_once: upserts, a truncate, a soft delete, a dead letter and the next offset in one commit") {
    Db db;
    const std::string t = unique_table("eo");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, email text, deleted boolean)");
    const std::string group = "dbz-eo-" + t;
    etld::Diagnostics diags("p.yaml");
    auto pipeline = etld::load_pipeline_text(
        "pipeline: eo\nstages:\n  in:\n    type: kafka\n    brokers: 127.0.0.1:1\n    topics: [orders]\n"
        "    group: " +
            group + "\n  out:\n    type: postgres\n    inputs: [in]\n    dsn: '" + dsn() +
            "'\n    table: " + t +
            "\n    mode: debezium\n    key: [id]\n    truncate: true\n    soft_delete: deleted\n"
            "    delivery: exactly_once\n    offsets_table: " +
            t + "_offsets\n    columns: {id: bigint, email: text, deleted: boolean}\n",
        "p.yaml", diags);
    REQUIRE_MESSAGE(pipeline, diags.format());
    boost::asio::io_context io;
    etld::test::FakeSinkContext ctx{io, "out"};
    auto factory = etld::find_stage_type("postgres")->configure(*pipeline->find("out"), *pipeline);
    auto sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
    auto target = std::make_shared<etld::test::TestPartition>();
    std::promise<std::string> claimed;
    factory->offset_store()->claim(
        {{"orders", 0, target, group}},
        [&](std::vector<etld::PartitionClaim>, std::string e) { claimed.set_value(e); });
    REQUIRE(claimed.get_future().get().empty());
    const std::vector<std::optional<std::string>> values = {change("c", "null", row(1, "a"), 1),
                                                            change("c", "null", row(2, "b"), 2),
                                                            change("t", "null", "null", 3),
                                                            change("c", "null", row(3, "c"), 4),
                                                            change("c", "null", row(4, "d"), 5),
                                                            change("d", row(4, "d"), "null", 6),
                                                            std::nullopt,
                                                            R"({"no":"op"})"};
    target->emitted(0, static_cast<std::int64_t>(values.size()));
    Batch b;
    for (std::size_t i = 0; i < values.size(); ++i) {
      Event e;
      e.has_value = values[i].has_value();
      if (values[i]) e.value = *values[i];
      e.key = i == 6 ? key(4) : "";
      e.has_key = i == 6;
      e.topic = "orders";
      e.partition = 0;
      e.offset = static_cast<std::int64_t>(i);
      e.ack = etld::Ack(target, i);
      b.push_back(std::move(e));
    }
    CHECK(ctx.consume_until_done(*sink, std::move(b), 20s));
    CHECK_MESSAGE(!ctx.error, ctx.failure_text());
    CHECK(db.scalar("SELECT string_agg(id || '=' || email || ':' || deleted, ',' ORDER BY id) FROM " + t) ==
          "3=c:false,4=d:true");
    CHECK(db.scalar("SELECT next_offset FROM " + t + "_offsets WHERE consumer_group = '" + group + "'") ==
          "8");
    CHECK(db.scalar("SELECT \"offset\" || ': ' || error FROM " + t + "_dead_letters") ==
          "7: not a Debezium change event: no 'op' field");
    CHECK(target->count(AckStatus::done) == 7);
    CHECK(target->count(AckStatus::dead_lettered) == 1);
    sink.reset();
    etld::test::run_idle(io);
    db.exec("DROP TABLE " + t + ", " + t + "_offsets, " + t + "_dead_letters");
  }

  TEST_CASE("validate --against-db checks the soft-delete and guard columns' types") {
    Db db;
    const std::string t = unique_table("live");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, lsn jsonb, deleted text)");
    const etld::StageType* type = etld::find_stage_type("postgres");
    auto check = [&](const std::string& options) -> std::string {
      etld::PipelineConfig pipeline;
      try {
        type->check_live(
            stage("dsn: '" + dsn() + "'\ntable: " + t + "\nmode: debezium\nkey: [id]\n" + options), pipeline);
      } catch (const etld::ConfigError& e) {
        return std::to_string(e.mark().line + 1) + ": " + e.what();
      }
      return "";
    };
    CHECK(check("columns: {id: bigint}\n") == "");
    CHECK(check("columns: {id: bigint, deleted: boolean}\nsoft_delete: deleted\n") ==
          "6: soft_delete column 'deleted' of table " + t + " is text: it must be boolean");
    CHECK(check("columns: {id: bigint, lsn: {from: _source.lsn, type: text}}\nguard: source.lsn\n")
              .find("6: guard column 'lsn' of table " + t + " is jsonb") == 0);
    db.exec("ALTER TABLE " + t +
            " ALTER COLUMN lsn TYPE inet USING NULL, ALTER COLUMN deleted TYPE boolean USING NULL");
    CHECK(check("columns: {id: bigint, deleted: boolean}\nsoft_delete: deleted\n") == "");
    CHECK(check("columns: {id: bigint, lsn: {from: _source.lsn, type: text}}\nguard: source.lsn\n") ==
          "6: guard column 'lsn' of table " + t + " is inet: its values cannot order change events");
    db.exec("DROP TABLE " + t);
  }
}
