// What a consumed Kafka message becomes (connectors/kafka/kafka_message): the event holds the
// message's exact bytes (payload, key, header values, NULs and bytes that are not UTF-8
// included), a null payload is a tombstone, a null key is no key, a header without a value
// becomes an empty string, and a missing timestamp becomes 0. No broker needed: the messages are
// built by hand, their headers are real librdkafka header lists.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "connectors/kafka/kafka_handles.hpp"
#include "connectors/kafka/kafka_message.hpp"

namespace {

rd_kafka_message_t message(const std::string* payload, const std::string* key, std::int64_t offset) {
  rd_kafka_message_t m{};
  if (payload) {
    m.payload = const_cast<char*>(payload->data());
    m.len = payload->size();
  }
  if (key) {
    m.key = const_cast<char*>(key->data());
    m.key_len = key->size();
  }
  m.offset = offset;
  return m;
}

}  // namespace

TEST_CASE("kafka message -> event: payload, key and offset byte for byte") {
  const std::string payload("{\"a\":1}\0\xff tail", 13);
  const std::string key("k\0\x80", 3);
  auto m = message(&payload, &key, 42);
  etld::Event e = etld::kafka::message_to_event(m, nullptr, 1700000000123);
  CHECK(e.has_value);
  CHECK(e.value == payload);
  CHECK(e.has_key);
  CHECK(e.key == key);
  CHECK(e.offset == 42);
  CHECK(e.timestamp_ms == 1700000000123);
  CHECK(e.headers.empty());
}

TEST_CASE("kafka message -> event: a null payload is a tombstone, a null key no key") {
  const std::string key = "id-7";
  auto tombstone = message(nullptr, &key, 3);
  etld::Event t = etld::kafka::message_to_event(tombstone, nullptr, 5);
  CHECK_FALSE(t.has_value);
  CHECK(t.value.empty());
  CHECK(t.key == "id-7");

  const std::string payload = "{}";
  auto keyless = message(&payload, nullptr, 4);
  etld::Event k = etld::kafka::message_to_event(keyless, nullptr, 5);
  CHECK(k.has_value);
  CHECK_FALSE(k.has_key);
  CHECK(k.key.empty());

  // An empty key is a key (Kafka tells the two apart).
  const std::string empty;
  auto empty_key = message(&payload, &empty, 4);
  CHECK(etld::kafka::message_to_event(empty_key, nullptr, 5).has_key);
}

TEST_CASE("kafka message -> event: headers in order, repeated names kept, null values empty") {
  etld::kafka::HeadersHandle headers(rd_kafka_headers_new(4));
  REQUIRE(rd_kafka_header_add(headers.get(), "trace", -1, "abc", 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(rd_kafka_header_add(headers.get(), "bin", -1, "\0\xfe", 2) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(rd_kafka_header_add(headers.get(), "none", -1, nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(rd_kafka_header_add(headers.get(), "trace", -1, "def", 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
  const std::string payload = "1";
  auto m = message(&payload, nullptr, 0);
  etld::Event e = etld::kafka::message_to_event(m, headers.get(), 0);
  REQUIRE(e.headers.size() == 4);
  CHECK(e.headers[0].name == "trace");
  CHECK(e.headers[0].value == "abc");
  CHECK(e.headers[1].name == "bin");
  CHECK(e.headers[1].value == std::string("\0\xfe", 2));
  CHECK(e.headers[2].name == "none");
  CHECK(e.headers[2].value.empty());
  CHECK(e.headers[3].name == "trace");
  CHECK(e.headers[3].value == "def");
}

TEST_CASE("kafka message -> event: a missing (negative) timestamp becomes 0") {
  const std::string payload = "1";
  auto m = message(&payload, nullptr, 9);
  CHECK(etld::kafka::message_to_event(m, nullptr, -1).timestamp_ms == 0);
  CHECK(etld::kafka::message_to_event(m, nullptr, 0).timestamp_ms == 0);
}
