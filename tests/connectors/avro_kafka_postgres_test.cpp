// Avro in the Confluent wire format end to end: records framed by hand (magic byte, schema id,
// a body written by avro-c) through the real broker, the kafka source (format: avro, key_format:
// avro) with the in-test registry (tests/support/avro_test_registry.hpp, basic auth) and the
// postgres sink into a real PostgreSQL. Every type lands exactly (decimals, dates, timestamps,
// uuids, bytes); poison records (not the wire format, an unknown schema id, a truncated body,
// trailing bytes) are dead letters with their reason, coordinates and raw bytes, and the rest goes
// on; a registry answering 503 holds the partition (nothing lost, nothing dead-lettered, retries
// counted in /metrics) until it recovers.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "connectors/avro/wire_format.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/metrics.hpp"
#include "stages/engine/pipeline.hpp"
#include "tests/support/avro_test_datum.hpp"
#include "tests/support/avro_test_registry.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kValueId = 1, kKeyId = 2;

constexpr const char* kValueSchema = R"({"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"name","type":"string"},
  {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
  {"name":"big","type":{"type":"fixed","name":"Big","size":16,"logicalType":"decimal","precision":38,"scale":4}},
  {"name":"day","type":{"type":"int","logicalType":"date"}},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"at_us","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"tod","type":{"type":"long","logicalType":"time-micros"}},
  {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
  {"name":"payload","type":"bytes"},
  {"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"note","type":["null","string"]},
  {"name":"score","type":"double"},
  {"name":"ok","type":"boolean"}]})";
constexpr const char* kKeySchema =
    R"({"type":"record","name":"OrderKey","fields":[{"name":"id","type":"long"}]})";

using etld::test::eventually;
using etld::test::scalar;

