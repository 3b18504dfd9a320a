// Binary Kafka keys end to end, through a real broker, the kafka source and the postgres sink into
// a real PostgreSQL: 8-byte big-endian keys 128 and 255 as `_key` bytea are two rows, and a
// tombstone deletes the right one; the same keys into a text `_key` are dead letters with their
// reason and coordinates, never merged by U+FFFD replacement.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/pipeline.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/kafka_test_util.hpp"
#include "tests/support/postgres_scalar.hpp"
#include "tests/support/services.hpp"
#include "tests/support/test_stages.hpp"

using namespace std::chrono_literals;

namespace {

using etld::test::eventually;
using etld::test::scalar;

std::string pipeline_yaml(const std::string& topic, const std::string& table, const std::string& key_type) {
  return "pipeline: binkeys\nstages:\n  in:\n    type: kafka\n    brokers: ${KAFKA_BROKERS}\n    topics: [" +
         topic + "]\n    group: " + etld::test::unique_name("g-binkeys") +
         "\n  out:\n    type: postgres\n    inputs: [in]\n    dsn: ${PG_DSN}\n    table: " + table +
         "\n    create_table: true\n    mode: upsert\n    key: [k]\n    batch: {max_rows: 100, max_wait: "
         "20ms}\n"
         "    columns: {k: {from: _key, type: " +
         key_type + "}, v: {from: v, type: text}}\n";
}

}  // namespace

TEST_SUITE("kafka to postgres: binary keys") {
  TEST_CASE("keys 128 and 255 as bytea: two rows; a tombstone deletes the one its key wrote") {
    const auto& svc = etld::test::services();
    const std::string topic = etld::test::unique_name("binkeys");
    const std::string table = "binkeys_" + std::to_string(::getpid());
    etld::test::create_topic(svc.kafka_brokers, topic, 1);
    const std::string k128("\0\0\0\0\0\0\0\x80", 8), k255("\0\0\0\0\0\0\0\xff", 8);
    {
      etld::test::TestProducer producer(svc.kafka_brokers);
      producer.send(topic, {k128, std::string(R"({"v":"a"})"), {}, 0, 0});
      producer.send(topic, {k255, std::string(R"({"v":"b"})"), {}, 0, 0});
      producer.send(topic, {k128, std::nullopt, {}, 0, 0});  // tombstone of 128
      producer.flush();
    }
    etld::pg::PgConnection db(svc.pg_dsn);
    {
      etld::Pipeline p(etld::test::config_from(pipeline_yaml(topic, table + "_b", "bytea")));
      p.start();
      const std::string rows =
          "SELECT string_agg(encode(k, 'hex') || '=' || v, ',' ORDER BY k) FROM " + table + "_b";
      CHECK(eventually([&] {
        try {
          return scalar(db, rows) == "00000000000000ff=b";
        } catch (const std::exception&) {
          return false;  // the table is not there yet
        }
      }));
      CHECK(scalar(db, "SELECT count(*) FROM " + table + "_b_dead_letters") == "0");
      p.stop();
      CHECK(p.wait_for(30s));
      CHECK(p.error() == std::nullopt);
    }
    {
      // The same records into a text _key: each binary key (and the tombstone) is a dead letter.
      etld::Pipeline p(etld::test::config_from(pipeline_yaml(topic, table + "_t", "text")));
      p.start();
      const std::string dead =
          "SELECT string_agg(\"offset\" || ':' || encode(key, 'hex'), ',' ORDER BY \"offset\") FROM " +
          table + "_t_dead_letters WHERE topic = '" + topic +
          "' AND \"partition\" = 0 AND error LIKE '%is not valid UTF-8%'";
      CHECK(eventually([&] {
        try {
          return scalar(db, dead) == "0:0000000000000080,1:00000000000000ff,2:0000000000000080";
        } catch (const std::exception&) {
          return false;
        }
      }));
      CHECK(scalar(db, "SELECT count(*) FROM " + table + "_t") == "0");
      p.stop();
      CHECK(p.wait_for(30s));
    }
    db.exec("DROP TABLE " + table + "_b, " + table + "_b_dead_letters, " + table + "_t, " + table +
            "_t_dead_letters");
  }
}
