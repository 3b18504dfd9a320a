// Tests of the postgres sink against a real PostgreSQL (scripts/dev-env): types, metadata,
// upserts, tombstones, poison records and bisection, an outage mid-stream, a slow table holding
// back credits, configuration checks and `validate --against-db` checks. The sink is driven
// directly through a FakeSinkContext on a real io_context.
#include <doctest/doctest.h>

#include <librdkafka/rdkafka.h>
#include <unistd.h>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/pipeline.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;
using etld::AckStatus;
using etld::Batch;
using etld::Event;

namespace {

using etld::test::Db;
using etld::test::dsn;

std::string unique_name(const std::string& base) {
  static int n = 0;
  return "pgsink_" + base + "_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
}

// YAML for the sink's options with ${PG_DSN}-free literal DSN.
std::string yaml_dsn() { return "dsn: '" + dsn() + "'\n"; }

struct Harness {
  boost::asio::io_context io;
  etld::test::FakeSinkContext ctx{io, "to_pg"};
  std::shared_ptr<etld::test::RecordingAcks> acks = std::make_shared<etld::test::RecordingAcks>();
  std::unique_ptr<etld::StageFactory> factory;
  std::unique_ptr<etld::Sink> sink;
  std::uint64_t next_token = 0;

  explicit Harness(const std::string& options_yaml,
                   etld::PoisonPolicy policy = etld::PoisonPolicy::dead_letter) {
    factory = configure(options_yaml, policy);
    sink = factory->make_sink(0);
    ctx.start(*sink);
    etld::test::run_idle(io);
  }
  ~Harness() {
    sink.reset();  // joins the connection thread
    etld::test::run_idle(io);
  }

  static std::unique_ptr<etld::StageFactory> configure(const std::string& yaml, etld::PoisonPolicy policy) {
    const etld::StageType* type = etld::find_stage_type("postgres");
    REQUIRE(type != nullptr);
    etld::StageConfig cfg;
    cfg.name = "to_pg";
    cfg.type = "postgres";
    cfg.node = YAML::Load(yaml);
    cfg.options = etld::Options(cfg.node, &type->options);
    etld::PipelineConfig pipeline;
    pipeline.name = "pgtest";
    pipeline.on_poison = policy;
    return type->configure(cfg, pipeline);
  }

  // An event with Kafka coordinates (topic t, partition 0, offset = its token).
  Event event(const std::optional<std::string>& value, const std::optional<std::string>& key = std::nullopt) {
    Event e;
    if (value) e.value = *value;
    e.has_value = value.has_value();
    if (key) e.key = *key;
    e.has_key = key.has_value();
    e.topic = "orders";
    e.partition = 0;
    e.offset = static_cast<std::int64_t>(next_token);
    e.timestamp_ms = 1714557600000;
    e.ack = etld::Ack(acks, next_token++);
    return e;
  }
  void send(Batch b) { ctx.consume(*sink, std::move(b)); }
  void send_values(const std::vector<std::string>& values) {
    Batch b;
    for (const auto& v : values) b.push_back(event(v));
    send(std::move(b));
  }
  bool drain(std::chrono::milliseconds timeout = 20s) {
    ctx.drain(*sink);
    return etld::test::run_until(
               io, [&] { return ctx.drained_calls > 0 || ctx.error != nullptr; }, timeout) &&
           ctx.drained_calls > 0;
  }
  bool wait_done(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    return etld::test::run_until(
               io, [&] { return ctx.done_total >= n || ctx.error != nullptr; }, timeout) &&
           ctx.done_total >= n;
  }
};

// A record read back from a dead-letter topic.
struct DeadLetterRecord {
  std::optional<std::string> key, value;
  std::map<std::string, std::string> headers;  // the last value of each name
  std::vector<std::pair<std::string, std::string>> all_headers;
};

// Reads partition 0 of `topic` from the beginning until `n` records arrived or `timeout` passed.
std::vector<DeadLetterRecord> read_topic(const std::string& topic, std::size_t n,
                                         std::chrono::milliseconds timeout = 20s) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", etld::test::services().kafka_brokers.c_str(), err,
                            sizeof err) == RD_KAFKA_CONF_OK);
  REQUIRE(rd_kafka_conf_set(conf, "group.id", etld::test::unique_name("pgsink-dlq-reader").c_str(), err,
                            sizeof err) == RD_KAFKA_CONF_OK);
  REQUIRE(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) == RD_KAFKA_CONF_OK);
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err), [](rd_kafka_t* k) {
        rd_kafka_consumer_close(k);
        rd_kafka_destroy(k);
      });
  REQUIRE_MESSAGE(rk != nullptr, err);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  REQUIRE(rd_kafka_assign(rk.get(), parts) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<DeadLetterRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      DeadLetterRecord r;
      if (m->key) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) r.value = std::string(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* h = nullptr;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          std::string v = val ? std::string(static_cast<const char*>(val), size) : std::string();
          r.headers[name] = v;
          r.all_headers.emplace_back(name, v);
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  return out;
}

}  // namespace