// The big-endian two's complement of `v` in 16 bytes (a fixed(16) decimal).
std::string fixed16(__int128 v) {
  std::string out(16, '\0');
  for (int i = 15; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

std::string order(etld::test::Datum& d, std::int64_t id) {
  d.reset();
  d.set_long("id", id);
  d.set_string("name", "order " + std::to_string(id) + " \xc3\xa9");
  // 12345.67 + id cents, as the unscaled 1234567 + id in big-endian bytes.
  const std::int64_t cents = 1234567 + id;
  d.set_bytes("amount", std::string{static_cast<char>(cents >> 16), static_cast<char>(cents >> 8),
                                    static_cast<char>(cents)});
  // -12345678901234567890123.4567 - id / 10^4: beyond 64 bits, every digit kept.
  d.set_fixed("big", fixed16(-(static_cast<__int128>(1234567890123456789LL) * 100000000 + 1234567 + id)));
  d.set_int("day", 20793);                // 2026-12-06
  d.set_long("at", 1796558400123 + id);   // 2026-12-06T12:00:00.123Z + id ms
  d.set_long("at_us", 1796558400123456);  // 2026-12-06T12:00:00.123456Z
  d.set_long("tod", 45296000001);         // 12:34:56.000001
  d.set_string("uid", "0f8fad5b-d9cb-469f-a165-70867728950e");
  d.set_bytes("payload", std::string("\0\xff\x80\n", 4));  // not text: bytea keeps it
  d.set_enum("color", static_cast<int>(id % 2));
  avro_value_t tags = d.field("tags");
  for (const char* t : {"a", "b"}) {
    avro_value_t item;
    avro_value_append(&tags, &item, nullptr);
    avro_value_set_string(&item, t);
  }
  avro_value_t b = etld::test::Datum::branch(d.field("note"), id % 3 == 0 ? 0 : 1);
  if (id % 3 != 0) avro_value_set_string(&b, "note");
  d.set_double("score", 0.1);
  d.set_boolean("ok", id % 2 == 0);
  return etld::avro::wire_header(kValueId) + d.body();
}

std::string key_of(etld::test::Datum& k, std::int64_t id) {
  k.set_long("id", id);
  return etld::avro::wire_header(kKeyId) + k.body();
}

std::string pipeline_yaml(const std::string& topic, const std::string& table,
                          const std::string& registry_url) {
  return "pipeline: avro\nstages:\n  in:\n    type: kafka\n    brokers: ${KAFKA_BROKERS}\n    topics: [" +
         topic + "]\n    group: " + etld::test::unique_name("g-avro") +
         "\n    format: avro\n    key_format: avro\n"
         "    schema_registry: {url: '" +
         registry_url +
         "', username: etld, password: registry-pass-123, timeout: 2s}\n"
         "  out:\n    type: postgres\n    inputs: [in]\n    dsn: ${PG_DSN}\n    table: " +
         table +
         "\n    create_table: true\n    mode: upsert\n    key: [id]\n    batch: {max_rows: 200, max_wait: "
         "20ms}\n"
         "    columns:\n"
         "      id: {from: id, type: bigint}\n"
         "      name: {from: name, type: text}\n"
         "      amount: {from: amount, type: numeric}\n"
         "      big: {from: big, type: numeric}\n"
         "      day: {from: day, type: date}\n"
         "      at: {from: at, type: timestamptz}\n"
         "      at_us: {from: at_us, type: timestamptz}\n"
         "      tod: {from: tod, type: text}\n"
         "      uid: {from: uid, type: uuid}\n"
         "      payload: {from: payload, type: bytea}\n"
         "      color: {from: color, type: text}\n"
         "      tags: {from: tags, type: jsonb}\n"
         "      note: {from: note, type: text}\n"
         "      score: {from: score, type: double precision}\n"
         "      ok: {from: ok, type: boolean}\n"
         "      k: {from: _key, type: text}\n"
         "      off: {from: _offset, type: bigint}\n";
}

std::string metrics_text(const etld::Pipeline& p) {
  etld::metrics::Exposition out;
  p.metrics().collect(out);
  return out.render();
}

}  // namespace

TEST_SUITE("kafka to postgres: avro") {
  TEST_CASE(
      "Avro records land exactly; poison records are dead letters with reasons; a failing registry holds") {
    const auto& svc = etld::test::services();
    const std::string topic = etld::test::unique_name("avro");
    const std::string table = "avro_" + std::to_string(::getpid());
    etld::test::create_topic(svc.kafka_brokers, topic, 2);
    etld::test::TestRegistry registry;
    registry.add(kValueId, kValueSchema);
    registry.add(kKeyId, kKeySchema);
    registry.require_auth("etld:registry-pass-123");
    registry.fail_with(503);  // down at first: a transient failure

    constexpr int n = 300;
    etld::test::Datum value(kValueSchema), key(kKeySchema);
    std::string truncated, trailing;
    {
      etld::test::TestProducer producer(svc.kafka_brokers);
      for (int id = 1; id <= n; ++id) {
        const std::string v = order(value, id);
        producer.send(topic, {key_of(key, id), v, {}, id % 2, 0});
        if (id == 100) truncated = v.substr(0, v.size() - 3), trailing = v + "xy";
      }
      // Poison, all in partition 0, keyed so that their dead letters can be told apart.
      producer.send(topic, {key_of(key, 1001), std::string(R"({"id":1001})"), {}, 0, 0});
      producer.send(topic, {key_of(key, 1002), std::string("\0\0\0\0\x63", 5) + "body", {}, 0, 0});
      producer.send(topic, {key_of(key, 1003), truncated, {}, 0, 0});
      producer.send(topic, {key_of(key, 1004), trailing, {}, 0, 0});
      producer.send(topic, {std::string("plain-key"), order(value, 1005), {}, 0, 0});
      producer.flush();
    }

    etld::pg::PgConnection db(svc.pg_dsn);
    etld::Pipeline p(etld::test::config_from(pipeline_yaml(topic, table, registry.url())));
    p.start();
    // While the registry answers 503, nothing goes anywhere, and the retries are counted.
    CHECK(eventually([&] { return registry.requests().size() >= 3; }, 20s));
    std::this_thread::sleep_for(300ms);
    CHECK(metrics_text(p).find(
              "etld_schema_registry_retries_total{pipeline=\"avro\",stage=\"in\",instance=\"0\"}") !=
          std::string::npos);
    REQUIRE(eventually([&] {
      return scalar(db, "SELECT to_regclass('" + table + "') IS NOT NULL AND to_regclass('" + table +
                            "_dead_letters') IS NOT NULL") == "t";
    }));
    CHECK_FALSE(eventually([&] { return scalar(db, "SELECT count(*) FROM " + table) != "0"; }, 1s));
    CHECK_FALSE(
        eventually([&] { return scalar(db, "SELECT count(*) FROM " + table + "_dead_letters") != "0"; }, 1s));
    registry.fail_with(std::nullopt);

    CHECK(eventually([&] {
      return scalar(db, "SELECT count(*) FROM " + table) == std::to_string(n) &&
             scalar(db, "SELECT count(*) FROM " + table + "_dead_letters") == "5";
    }));
    // Each type exactly as written.
    CHECK(
        scalar(db,
               "SELECT concat_ws('|', name, amount::text, big::text, day::text, "
               "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
               "to_char(at_us AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), tod, uid::text, "
               "encode(payload, 'hex'), color, tags::text, coalesce(note, 'NULL'), score::text, ok::text, k) "
               "FROM " +
                   table + " WHERE id = 42") ==
        "order 42 \xc3\xa9|12346.09|-12345678901234567890123.4609|2026-12-06|2026-12-06 12:00:00.165000|"
        "2026-12-06 12:00:00.123456|12:34:56.000001|0f8fad5b-d9cb-469f-a165-70867728950e|00ff800a|RED|"
        "[\"a\", \"b\"]|NULL|0.1|true|{\"id\":42}");
    CHECK(scalar(db, "SELECT count(*) FROM " + table +
                         " WHERE big = -12345678901234567890123.4567 - id / 10000.0 "
                         "AND amount = 12345.67 + id / 100.0") == std::to_string(n));
    CHECK(scalar(db, "SELECT count(*) FROM " + table + " WHERE note IS NULL") == std::to_string(n / 3));

    // The dead letters: reason, coordinates, the raw bytes.
    const std::string dl = table + "_dead_letters";
    const std::string url = registry.url();
    CHECK(scalar(db, "SELECT error FROM " + dl + " WHERE value = convert_to('{\"id\":1001}', 'UTF8')") ==
          "stage 'in': avro: wrong magic byte 0x7b (expected 0: not the Confluent wire format)");
    CHECK(scalar(db, "SELECT error FROM " + dl + " WHERE encode(value, 'hex') = '0000000063626f6479'") ==
          "stage 'in': avro: schema id 99 not found in the registry at " + url);
    CHECK(scalar(
              db, "SELECT count(*) FROM " + dl + " WHERE value = decode('" +
                      [&] {
                        std::string hex;
                        for (unsigned char c : truncated) hex += fmt::format("{:02x}", c);
                        return hex;
                      }() +
                      "', 'hex') AND error LIKE 'stage ''in'': avro: body does not decode with schema id 1: "
                      "%truncated%'") == "1");
    CHECK(scalar(db, "SELECT error FROM " + dl + " WHERE error LIKE '%trailing%'") ==
          "stage 'in': avro: body does not decode with schema id 1: trailing bytes: 2 of the body's " +
              std::to_string(trailing.size() - 5) + " bytes are left after the datum");
    CHECK(scalar(db, "SELECT error FROM " + dl + " WHERE key = convert_to('plain-key', 'UTF8')") ==
          "stage 'in': avro: key: wrong magic byte 0x70 (expected 0: not the Confluent wire format)");
    CHECK(scalar(db, "SELECT count(*) FROM " + dl + " WHERE topic = '" + topic +
                         "' AND partition = 0 AND \"offset\" >= 0") == "5");
    // No credential anywhere a reason could show it.
    CHECK(scalar(db, "SELECT count(*) FROM " + dl + " WHERE error LIKE '%registry-pass%'") == "0");
    // Basic auth was sent with every request.
    for (const auto& r : registry.requests())
      CHECK(r.authorization == "Basic ZXRsZDpyZWdpc3RyeS1wYXNzLTEyMw==");
    CHECK(metrics_text(p).find(
              "etld_kafka_avro_rejected_total{pipeline=\"avro\",stage=\"in\",instance=\"0\"} 5") !=
          std::string::npos);
    CHECK(metrics_text(p).find(
              "etld_schema_registry_fetches_total{pipeline=\"avro\",stage=\"in\",instance=\"0\"} 2") !=
          std::string::npos);

    p.stop();
    CHECK(p.wait_for(30s));
    CHECK(p.error() == std::nullopt);
    db.exec("DROP TABLE " + table + ", " + dl);
  }

  TEST_CASE("a partition waiting for a schema keeps its order: a later record never overtakes it") {
    const auto& svc = etld::test::services();
    const std::string topic = etld::test::unique_name("avro-order");
    const std::string table = "avro_order_" + std::to_string(::getpid());
    etld::test::create_topic(svc.kafka_brokers, topic, 1);
    // Two writer schemas of the same record; the first record's is slow to come.
    constexpr const char* kOld = R"({"type":"record","name":"V","fields":[{"name":"v","type":"string"}]})";
    constexpr const char* kNew =
        R"({"type":"record","name":"V","fields":[{"name":"v","type":"string"},{"name":"n","type":"int"}]})";
    etld::test::TestRegistry registry;
    registry.add(3, kOld);
    registry.add(4, kNew);
    registry.add(kKeyId, kKeySchema);
    registry.fail_id(3, 503);
    {
      etld::test::Datum key(kKeySchema), old_value(kOld), new_value(kNew);
      old_value.set_string("v", "first");
      new_value.set_string("v", "second");
      new_value.set_int("n", 2);
      etld::test::TestProducer producer(svc.kafka_brokers);
      producer.send(topic, {key_of(key, 1), etld::avro::wire_header(3) + old_value.body(), {}, 0, 0});
      producer.send(topic, {key_of(key, 1), etld::avro::wire_header(4) + new_value.body(), {}, 0, 0});
      producer.flush();
    }
    const std::string yaml =
        "pipeline: avro_order\nstages:\n  in:\n    type: kafka\n    brokers: ${KAFKA_BROKERS}\n    topics: "
        "[" +
        topic + "]\n    group: " + etld::test::unique_name("g-avro-order") +
        "\n    format: avro\n    key_format: avro\n    schema_registry: {url: '" + registry.url() +
        "'}\n  out:\n    type: postgres\n    inputs: [in]\n    dsn: ${PG_DSN}\n    table: " + table +
        "\n    create_table: true\n    mode: upsert\n    key: [id]\n    batch: {max_rows: 1, max_wait: 1ms}\n"
        "    columns: {id: {from: _key, type: jsonb}, v: {from: v, type: text}, off: {from: _offset, type: "
        "bigint}}\n";
    etld::pg::PgConnection db(svc.pg_dsn);
    etld::Pipeline p(etld::test::config_from(yaml));
    p.start();
    CHECK(eventually([&] { return registry.requests().size() >= 3; }, 20s));  // schema 3 refused, retried
    CHECK(eventually([&] { return scalar(db, "SELECT to_regclass('" + table + "') IS NOT NULL") == "t"; }));
    // Schema 4 is there, but its record waits behind the one that needs schema 3.
    CHECK_FALSE(eventually([&] { return scalar(db, "SELECT count(*) FROM " + table) != "0"; }, 1s));
    for (const auto& r : registry.requests()) CHECK(r.target != "/schemas/ids/4");
    registry.fail_id(3, std::nullopt);
    CHECK(eventually([&] { return scalar(db, "SELECT v || '@' || off FROM " + table) == "second@1"; }));
    p.stop();
    CHECK(p.wait_for(30s));
    CHECK(p.error() == std::nullopt);
    CHECK(scalar(db, "SELECT v || '@' || off FROM " + table) == "second@1");  // drained: nothing came after
    CHECK(scalar(db, "SELECT count(*) FROM " + table + "_dead_letters") == "0");
    db.exec("DROP TABLE " + table + ", " + table + "_dead_letters");
  }

  // A rough figure, skipped by default: etld_tests -tc='*avro and json*' --no-skip. The same
  // records as Avro and as JSON from 4 partitions to a null sink: what decoding costs the source.
  TEST_CASE("throughput: kafka -> null, avro and json (benchmark)" * doctest::skip(true)) {
    const auto& svc = etld::test::services();
    constexpr int kParts = 4, kPer = 100000;
    const std::string avro_topic = etld::test::unique_name("avro-bench"),
                      json_topic = etld::test::unique_name("json-bench");
    etld::test::create_topic(svc.kafka_brokers, avro_topic, kParts);
    etld::test::create_topic(svc.kafka_brokers, json_topic, kParts);
    constexpr const char* kNarrow = R"({"type":"record","name":"N","fields":[{"name":"id","type":"long"},
      {"name":"status","type":"string"},{"name":"amount","type":"double"}]})";
    etld::test::TestRegistry registry;
    registry.add(5, kNarrow);
    {
      etld::test::Datum d(kNarrow);
      etld::test::TestProducer producer(svc.kafka_brokers);
      for (int i = 0; i < kPer; ++i)
        for (int part = 0; part < kParts; ++part) {
          d.set_long("id", i);
          d.set_string("status", "paid");
          d.set_double("amount", 12.5);
          producer.send(avro_topic, {std::to_string(i), etld::avro::wire_header(5) + d.body(), {}, part, 0});
          producer.send(json_topic, {std::to_string(i),
                                     R"({"id":)" + std::to_string(i) + R"(,"status":"paid","amount":12.5})",
                                     {},
                                     part,
                                     0});
        }
      producer.flush();
    }
    for (const bool avro : {true, false}) {
      const std::string yaml =
          "pipeline: bench\nthreads: 2\nstages:\n  src:\n    type: kafka\n    brokers: "
          "${KAFKA_BROKERS}\n    topics: [" +
          (avro ? avro_topic : json_topic) + "]\n    group: " + etld::test::unique_name("g-bench") +
          "\n    max_demand: 5000\n" +
          (avro ? "    format: avro\n    schema_registry: {url: '" + registry.url() + "'}\n"
                : std::string()) +
          "  out:\n    type: 'null'\n    inputs: [src]\n    max_demand: 5000\n";
      etld::Pipeline p(etld::test::config_from(yaml));
      const auto t0 = std::chrono::steady_clock::now();
      p.start();
      CHECK(eventually(
          [&] {
            std::uint64_t n = 0;
            for (auto& st : p.stats())
              if (st.name == "out") n += st.events_in;
            return n >= static_cast<std::uint64_t>(kParts) * kPer;
          },
          300s, 10ms));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      MESSAGE((avro ? "avro" : "json") << " kafka -> null: " << kParts * kPer / secs / 1e6 << " M events/s ("
                                       << secs << " s, incl. group join)");
      p.stop();
      CHECK(p.wait_for(30s));
    }
  }
}