TEST_SUITE("postgres sink") {
  TEST_CASE("COPY text escaping and value conversion") {
    std::string out;
    CHECK(etld::pg::append_copy_escaped(out, "a\tb\nc\rd\\e"));
    CHECK(out == "a\\tb\\nc\\rd\\\\e");
    out.clear();
    CHECK_FALSE(etld::pg::append_copy_escaped(out, std::string("a\0b", 3)));

    etld::pg::ColumnSpec qty;
    qty.name = "qty";
    qty.type = etld::pg::PgType::smallint;
    std::string err;
    out.clear();
    CHECK_FALSE(etld::pg::encode_value(etld::Value(70000), qty, out, err));
    CHECK(err == "column qty (smallint): 70000 out of range");
    CHECK(etld::pg::encode_value(etld::Value("123"), qty, out, err));
    CHECK(out == "123");
    out.clear();
    CHECK_FALSE(etld::pg::encode_value(etld::Value(1.5), qty, out, err));
    CHECK(err.find("not an integer") != std::string::npos);

    CHECK(etld::pg::valid_iso8601("2024-05-01T10:00:00.5Z", false));
    CHECK(etld::pg::valid_iso8601("2024-05-01 10:00:00+02:00", false));
    CHECK(etld::pg::valid_iso8601("2024-02-29", false));
    CHECK_FALSE(etld::pg::valid_iso8601("2023-02-29", false));
    CHECK_FALSE(etld::pg::valid_iso8601("yesterday", false));
    CHECK_FALSE(etld::pg::valid_iso8601("2024-05-01T25:00:00Z", false));
    out.clear();
    CHECK(etld::pg::format_epoch_ms(1714557600123, out));
    CHECK(out == "2024-05-01 10:00:00.123+00");
    out.clear();
    CHECK(etld::pg::format_epoch_ms(-1, out));
    CHECK(out == "1969-12-31 23:59:59.999+00");
    CHECK(etld::pg::valid_uuid("123e4567-e89b-12d3-a456-426614174000"));
    CHECK_FALSE(etld::pg::valid_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    CHECK(etld::pg::valid_numeric("-12.5e3"));
    CHECK_FALSE(etld::pg::valid_numeric("12.5.3"));
    CHECK(etld::pg::redact_dsn("postgresql://u:secret@h:5/db").find("secret") == std::string::npos);
    CHECK(etld::pg::redact_dsn("host=h password=secret").find("secret") == std::string::npos);
  }

  TEST_CASE("configuration mistakes are reported at the culprit") {
    auto err = [](const std::string& yaml) -> std::string {
      try {
        Harness::configure(yaml, etld::PoisonPolicy::dead_letter);
      } catch (const etld::ConfigError& e) {
        return std::to_string(e.mark().line + 1) + ": " + e.what() + " | " + e.hint();
      }
      return "";
    };
    const std::string base = "dsn: 'host=localhost'\ntable: t\n";
    CHECK(err(base + "columns: {id: {from: id, type: bigint}}") == "");
    const std::string typo = err(base + "columns:\n  id: {from: id, type: bigit}\n");
    INFO(typo);
    CHECK(typo.find("4: column 'id': unknown type 'bigit'") == 0);
    CHECK(err(base + "columns:\n  id: {from: id, type: bigit}\n").find("bigint") != std::string::npos);
    CHECK(err(base + "mode: upsert\ncolumns: {id: bigint}\n").find("needs 'key'") != std::string::npos);
    CHECK(err(base + "key: [idd]\ncolumns: {id: bigint}\n").find("key column 'idd' is not in 'columns'") !=
          std::string::npos);
    CHECK(err(base + "columns:\n  id: {form: id, type: bigint}\n").find("unknown key 'form'") !=
          std::string::npos);
    CHECK(
        err(base + "columns:\n  q: {from: q, type: smallint, default: 70000}\n").find("70000 out of range") !=
        std::string::npos);
    CHECK(err(base + "columns:\n  t: {from: _topc, type: text}\n").find("unknown metadata source") !=
          std::string::npos);
    CHECK(err(base + "columns:\n  t: {from: _headers, type: bigint}\n").find("cannot be written as bigint") !=
          std::string::npos);
    CHECK(err(base + "columns: {id: bigint}\nbatch: {max_rows: 0}\n").find("max_rows") != std::string::npos);
    CHECK(err(base + "columns: {id: bigint}\nbatch: {max_row: 5}\n").find("unknown key 'max_row'") !=
          std::string::npos);
    CHECK(err(base + "columns: {id: bigint}\ndelete_on_tombstone: true\n").find("needs 'key'") !=
          std::string::npos);
    CHECK(err(base + "columns: {id: bigint}\nretry: {initial_backoff: 2s, max_backoff: 1s}\n")
              .find("max_backoff") != std::string::npos);
    CHECK(err(base + "columns: {id: bigint}\nmax_dead_letter_ratio: 2\n").find("max_dead_letter_ratio") !=
          std::string::npos);
    CHECK(err("dsn: 'host=localhost'\ntable: a.b.c\ncolumns: {id: bigint}\n").find("invalid table name") !=
          std::string::npos);
    // The dead-letter topic.
    const std::string cols = base + "columns: {id: bigint}\n";
    CHECK(err(cols + "dead_letter: {topic: dlq, brokers: 'localhost:9092'}\n") == "");
    CHECK(err(cols + "dead_letter: {table: dl, topic: dlq, brokers: 'localhost:9092', librdkafka: "
                     "{linger.ms: 5}}\n") == "");
    const std::string no_brokers = err(cols + "dead_letter:\n  topic: dlq\n");
    INFO(no_brokers);
    CHECK(no_brokers.find("5: dead_letter.topic needs 'brokers'") == 0);
    CHECK(err(cols + "dead_letter: {}\n").find("needs 'table', 'topic' or both") != std::string::npos);
    CHECK(err(cols + "dead_letter: {topic: 'bad topic', brokers: b:1}\n").find("invalid dead_letter.topic") !=
          std::string::npos);
    CHECK(err(cols + "dead_letter: {table: dl, brokers: b:1}\n").find("need dead_letter.topic") !=
          std::string::npos);
    CHECK(err(cols + "dead_letter: {topic: dlq, brokers: b:1, librdkafka: {acks: 1}}\n")
              .find("cannot set 'acks'") != std::string::npos);
    CHECK(err(cols + "dead_letter: {topic: dlq, brokers: b:1, librdkafka: {no.such.property: 1}}\n")
              .find("no.such.property") != std::string::npos);
    const std::string secret =
        err(cols + "dead_letter:\n  topic: dlq\n  brokers: b:1\n  librdkafka: {sasl.password: [hunter2]}\n");
    CHECK(secret.find("7: dead_letter.librdkafka.sasl.password must be a scalar") == 0);
    CHECK(secret.find("hunter2") == std::string::npos);
  }

  TEST_CASE("every column type and Kafka metadata column, written and read back") {
    Db db;
    const std::string t = unique_name("types");
    Harness h(yaml_dsn() + "table: " + t + R"(
create_table: true
key: [id]
mode: upsert
columns:
  id: {from: id, type: bigint, required: true}
  s: {from: v.s, type: smallint}
  i: {from: v.i, type: integer}
  r: {from: v.r, type: real}
  d: {from: v.d, type: double precision}
  n: {from: v.n, type: numeric}
  n2: {from: v.n2, type: numeric}
  tx: {from: v.tx, type: text}
  b: {from: v.b, type: boolean}
  ts: {from: v.ts, type: timestamptz}
  ts_ms: {from: v.ts_ms, type: timestamptz}
  dt: {from: v.dt, type: date}
  u: {from: v.u, type: uuid}
  j: {from: v.j, type: jsonb}
  whole: {from: ".", type: jsonb}
  dflt: {from: missing, type: integer, default: 42}
  topic: {from: _topic, type: text}
  part: {from: _partition, type: integer}
  off: {from: _offset, type: bigint}
  kts: {from: _timestamp, type: timestamptz}
  k: {from: _key, type: text}
  hdr: {from: _headers, type: jsonb}
batch: {max_rows: 100, max_wait: 10ms}
)");
    Batch b;
    Event e = h.event(
        R"({"id": 1, "v": {"s": -32768, "i": 2147483647, "r": 1.5, "d": 3.141592653589793, "n": "12345.678901234567890",)"
        R"( "n2": 0.1, "tx": "tab\there\nnewline\\back\"quote\r", "b": true, "ts": "2024-05-01T10:00:00.5Z",)"
        R"( "ts_ms": 1714557600000, "dt": "2024-02-29", "u": "123e4567-e89b-12d3-a456-426614174000",)"
        R"( "j": {"a": [1, 2, {"b": null}]}}})",
        "key-1");
    e.headers.push_back({"trace", "abc"});
    b.push_back(std::move(e));
    b.push_back(h.event(R"({"id": 2, "v": {"i": "17", "b": "false", "ts": "2024-05-01 12:00:00+02:00"}})"));
    h.send(std::move(b));
    REQUIRE(h.drain());
    CHECK(h.ctx.failure_text() == "");
    CHECK(h.acks->exactly_once(2, AckStatus::done));
    CHECK(h.ctx.done_total == 2);

    auto rows = db.rows(
        "SELECT id, s, i, r, d, n, n2, tx, b, ts, ts_ms, dt, u, j, whole->'v'->>'tx', dflt, topic, part, "
        "off, kts, k, "
        "hdr FROM " +
        t + " ORDER BY id");
    REQUIRE(rows.size() == 2);
    auto& r1 = rows[0];
    CHECK(*r1[0] == "1");
    CHECK(*r1[1] == "-32768");
    CHECK(*r1[2] == "2147483647");
    CHECK(*r1[3] == "1.5");
    CHECK(*r1[4] == "3.141592653589793");
    CHECK(*r1[5] == "12345.678901234567890");
    CHECK(*r1[6] == "0.1");
    CHECK(*r1[7] == "tab\there\nnewline\\back\"quote\r");
    CHECK(*r1[8] == "t");
    CHECK(*r1[9] == "2024-05-01 10:00:00.5+00");
    CHECK(*r1[10] == "2024-05-01 10:00:00+00");
    CHECK(*r1[11] == "2024-02-29");
    CHECK(*r1[12] == "123e4567-e89b-12d3-a456-426614174000");
    CHECK(*r1[13] == R"({"a": [1, 2, {"b": null}]})");
    CHECK(*r1[14] == "tab\there\nnewline\\back\"quote\r");
    CHECK(*r1[15] == "42");
    CHECK(*r1[16] == "orders");
    CHECK(*r1[17] == "0");
    CHECK(*r1[18] == "0");
    CHECK(*r1[19] == "2024-05-01 10:00:00+00");
    CHECK(*r1[20] == "key-1");
    CHECK(*r1[21] == R"({"trace": "abc"})");
    auto& r2 = rows[1];
    CHECK_FALSE(r2[1].has_value());  // missing -> NULL
    CHECK(*r2[2] == "17");
    CHECK(*r2[8] == "f");
    CHECK(*r2[9] == "2024-05-01 10:00:00+00");
    CHECK(*r2[18] == "1");
    CHECK_FALSE(r2[20].has_value());  // no key
    // Typed values, not text: arithmetic works on them.
    CHECK(db.scalar("SELECT (i + 1)::text FROM " + t + " WHERE id = 2") == "18");
    CHECK(db.scalar("SELECT pg_typeof(u)::text FROM " + t + " LIMIT 1") == "uuid");
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("upsert keeps the last value per key, within a batch and across batches") {
    Db db;
    const std::string t = unique_name("upsert");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, v text, untouched text DEFAULT 'keep')");
    Harness h(yaml_dsn() + "table: " + t + R"(
mode: upsert
key: [id]
columns: {id: {from: id, type: bigint}, v: {from: v, type: text}}
batch: {max_rows: 1000, max_wait: 10ms}
)");
    h.send_values({R"({"id":1,"v":"a"})", R"({"id":2,"v":"b"})", R"({"id":1,"v":"c"})", R"({"id":3,"v":"x"})",
                   R"({"id":1,"v":"d"})"});
    REQUIRE(h.wait_done(5));
    CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + t) == "1=d,2=b,3=x");
    h.send_values({R"({"id":2,"v":"e"})", R"({"id":2,"v":"f"})", R"({"id":4,"v":"g"})"});
    REQUIRE(h.drain());
    CHECK(db.scalar("SELECT string_agg(id || '=' || v || '/' || untouched, ',' ORDER BY id) FROM " + t) ==
          "1=d/keep,2=f/keep,3=x/keep,4=g/keep");
    CHECK(h.acks->exactly_once(8, AckStatus::done));
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("tombstones delete rows by Kafka key, in order with upserts") {
    Db db;
    SUBCASE("single key column, upsert mode") {
      const std::string t = unique_name("tomb");
      db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, v text)");
      Harness h(yaml_dsn() + "table: " + t + R"(
mode: upsert
key: [id]
columns: {id: {from: id, type: bigint}, v: {from: v, type: text}}
batch: {max_rows: 1000, max_wait: 10ms}
)");
      h.send_values(
          {R"({"id":1,"v":"a"})", R"({"id":2,"v":"b"})", R"({"id":3,"v":"c"})", R"({"id":4,"v":"d"})"});
      REQUIRE(h.wait_done(4));
      Batch b;
      b.push_back(h.event(std::nullopt, "2"));            // delete 2
      b.push_back(h.event(R"({"id":3,"v":"c2"})", "3"));  // update 3 ...
      b.push_back(h.event(std::nullopt, "3"));            // ... then delete it
      b.push_back(h.event(std::nullopt, "4"));            // delete 4 ...
      b.push_back(h.event(R"({"id":4,"v":"d2"})", "4"));  // ... then recreate it
      b.push_back(h.event(std::nullopt, "99"));           // no such row: nothing happens
      h.send(std::move(b));
      REQUIRE(h.drain());
      CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + t) == "1=a,4=d2");
      CHECK(h.acks->exactly_once(10, AckStatus::done));
      db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
    }
    SUBCASE("composite key from a JSON Kafka key, insert mode") {
      const std::string t = unique_name("tomb2");
      db.exec("CREATE TABLE " + t + " (tenant text, id integer, v text, PRIMARY KEY (tenant, id))");
      Harness h(yaml_dsn() + "table: " + t + R"(
key: [tenant, id]
columns: {tenant: {from: tenant, type: text}, id: {from: id, type: integer}, v: {from: v, type: text}}
batch: {max_rows: 1000, max_wait: 10ms}
)");
      Batch b;
      b.push_back(h.event(R"({"tenant":"a","id":1,"v":"x"})"));
      b.push_back(h.event(R"({"tenant":"a","id":2,"v":"y"})"));
      b.push_back(h.event(std::nullopt, R"({"tenant":"a","id":1})"));
      b.push_back(h.event(R"({"tenant":"a","id":1,"v":"z"})"));
      b.push_back(h.event(std::nullopt, R"({"tenant":"a","id":2})"));
      b.push_back(h.event(std::nullopt, "not json"));  // cannot name a composite key: dead letter
      h.send(std::move(b));
      REQUIRE(h.drain());
      CHECK(db.scalar("SELECT string_agg(tenant || id || '=' || v, ',') FROM " + t) == "a1=z");
      CHECK(h.acks->count(AckStatus::done) == 5);
      CHECK(h.acks->settled_once(5, AckStatus::dead_lettered));
      CHECK(db.scalar("SELECT error FROM " + t + "_dead_letters").find("tombstone key") != std::string::npos);
      db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
    }
  }

  TEST_CASE("insert_ignore keeps existing rows and the first of repeated keys") {
    Db db;
    const std::string t = unique_name("ignore");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, v text)");
    db.exec("INSERT INTO " + t + " VALUES (1, 'old')");
    Harness h(yaml_dsn() + "table: " + t + R"(
mode: insert_ignore
key: [id]
columns: {id: {from: id, type: bigint}, v: {from: v, type: text}}
batch: {max_rows: 1000, max_wait: 10ms}
)");
    h.send_values({R"({"id":1,"v":"new"})", R"({"id":2,"v":"first"})", R"({"id":2,"v":"second"})"});
    REQUIRE(h.drain());
    CHECK(db.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM " + t) == "1=old,2=first");
    CHECK(h.acks->exactly_once(3, AckStatus::done));
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("poison records reach the dead-letter table; every good record lands") {
    Db db;
    const std::string t = unique_name("poison");
    const std::string dl = t + "_dl";
    db.exec("CREATE TABLE " + t +
            " (id bigint PRIMARY KEY, qty smallint CHECK (qty >= 0), name text NOT NULL)");
    for (std::string mode : {"insert", "upsert"}) {
      CAPTURE(mode);
      db.exec("TRUNCATE " + t);
      db.exec("DROP TABLE IF EXISTS " + dl);
      Harness h(yaml_dsn() + "table: " + t + "\nmode: " + mode + R"(
key: [id]
columns:
  id: {from: id, type: bigint, required: true}
  qty: {from: qty, type: smallint}
  name: {from: name, type: text, required: true}
batch: {max_rows: 1000, max_wait: 10ms}
dead_letter: {table: )" +
                dl + "}\n");
      std::vector<std::string> values;
      std::map<std::size_t, std::pair<std::string, std::string>> bad;  // token -> reason fragment, sqlstate
      for (int i = 0; i < 60; ++i) {
        std::size_t token = values.size();
        switch (i) {
          case 7:
            values.push_back(R"({"id": 7, "qty": 1, "name": )");
            bad[token] = {"invalid JSON", ""};
            break;
          case 13:
            values.push_back(R"({"id": 13, "qty": 1})");
            bad[token] = {"missing required field 'name'", ""};
            break;
          case 21:
            values.push_back(R"({"id": 21, "qty": 70000, "name": "x"})");
            bad[token] = {"column qty (smallint): 70000 out of range", ""};
            break;
          case 34:
            values.push_back(R"({"id": 34, "qty": -1, "name": "x"})");
            bad[token] = {"check constraint", "23514"};
            break;
          case 45:
            values.push_back(R"({"id": 45, "qty": 1, "name": "bad\u0000nul"})");
            bad[token] = {"NUL", ""};
            break;
          default:
            values.push_back(R"({"id": )" + std::to_string(i) + R"(, "qty": )" + std::to_string(i) +
                             R"(, "name": "n)" + std::to_string(i) + "\"}");
        }
      }
      if (mode == "insert") {  // a unique violation too: id 3 again
        values.push_back(R"({"id": 3, "qty": 1, "name": "dup"})");
        bad[values.size() - 1] = {"duplicate key", "23505"};
      }
      h.send_values(values);
      REQUIRE(h.drain());
      CHECK(h.ctx.failure_text() == "");
      const std::size_t good = values.size() - bad.size();
      CHECK(db.count(t) == static_cast<long>(good));
      CHECK(h.acks->total() == values.size());
      CHECK(h.acks->count(AckStatus::done) == good);
      CHECK(h.acks->count(AckStatus::dead_lettered) == bad.size());
      auto rows = db.rows(
          "SELECT \"offset\", error, sqlstate, topic, \"partition\", pipeline, stage, "
          "convert_from(value, 'UTF8'), failed_at IS NOT NULL FROM " +
          dl + " ORDER BY \"offset\"");
      REQUIRE(rows.size() == bad.size());
      std::size_t k = 0;
      for (auto& [token, expect] : bad) {
        CAPTURE(token);
        auto& row = rows[k++];
        CHECK(*row[0] == std::to_string(token));
        CHECK(row[1]->find(expect.first) != std::string::npos);
        if (expect.second.empty()) {
          CHECK_FALSE(row[2].has_value());
        } else {
          CHECK(row[2].value_or("") == expect.second);
        }
        CHECK(*row[3] == "orders");
        CHECK(*row[4] == "0");
        CHECK(*row[5] == "pgtest");
        CHECK(*row[6] == "to_pg");
        CHECK(*row[7] == values[token]);  // the raw bytes
        CHECK(h.acks->settled_once(token, AckStatus::dead_lettered));
      }
    }
    db.exec("DROP TABLE " + t + ", " + dl);
  }

  TEST_CASE(
      "poison records reach the dead-letter topic (alone, or with the table); every good record lands") {
    Db db;
    const std::string brokers = etld::test::services().kafka_brokers;
    for (bool with_table : {false, true}) {
      CAPTURE(with_table);
      const std::string t = unique_name("dlq");
      const std::string dl = t + "_dl";
      const std::string topic = etld::test::unique_name("pgsink-dlq");
      etld::test::create_topic(brokers, topic, 1);
      db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, qty smallint, name text NOT NULL)");
      Harness h(yaml_dsn() + "table: " + t + R"(
key: [id]
columns:
  id: {from: id, type: bigint, required: true}
  qty: {from: qty, type: smallint}
  name: {from: name, type: text, required: true}
batch: {max_rows: 1000, max_wait: 10ms}
dead_letter: {topic: )" +
                topic + ", brokers: '" + brokers + "'" + (with_table ? ", table: " + dl : std::string()) +
                "}\n");
      Batch batch;
      std::map<std::size_t, std::string> bad;  // token -> reason fragment
      std::vector<std::string> values;
      for (int i = 0; i < 30; ++i) {
        std::string v;
        switch (i) {
          case 4:
            v = R"({"id": 4, "qty": 1, "name": )";
            bad[values.size()] = "invalid JSON";
            break;
          case 11:
            v = R"({"id": 11, "qty": 1})";
            bad[values.size()] = "missing required field 'name'";
            break;
          case 19:
            v = R"({"id": 19, "qty": 70000, "name": "x"})";
            bad[values.size()] = "70000 out of range";
            break;
          default: v = R"({"id": )" + std::to_string(i) + R"(, "qty": 1, "name": "n"})";
        }
        values.push_back(v);
        Event e = h.event(v, i == 19 ? std::nullopt : std::optional<std::string>("k" + std::to_string(i)));
        e.headers.push_back({"trace", "t" + std::to_string(i)});
        batch.push_back(std::move(e));
      }
      h.send(std::move(batch));
      REQUIRE(h.drain());
      CHECK(h.ctx.failure_text() == "");
      const std::size_t good = values.size() - bad.size();
      CHECK(db.count(t) == static_cast<long>(good));
      CHECK(h.acks->count(AckStatus::done) == good);
      CHECK(h.acks->count(AckStatus::dead_lettered) == bad.size());
      // Without a table, none is created.
      CHECK(db.scalar("SELECT to_regclass('" + t + "_dead_letters') IS NULL") == "t");
      if (with_table) {
        CHECK(db.count(dl) == static_cast<long>(bad.size()));
      }
      auto records = read_topic(topic, bad.size());
      REQUIRE(records.size() == bad.size());
      std::size_t k = 0;
      for (auto& [token, reason] : bad) {
        CAPTURE(token);
        const auto& r = records[k++];
        CHECK(r.value == values[token]);  // the raw bytes
        if (token == 19) {
          CHECK_FALSE(r.key.has_value());
        } else {
          CHECK(r.key == "k" + std::to_string(token));
        }
        REQUIRE_FALSE(r.all_headers.empty());
        CHECK(r.all_headers[0] == std::pair<std::string, std::string>("trace", "t" + std::to_string(token)));
        CHECK(r.headers.at("etld.error").find(reason) != std::string::npos);
        CHECK(r.headers.count("etld.sqlstate") == 0);
        CHECK(r.headers.at("etld.pipeline") == "pgtest");
        CHECK(r.headers.at("etld.stage") == "to_pg");
        CHECK(r.headers.at("etld.topic") == "orders");
        CHECK(r.headers.at("etld.partition") == "0");
        CHECK(r.headers.at("etld.offset") == std::to_string(token));
        const std::string at = r.headers.at("etld.failed_at");
        CHECK(at.size() == 24);  // 2026-01-01T00:00:00.000Z
        CHECK(at.back() == 'Z');
        CHECK(at[10] == 'T');
        CHECK(h.acks->settled_once(token, AckStatus::dead_lettered));
      }
      db.exec("DROP TABLE " + t + (with_table ? ", " + dl : std::string()));
    }
  }

  TEST_CASE("an unreachable dead-letter topic holds the poison records back: never settled, retried") {
    Db db;
    const std::string t = unique_name("dlq_down");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY)");
    {
      Harness h(yaml_dsn() + "table: " + t + R"(
columns: {id: {from: id, type: bigint, required: true}}
batch: {max_rows: 1000, max_wait: 10ms}
retry: {initial_backoff: 50ms, max_backoff: 200ms}
dead_letter: {topic: nowhere, brokers: '127.0.0.1:1', librdkafka: {message.timeout.ms: 300}}
)");
      h.send_values({R"({"id": 1})", R"({"id": )", R"({"id": 3})"});
      etld::test::run_until(
          h.io, [] { return false; }, 3s);
      CHECK(h.ctx.failure_text() == "");
      CHECK(db.count(t) == 2);                     // the good records are committed...
      CHECK(h.acks->count(AckStatus::done) == 0);  // ...but the batch is not settled
      CHECK(h.acks->count(AckStatus::dead_lettered) == 0);
    }  // stop() interrupts the retries
    db.exec("DROP TABLE " + t);
  }

  TEST_CASE("on_poison pause_partition settles bad records failed and writes no dead letters") {
    Db db;
    const std::string t = unique_name("pause");
    db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, qty smallint)");
    Harness h(yaml_dsn() + "table: " + t + R"(
columns: {id: {from: id, type: bigint}, qty: {from: qty, type: smallint}}
batch: {max_rows: 1000, max_wait: 10ms}
)",
              etld::PoisonPolicy::pause_partition);
    h.send_values({R"({"id":1,"qty":1})", R"({"id":2,"qty":99999})", R"({"id":3,"qty":3})"});
    REQUIRE(h.drain());
    CHECK(db.count(t) == 2);
    CHECK(h.acks->settled_once(1, AckStatus::failed));
    CHECK(h.acks->count(AckStatus::done) == 2);
    CHECK(db.scalar("SELECT to_regclass('" + t + "_dead_letters') IS NULL") == "t");
    db.exec("DROP TABLE " + t);
  }

  TEST_CASE("the dead-letter guard: pause (default) holds the bad records, stop stops, alert dead-letters") {
    Db db;
    const std::string t = unique_name("guard");
    db.exec("CREATE TABLE " + t + " (id bigint, qty smallint)");
    std::vector<std::string> values;  // 150 of 200 out of range for smallint
    for (int i = 0; i < 200; ++i)
      values.push_back(R"({"id":)" + std::to_string(i) + R"(,"qty":)" + (i % 4 == 0 ? "1" : "100000") + "}");
    const std::string options = yaml_dsn() + "table: " + t + R"(
columns: {id: {from: id, type: bigint}, qty: {from: qty, type: smallint}}
batch: {max_rows: 1000, max_wait: 10ms}
)";
    SUBCASE("pause, the default: the pipeline goes on, the bad records stay failed, nothing dead-lettered") {
      Harness h(options);
      h.send_values(values);
      REQUIRE(h.wait_done(200));
      CHECK(h.ctx.error == nullptr);
      CHECK(h.acks->count(AckStatus::done) == 50);
      CHECK(h.acks->count(AckStatus::failed) == 150);  // the kafka source holds their partition
      CHECK(h.acks->count(AckStatus::dead_lettered) == 0);
      CHECK(db.scalar("SELECT count(*) FROM " + t + "_dead_letters") == "0");
      h.send_values({R"({"id":1000,"qty":2})"});  // and the sink still writes
      REQUIRE(h.wait_done(201));
      CHECK(db.count(t) == 51);
    }
    SUBCASE("stop") {
      Harness h(options + "on_dead_letter_ratio: stop\n");
      h.send_values(values);
      REQUIRE(etld::test::run_until(
          h.io, [&] { return h.ctx.error != nullptr; }, 20s));
      CHECK(h.ctx.failure_text().find("max_dead_letter_ratio") != std::string::npos);
      CHECK(h.ctx.failure_text().find("out of range") != std::string::npos);
      CHECK(h.ctx.failure_text().find("on_dead_letter_ratio: stop") != std::string::npos);
      CHECK(h.acks->count(AckStatus::done) == 50);
      CHECK(h.acks->count(AckStatus::failed) == 150);  // not dead-lettered: a fixed config replays them
      CHECK(h.acks->count(AckStatus::dead_lettered) == 0);
    }
    SUBCASE("alert: logged and counted, and dead-lettered like any bad record") {
      Harness h(options + "on_dead_letter_ratio: alert\n");
      h.send_values(values);
      REQUIRE(h.wait_done(200));
      CHECK(h.ctx.error == nullptr);
      CHECK(h.acks->count(AckStatus::done) == 50);
      CHECK(h.acks->count(AckStatus::dead_lettered) == 150);
      CHECK(db.scalar("SELECT count(*) FROM " + t + "_dead_letters WHERE error LIKE '%out of range%'") ==
            "150");
    }
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("binary Kafka keys: as bytea 128 and 255 stay two rows; as text they are dead letters") {
    Db db;
    const std::string k128("\0\0\0\0\0\0\0\x80", 8), k255("\0\0\0\0\0\0\0\xff", 8);
    std::string t;
    auto keyed_by = [&](const std::string& type) {
      t = unique_name("key_" + type);
      db.exec("CREATE TABLE " + t + " (k " + type + " PRIMARY KEY, v text)");
      return std::make_unique<Harness>(
          yaml_dsn() + "table: " + t + "\nmode: upsert\nkey: [k]\ncolumns: {k: {from: _key, type: " + type +
          "}, v: {from: v, type: text}}\nbatch: {max_rows: 1000, max_wait: 10ms}\n");
    };
    SUBCASE("bytea: two rows, and a tombstone deletes the row its key wrote") {
      auto h = keyed_by("bytea");
      Batch b;
      b.push_back(h->event(R"({"v":"a"})", k128));
      b.push_back(h->event(R"({"v":"b"})", k255));
      h->send(std::move(b));
      REQUIRE(h->wait_done(2));
      CHECK(db.scalar("SELECT string_agg(encode(k, 'hex') || '=' || v, ',' ORDER BY k) FROM " + t) ==
            "0000000000000080=a,00000000000000ff=b");
      Batch del;
      del.push_back(h->event(std::nullopt, k128));
      h->send(std::move(del));
      REQUIRE(h->wait_done(3));
      CHECK(h->acks->settled_once(2, AckStatus::done));
      CHECK(db.scalar("SELECT string_agg(encode(k, 'hex') || '=' || v, ',') FROM " + t) ==
            "00000000000000ff=b");
    }
    SUBCASE("text: a key that is not UTF-8 is a dead letter with its reason and coordinates") {
      auto h = keyed_by("text");
      Batch b;
      b.push_back(h->event(R"({"v":"a"})", k128));
      b.push_back(h->event(R"({"v":"b"})", k255));
      b.push_back(h->event(R"({"v":"c"})", "plain"));
      b.push_back(h->event(std::nullopt, k255));  // a tombstone of a binary key: the same reason
      h->send(std::move(b));
      REQUIRE(h->wait_done(4));
      CHECK(db.scalar("SELECT string_agg(k || '=' || v, ',') FROM " + t) == "plain=c");
      CHECK(db.scalar(
                "SELECT string_agg(\"offset\" || ':' || encode(key, 'hex'), ',' ORDER BY \"offset\") FROM " +
                t +
                "_dead_letters WHERE topic = 'orders' AND \"partition\" = 0 AND error LIKE "
                "'%column k (text): the Kafka key (8 bytes) is not valid UTF-8%bytea%'") ==
            "0:0000000000000080,1:00000000000000ff,3:00000000000000ff");
    }
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE(
      "the default dead-letter table's name fits PostgreSQL's 63 bytes; a longer explicit one is refused") {
    auto parse = [](const std::string& yaml) {
      etld::StageConfig cfg;
      cfg.name = "to_pg";
      cfg.type = "postgres";
      cfg.node = YAML::Load(yaml);
      cfg.options = etld::Options(cfg.node, &etld::find_stage_type("postgres")->options);
      etld::PipelineConfig pipeline;
      return etld::pg::parse_config(cfg, pipeline);
    };
    const std::string name63(63, 'a');
    auto c = parse("dsn: 'host=localhost'\ntable: " + name63 + "\ncolumns: {id: bigint}\n");
    CHECK(c.dead_letter_display == std::string(50, 'a') + "_dead_letters");
    CHECK(c.dead_letter_display.size() == 63);
    CHECK(c.dead_letter_display != c.display);
    CHECK(parse("dsn: 'host=localhost'\ntable: orders\ncolumns: {id: bigint}\n").dead_letter_display ==
          "orders_dead_letters");
    try {
      parse("dsn: 'host=localhost'\ntable: t\ncolumns: {id: bigint}\ndead_letter: {table: " +
            std::string(64, 'd') + "}\n");
      FAIL("a 64-byte dead_letter.table was accepted");
    } catch (const etld::ConfigError& e) {
      CHECK(std::string(e.what()).find("longer than PostgreSQL's 63 bytes") != std::string::npos);
    }
    // A table named like its own default dead-letter table: refused, not silently shared.
    const std::string self = std::string(50, 'b') + "_dead_letters";
    CHECK_THROWS_AS(parse("dsn: 'host=localhost'\ntable: " + self + "\ncolumns: {id: bigint}\n"),
                    etld::ConfigError);
  }

  TEST_CASE("a slow table holds back done() and credits without blocking the strand's thread") {
    Db db;
    const std::string t = unique_name("slow");
    db.exec("CREATE TABLE " + t + " (id bigint)");
    db.exec("CREATE FUNCTION " + t +
            "_sleep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); "
            "RETURN NULL; END $$");
    db.exec("CREATE TRIGGER slow AFTER INSERT ON " + t + " FOR EACH STATEMENT EXECUTE FUNCTION " + t +
            "_sleep()");
    Harness h(yaml_dsn() + "table: " + t + R"(
columns: {id: {from: id, type: bigint}}
batch: {max_rows: 10, max_wait: 10ms}
)");
    h.send_values({"{\"id\":1}", "{\"id\":2}", "{\"id\":3}", "{\"id\":4}", "{\"id\":5}", "{\"id\":6}",
                   "{\"id\":7}", "{\"id\":8}", "{\"id\":9}", "{\"id\":10}"});
    // Meanwhile the io_context (the pool) stays free: a timer fires on time.
    boost::asio::steady_timer timer(h.io, 300ms);
    bool fired = false;
    timer.async_wait([&](const boost::system::error_code&) { fired = true; });
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(etld::test::run_until(
        h.io, [&] { return fired; }, 5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1000ms);
    CHECK(h.ctx.done_total == 0);
    CHECK(h.acks->total() == 0);
    REQUIRE(h.wait_done(10, 10s));
    CHECK(h.acks->exactly_once(10, AckStatus::done));
    CHECK(db.count(t) == 10);
    REQUIRE(h.drain());
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
    db.exec("DROP FUNCTION " + t + "_sleep()");
  }

  TEST_CASE("PostgreSQL stopped mid-stream: nothing lost, nothing dead-lettered") {
    const std::string src = std::getenv("ETLD_SOURCE_DIR") ? std::getenv("ETLD_SOURCE_DIR") : ETLD_SOURCE_DIR;
    const std::string t = unique_name("outage");
    {
      Db db;
      db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, v text)");
    }
    // Restarts PostgreSQL whatever happens to the test.
    struct Restart {
      std::string src;
      std::thread th;
      ~Restart() {
        if (th.joinable()) th.join();
        std::system((src + "/scripts/dev-env pg-start >/dev/null 2>&1").c_str());
      }
    } restart{src, {}};
    Harness h(yaml_dsn() + "table: " + t + R"(
mode: upsert
key: [id]
columns: {id: {from: id, type: bigint}, v: {from: v, type: text}}
batch: {max_rows: 200, max_wait: 20ms}
retry: {initial_backoff: 50ms, max_backoff: 500ms}
)");
    const int batches = 40, per_batch = 100;
    std::atomic<bool> outage_done{false};
    std::atomic<int> stop_status{-1}, start_status{-1};
    int sent = 0;
    for (int b = 0; b < batches; ++b) {
      std::vector<std::string> values;
      for (int i = 0; i < per_batch; ++i, ++sent)
        values.push_back(R"({"id":)" + std::to_string(sent) + R"(,"v":"v)" + std::to_string(sent) + "\"}");
      h.send_values(values);
      etld::test::run_until(
          h.io, [] { return false; }, 100ms);
      if (b == 5)
        restart.th = std::thread([&] {
          stop_status = std::system((src + "/scripts/dev-env pg-stop >/dev/null 2>&1").c_str());
          std::this_thread::sleep_for(3s);
          start_status = std::system((src + "/scripts/dev-env pg-start >/dev/null 2>&1").c_str());
          outage_done = true;
        });
    }
    REQUIRE(etld::test::run_until(
        h.io, [&] { return outage_done.load(); }, 60s));
    CHECK(stop_status == 0);
    CHECK(start_status == 0);
    REQUIRE(h.drain(60s));
    CHECK(h.ctx.failure_text() == "");
    CHECK(h.acks->exactly_once(static_cast<std::uint64_t>(sent), AckStatus::done));
    Db db;
    CHECK(db.count(t) == sent);
    CHECK(db.count(t + "_dead_letters") == 0);
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  TEST_CASE("check_live catches each mapping mistake at its option") {
    Db db;
    const std::string t = unique_name("live");
    db.exec("CREATE TABLE " + t +
            " (id integer PRIMARY KEY, qty integer NOT NULL, name text, must integer NOT NULL, "
            "opt integer NOT NULL DEFAULT 0)");
    const etld::StageType* type = etld::find_stage_type("postgres");
    REQUIRE(type != nullptr);
    REQUIRE(type->check_live);
    // Returns "line: message" (1-based line of the culprit) or "" when the check passes.
    auto check = [&](const std::string& yaml) -> std::string {
      etld::StageConfig cfg;
      cfg.name = "to_pg";
      cfg.type = "postgres";
      cfg.node = YAML::Load(yaml);
      cfg.options = etld::Options(cfg.node, &type->options);
      etld::PipelineConfig pipeline;
      try {
        type->check_live(cfg, pipeline);
      } catch (const etld::ConfigError& e) {
        return std::to_string(e.mark().line + 1) + ": " + e.what() + " | " + e.hint();
      }
      return "";
    };
    const std::string head = yaml_dsn() + "table: " + t + "\n";
    const std::string good_cols =
        "columns:\n  id: {from: id, type: integer}\n  qty: {from: qty, type: integer}\n  must: {from: m, "
        "type: "
        "smallint}\n";
    CHECK(check(head + good_cols) == "");
    CHECK(check(head + "mode: upsert\nkey: [id]\n" + good_cols) == "");
    // Table missing (line 2), unless create_table.
    auto missing = check(yaml_dsn() + "table: " + t + "_nope\n" + good_cols);
    CHECK(missing.find("2: table " + t + "_nope does not exist") == 0);
    CHECK(check(yaml_dsn() + "table: " + t + "_nope\ncreate_table: true\n" + good_cols) == "");
    // A mapped column missing: at its entry, with did-you-mean.
    auto typo = check(head + good_cols + "  nmae: {from: name, type: text}\n");
    CHECK(typo.find("7: table " + t + " has no column 'nmae'") == 0);
    CHECK(typo.find("name") != std::string::npos);
    // A column that cannot take the mapped type: at the type.
    auto wrong = check(head +
                       "columns:\n  id: {from: id, type: integer}\n  qty: {from: qty, type: text}\n  must: "
                       "{from: m, type: integer}\n");
    CHECK(wrong.find("5: column 'qty' of table " + t + " is integer: values mapped as text") == 0);
    auto wider = check(head +
                       "columns:\n  id: {from: id, type: bigint}\n  qty: {from: qty, type: integer}\n  must: "
                       "{from: m, type: integer}\n");
    CHECK(wider.find("4: column 'id'") == 0);
    // NOT NULL without default, unmapped: at 'columns'.
    auto notnull =
        check(head + "columns:\n  id: {from: id, type: integer}\n  qty: {from: qty, type: integer}\n");
    INFO(notnull);
    CHECK(notnull.find("4: column 'must'") == 0);  // the first line of the 'columns' map
    CHECK(notnull.find("NOT NULL without a default") != std::string::npos);
    // Conflict target without a unique index covering exactly the key.
    auto conflict = check(head + "mode: upsert\nkey: [id, qty]\n" + good_cols);
    CHECK(conflict.find("4: no unique index or constraint") == 0);
    auto conflict2 = check(head + "mode: insert_ignore\nkey: [qty]\n" + good_cols);
    CHECK(conflict2.find("no unique index or constraint") != std::string::npos);
    db.exec("CREATE UNIQUE INDEX ON " + t + " (qty, id)");
    CHECK(check(head + "mode: upsert\nkey: [id, qty]\n" + good_cols) == "");
    // A foreign dead-letter table without the expected columns.
    db.exec("CREATE TABLE " + t + "_dl (id bigint)");
    CHECK(check(head + good_cols + "dead_letter: {table: " + t + "_dl}\n").find("lacks column") !=
          std::string::npos);
    // Unreachable database: at the dsn, without the password.
    auto down = check("dsn: 'postgresql://etld:sekrit@127.0.0.1:1/etld'\ntable: x\n" + good_cols);
    CHECK(down.find("1: cannot connect") == 0);
    CHECK(down.find("sekrit") == std::string::npos);
    db.exec("DROP TABLE " + t + ", " + t + "_dl");
  }

  TEST_CASE("in a real pipeline: generate -> postgres, two instances partitioned by key") {
    Db db;
    const std::string t = unique_name("pipe");
    etld::Pipeline p(etld::test::config_from(R"(pipeline: pgpipe
stages:
  gen:
    type: generate
    count: 20000
    template: '{"id": {{seq % 5000}}, "v": "x{{seq}}"}'
  to_pg:
    type: postgres
    inputs: [gen]
    concurrency: 2
    partition_by: id
    )" + yaml_dsn() + "    table: " + t + R"(
    mode: upsert
    key: [id]
    create_table: true
    columns: {id: {from: id, type: bigint}, v: {from: v, type: text}}
    batch: {max_rows: 10000, max_wait: 30s}
)"));
    // max_rows and max_wait are never reached: each instance holds at most max_demand (1000)
    // events, so it writes as soon as it holds that many instead of waiting 30 s for more.
    auto t0 = std::chrono::steady_clock::now();
    p.start();
    REQUIRE_MESSAGE(p.wait_for(60s), "pipeline did not finish");
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
    CHECK(p.error() == std::nullopt);
    CHECK(db.count(t) == 5000);
    // Per key the last value wins: ids 0..4999 saw seq id, id+5000, id+10000, id+15000.
    CHECK(db.scalar("SELECT count(*) FROM " + t + " WHERE v <> 'x' || (id + 15000)") == "0");
    db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
  }

  // Not run by default (doctest --no-skip -tc='*throughput*'): rows/s through the sink, encode
  // included, for insert and upsert modes and a few batch sizes.
  TEST_CASE("throughput" * doctest::skip()) {
    Db db;
    for (std::string mode : {"insert", "upsert"})
      for (int max_rows : {1000, 10000}) {
        const std::string t = unique_name("bench");
        db.exec("CREATE TABLE " + t + " (id bigint PRIMARY KEY, v text, n integer)");
        Harness h(yaml_dsn() + "table: " + t + "\nmode: " + mode + "\nkey: [id]\n" +
                  "columns: {id: {from: id, type: bigint}, v: {from: v, type: text}, n: {from: n, type: "
                  "integer}}\n" +
                  "batch: {max_rows: " + std::to_string(max_rows) + ", max_wait: 50ms}\n");
        const int total = 300000;
        Batch b;
        for (int i = 0; i < total; ++i)
          b.push_back(h.event(R"({"id":)" + std::to_string(i) + R"(,"v":"value )" + std::to_string(i) +
                              R"(","n":)" + std::to_string(i % 1000) + "}"));
        auto t0 = std::chrono::steady_clock::now();
        h.send(std::move(b));
        REQUIRE(h.drain(120s));
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        MESSAGE(mode << " max_rows=" << max_rows << ": " << static_cast<int>(total / secs) << " rows/s");
        CHECK(db.count(t) == total);
        db.exec("DROP TABLE " + t + ", " + t + "_dead_letters");
      }
  }

}  // TEST_SUITE
