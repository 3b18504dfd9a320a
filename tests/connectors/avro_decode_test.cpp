// Avro decoding (connectors/avro/) against bodies written by avro-c's own writer (avro_value_write)
// from a schema: every primitive, complex and logical type lands in a Value as docs/formats.md
// maps it, and corrupt bodies (truncated, trailing bytes, huge lengths and counts, bad union and
// enum indexes, deep nesting, wrong magic) are refused with their reason, quickly and without
// allocating what a hostile length claims.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectors/avro/avro_decode.hpp"
#include "connectors/avro/avro_logical.hpp"
#include "connectors/avro/avro_schema.hpp"
#include "connectors/avro/wire_format.hpp"
#include "tests/support/avro_test_datum.hpp"

using etld::Value;
using etld::avro::AvroDecodeError;
using etld::avro::AvroSchema;
using etld::avro::decode_avro;
using etld::test::Datum;

namespace {

std::string decode_error(const AvroSchema& schema, const std::string& body) {
  try {
    decode_avro(schema, body);
  } catch (const AvroDecodeError& e) {
    return e.what();
  }
  return "(decoded)";
}

// Avro's zig-zag varint of `v`.
std::string varint(std::int64_t v) {
  auto u = (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
  std::string out;
  while (u >= 0x80) {
    out.push_back(static_cast<char>((u & 0x7f) | 0x80));
    u >>= 7;
  }
  out.push_back(static_cast<char>(u));
  return out;
}

std::string bytes(std::initializer_list<unsigned> list) {
  std::string out;
  for (unsigned b : list) out.push_back(static_cast<char>(b));
  return out;
}

}  // namespace

TEST_SUITE("avro decoding") {
  TEST_CASE("every primitive type, with its extremes, in field order") {
    Datum d(R"({"type":"record","name":"P","fields":[
      {"name":"n","type":"null"},{"name":"t","type":"boolean"},{"name":"f","type":"boolean"},
      {"name":"i","type":"int"},{"name":"imin","type":"int"},{"name":"l","type":"long"},
      {"name":"lmin","type":"long"},{"name":"fl","type":"float"},{"name":"d","type":"double"},
      {"name":"b","type":"bytes"},{"name":"s","type":"string"},{"name":"empty","type":"string"}]})");
    avro_value_t f = d.field("t");
    avro_value_set_boolean(&f, 1);
    f = d.field("f");
    avro_value_set_boolean(&f, 0);
    f = d.field("i");
    avro_value_set_int(&f, INT32_MAX);
    f = d.field("imin");
    avro_value_set_int(&f, INT32_MIN);
    f = d.field("l");
    avro_value_set_long(&f, INT64_MAX);
    f = d.field("lmin");
    avro_value_set_long(&f, INT64_MIN);
    f = d.field("fl");
    avro_value_set_float(&f, 1.5f);
    f = d.field("d");
    avro_value_set_double(&f, -0.1);
    const std::string raw("\0\x01\xff\x80", 4);
    f = d.field("b");
    avro_value_set_bytes(&f, const_cast<char*>(raw.data()), raw.size());
    f = d.field("s");
    avro_value_set_string(&f, "h\xc3\xa9llo \"q\"");
    f = d.field("empty");
    avro_value_set_string(&f, "");

    const Value v = d.decode();
    REQUIRE(v.kind() == Value::Kind::object);
    std::vector<std::string> names;
    for (const auto& [name, value] : v.as_object()) names.push_back(name);
    CHECK(names ==
          std::vector<std::string>{"n", "t", "f", "i", "imin", "l", "lmin", "fl", "d", "b", "s", "empty"});
    CHECK(v.find("n")->is_null());
    CHECK(v.find("t")->as_bool() == true);
    CHECK(v.find("f")->as_bool() == false);
    CHECK(v.find("i")->as_int() == INT32_MAX);
    CHECK(v.find("imin")->as_int() == INT32_MIN);
    CHECK(v.find("l")->as_int() == INT64_MAX);
    CHECK(v.find("lmin")->as_int() == INT64_MIN);
    CHECK(v.find("fl")->as_double() == 1.5);
    CHECK(v.find("d")->as_double() == -0.1);
    CHECK(v.find("b")->as_string() == raw);  // the bytes exactly, NUL and all
    CHECK(v.find("s")->as_string() == "h\xc3\xa9llo \"q\"");
    CHECK(v.find("empty")->as_string().empty());
  }

  TEST_CASE("enum, fixed, array, map, nested record and union branches") {
    Datum d(R"({"type":"record","name":"C","namespace":"t","fields":[
      {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
      {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
      {"name":"a","type":{"type":"array","items":"int"}},
      {"name":"empty","type":{"type":"array","items":"string"}},
      {"name":"m","type":{"type":"map","values":"long"}},
      {"name":"r","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"string"}]}},
      {"name":"u_null","type":["null","string"]},
      {"name":"u_str","type":["null","string"]},
      {"name":"u_rec","type":["null","Inner"]},
      {"name":"again","type":"Four"}]})");
    avro_value_t f = d.field("e");
    avro_value_set_enum(&f, 2);
    f = d.field("fx");
    avro_value_set_fixed(&f, const_cast<char*>("\x01\x02\x03\x04"), 4);
    f = d.field("a");
    for (int i : {3, -1, 1000000}) {
      avro_value_t item;
      avro_value_append(&f, &item, nullptr);
      avro_value_set_int(&item, i);
    }
    f = d.field("m");
    for (const char* k : {"one", "two"}) {
      avro_value_t item;
      avro_value_add(&f, k, &item, nullptr, nullptr);
      avro_value_set_long(&item, k[0] == 'o' ? 1 : 2);
    }
    f = d.field("r");
    avro_value_t x = Datum::field(f, "x");
    avro_value_set_string(&x, "inner");
    avro_value_t b = Datum::branch(d.field("u_null"), 0);
    avro_value_set_null(&b);
    b = Datum::branch(d.field("u_str"), 1);
    avro_value_set_string(&b, "chosen");
    b = Datum::branch(d.field("u_rec"), 1);
    x = Datum::field(b, "x");
    avro_value_set_string(&x, "in a union");
    f = d.field("again");
    avro_value_set_fixed(&f, const_cast<char*>("abcd"), 4);

    const Value v = d.decode();
    CHECK(
        v.to_json() ==
        R"({"e":"BLUE","fx":"\u0001\u0002\u0003\u0004","a":[3,-1,1000000],"empty":[],"m":{"one":1,"two":2},)"
        R"("r":{"x":"inner"},"u_null":null,"u_str":"chosen","u_rec":{"x":"in a union"},"again":"abcd"})");
  }

  TEST_CASE("a recursive record (a linked list) decodes to its depth") {
    Datum d(R"({"type":"record","name":"Node","fields":[{"name":"v","type":"int"},
      {"name":"next","type":["null","Node"]}]})");
    avro_value_t cur = d.root();
    for (int i = 1; i <= 3; ++i) {
      avro_value_t v = Datum::field(cur, "v");
      avro_value_set_int(&v, i);
      avro_value_t next = Datum::field(cur, "next");
      avro_value_t b = Datum::branch(next, i < 3 ? 1 : 0);
      if (i == 3) avro_value_set_null(&b);
      cur = b;
    }
    CHECK(d.decode().to_json() == R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})");
  }

  TEST_CASE("logical types: decimal exact, date, time, timestamps, uuid") {
    Datum d(R"({"type":"record","name":"L","fields":[
      {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
      {"name":"neg","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":3}},
      {"name":"big","type":{"type":"fixed","name":"D16","size":16,"logicalType":"decimal","precision":38,"scale":2}},
      {"name":"whole","type":{"type":"bytes","logicalType":"decimal","precision":3}},
      {"name":"day","type":{"type":"int","logicalType":"date"}},
      {"name":"before","type":{"type":"int","logicalType":"date"}},
      {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
      {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
      {"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
      {"name":"ltm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
      {"name":"ltu","type":{"type":"long","logicalType":"local-timestamp-micros"}},
      {"name":"id","type":{"type":"string","logicalType":"uuid"}},
      {"name":"fid","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}},
      {"name":"bad","type":{"type":"bytes","logicalType":"decimal","precision":2,"scale":3}},
      {"name":"other","type":{"type":"long","logicalType":"made-up"}}]})");
    auto set_bytes = [&](const char* name, const std::string& b) {
      avro_value_t f = d.field(name);
      avro_value_set_bytes(&f, const_cast<char*>(b.data()), b.size());
    };
    auto set_long = [&](const char* name, std::int64_t v) {
      avro_value_t f = d.field(name);
      avro_value_set_long(&f, v);
    };
    auto set_int = [&](const char* name, std::int32_t v) {
      avro_value_t f = d.field(name);
      avro_value_set_int(&f, v);
    };
    set_bytes("price", bytes({0x01, 0xe2, 0x4a}));  // 123466 -> 1234.66
    set_bytes("neg", bytes({0xff}));                // -1 -> -0.001
    // 12345678901234567890123456789012 (32 digits) -> 123456789012345678901234567890.12
    avro_value_t f = d.field("big");
    const std::string big = bytes(
        {0x00, 0x00, 0x00, 0x9b, 0xd3, 0x0a, 0x3c, 0x64, 0x59, 0x43, 0xdd, 0x16, 0x90, 0xa0, 0x3a, 0x14});
    avro_value_set_fixed(&f, const_cast<char*>(big.data()), big.size());
    set_bytes("whole", bytes({0x80}));  // -128
    set_int("day", 20793);
    set_int("before", -1);
    set_int("tm", 45296789);         // 12:34:56.789
    set_long("tu", 45296000001);     // 12:34:56.000001
    set_long("tsm", 1796558400123);  // 2026-12-06T12:00:00.123Z
    set_long("tsu", -1);             // 1969-12-31T23:59:59.999999Z
    set_long("ltm", 1796558400123);
    set_long("ltu", 1796558400123456);
    f = d.field("id");
    avro_value_set_string(&f, "0f8fad5b-d9cb-469f-a165-70867728950e");
    f = d.field("fid");
    const std::string uuid = bytes(
        {0x0f, 0x8f, 0xad, 0x5b, 0xd9, 0xcb, 0x46, 0x9f, 0xa1, 0x65, 0x70, 0x86, 0x77, 0x28, 0x95, 0x0e});
    avro_value_set_fixed(&f, const_cast<char*>(uuid.data()), uuid.size());
    set_bytes("bad", bytes({0x05}));
    set_long("other", 42);

    const Value v = d.decode();
    // Numbers whose JSON text is exactly the decimal's (a double that writes back otherwise keeps the
    // text itself: Value::from_json_number).
    CHECK(v.find("price")->to_json() == "1234.66");
    CHECK(v.find("neg")->to_json() == "-0.001");
    REQUIRE(v.find("big")->number_text() != nullptr);
    CHECK(*v.find("big")->number_text() == "123456789012345678901234567890.12");
    CHECK(v.find("whole")->as_int() == -128);  // scale 0: an integer
    CHECK(v.find("day")->as_string() == "2026-12-06");
    CHECK(v.find("before")->as_string() == "1969-12-31");
    CHECK(v.find("tm")->as_string() == "12:34:56.789");
    CHECK(v.find("tu")->as_string() == "12:34:56.000001");
    CHECK(v.find("tsm")->as_string() == "2026-12-06T12:00:00.123Z");
    CHECK(v.find("tsu")->as_string() == "1969-12-31T23:59:59.999999Z");
    CHECK(v.find("ltm")->as_string() == "2026-12-06T12:00:00.123");
    CHECK(v.find("ltu")->as_string() == "2026-12-06T12:00:00.123456");
    CHECK(v.find("id")->as_string() == "0f8fad5b-d9cb-469f-a165-70867728950e");
    CHECK(v.find("fid")->as_string() == "0f8fad5b-d9cb-469f-a165-70867728950e");
    // An invalid logical type (scale above precision) and an unknown one: the underlying type.
    CHECK(v.find("bad")->as_string() == "\x05");
    CHECK(v.find("other")->as_int() == 42);
    // Written back as JSON, the decimals keep their digits.
    CHECK(v.to_json().find(R"("big":123456789012345678901234567890.12)") != std::string::npos);
  }

  TEST_CASE("decimal text of two's-complement bytes, at the edges") {
    using etld::avro::decimal_text;
    CHECK(decimal_text(bytes({0x00}), 0) == "0");
    CHECK(decimal_text(bytes({0x00}), 3) == "0.000");
    CHECK(decimal_text(bytes({0x7f}), 0) == "127");
    CHECK(decimal_text(bytes({0x00, 0x80}), 0) == "128");
    CHECK(decimal_text(bytes({0xff, 0x7f}), 0) == "-129");
    CHECK(decimal_text(bytes({0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}), 0) == "-9223372036854775808");
    CHECK(decimal_text(bytes({0x3b, 0x9a, 0xca, 0x00}), 9) == "1.000000000");  // 10^9
    CHECK(decimal_text(bytes({0x00, 0x00, 0x00, 0x00, 0x01}), 1) == "0.1");    // sign-extended
    CHECK_THROWS_AS(decimal_text("", 0), AvroDecodeError);
    CHECK_THROWS_AS(decimal_text(std::string(etld::avro::kMaxDecimalBytes + 1, '\x01'), 0), AvroDecodeError);
  }

  TEST_CASE("dates and times outside what their text can say are refused") {
    using etld::avro::date_text;
    using etld::avro::time_text;
    using etld::avro::timestamp_text;
    CHECK(date_text(-719162) == "0001-01-01");
    CHECK(date_text(2932896) == "9999-12-31");
    CHECK_THROWS_WITH_AS(date_text(2932897), "date 2932897 is outside years 0001-9999", AvroDecodeError);
    CHECK_THROWS_AS(date_text(-719163), AvroDecodeError);
    CHECK(time_text(0, 3) == "00:00:00.000");
    CHECK(time_text(86399999, 3) == "23:59:59.999");
    CHECK_THROWS_AS(time_text(86400000, 3), AvroDecodeError);
    CHECK_THROWS_AS(time_text(-1, 6), AvroDecodeError);
    CHECK(timestamp_text(0, 3, true) == "1970-01-01T00:00:00.000Z");
    CHECK(timestamp_text(-62135596800000, 3, true) == "0001-01-01T00:00:00.000Z");
    CHECK_THROWS_AS(timestamp_text(INT64_MAX, 6, true), AvroDecodeError);
    CHECK_THROWS_AS(timestamp_text(INT64_MIN, 3, false), AvroDecodeError);
  }

  TEST_CASE("corrupt bodies are refused with what is wrong and where") {
    const auto schema = AvroSchema::parse(R"({"type":"record","name":"R","fields":[
      {"name":"id","type":"long"},{"name":"name","type":"string"},
      {"name":"tags","type":{"type":"array","items":"string"}},
      {"name":"opt","type":["null","int"]}]})");
    // id 7, name "ab", tags ["x"], opt null
    const std::string good =
        varint(7) + varint(2) + "ab" + varint(1) + varint(1) + "x" + varint(0) + varint(0);
    REQUIRE(decode_avro(*schema, good).to_json() == R"({"id":7,"name":"ab","tags":["x"],"opt":null})");

    CHECK(decode_error(*schema, good.substr(0, good.size() - 1)) ==
          "opt: truncated: a number runs past the end of the body (at byte 8 of 8)");
    CHECK(decode_error(*schema, good + "zz") ==
          "trailing bytes: 2 of the body's 11 bytes are left after the datum");
    CHECK(decode_error(*schema, "") ==
          "id: truncated: a number runs past the end of the body (at byte 0 of 0)");
    // A string claiming 2^40 bytes: refused at once, nothing allocated for it.
    CHECK(decode_error(*schema, varint(7) + varint(std::int64_t{1} << 40) + "ab") ==
          "name: truncated: a string of 1099511627776 bytes, 2 are left (at byte 7 of 9)");
    CHECK(decode_error(*schema, varint(7) + varint(-3) + "ab") ==
          "name: a string of negative length -3 (at byte 2 of 4)");
    CHECK(decode_error(*schema,
                       varint(7) + varint(2) + "ab" + varint(1) + varint(1) + "x" + varint(0) + varint(5)) ==
          "opt: union index 5 out of range (2 branches) (at byte 9 of 9)");
    CHECK(decode_error(*schema,
                       varint(7) + varint(2) + "ab" + varint(2) + varint(1) + "x" + varint(9) + "abc") ==
          "tags[1]: truncated: a string of 9 bytes, 3 are left (at byte 8 of 11)");
    // An 11-byte varint and a long beyond 64 bits.
    CHECK(decode_error(*schema, std::string(10, '\xff') + "\x01") ==
          "id: a long longer than 64 bits (at byte 10 of 11)");
    CHECK(decode_error(*schema, std::string(9, '\xff') + "\x7f") ==
          "id: a long longer than 64 bits (at byte 10 of 10)");
  }

  TEST_CASE("hostile counts, indexes and nesting are bounded") {
    SUBCASE("an array claiming 2^40 nulls is refused without looping over them") {
      const auto schema = AvroSchema::parse(R"({"type":"array","items":"null"})");
      const auto start = std::chrono::steady_clock::now();
      CHECK(decode_error(*schema, varint(std::int64_t{1} << 40) + varint(0)) ==
            "a block of 1099511627776 items, more than a body of 7 bytes can hold (at byte 6 of 7)");
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));  // generous: no loop of 2^40
      // Up to the bound, zero-sized items are fine.
      CHECK(decode_avro(*schema, varint(1000) + varint(0)).as_array().size() == 1000);
      // A negative count is a block with its byte size.
      CHECK(decode_avro(*schema, varint(-2) + varint(0) + varint(0)).to_json() == "[null,null]");
      CHECK(decode_error(*schema, varint(INT64_MIN) + varint(0)) ==
            "an item count out of range (at byte 10 of 11)");
    }
    SUBCASE("enum index and boolean byte") {
      const auto e = AvroSchema::parse(R"({"type":"enum","name":"E","symbols":["A","B"]})");
      CHECK(decode_error(*e, varint(2)) == "enum index 2 out of range (E has 2 symbols) (at byte 1 of 1)");
      CHECK(decode_error(*e, varint(-1)) == "enum index -1 out of range (E has 2 symbols) (at byte 1 of 1)");
      const auto b = AvroSchema::parse(R"("boolean")");
      CHECK(decode_error(*b, bytes({0x02})) == "boolean byte 0x02 is neither 0 nor 1 (at byte 1 of 1)");
      const auto i = AvroSchema::parse(R"("int")");
      CHECK(decode_error(*i, varint(std::int64_t{1} << 31)) ==
            "an int out of 32-bit range: 2147483648 (at byte 5 of 5)");
    }
    SUBCASE("a recursive record nested deeper than kMaxJsonDepth") {
      const auto schema =
          AvroSchema::parse(R"({"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]})");
      std::string body;
      for (std::size_t i = 0; i < etld::kMaxJsonDepth + 10; ++i) body += varint(1);
      body += varint(0);
      const std::string err = decode_error(*schema, body);
      CHECK(err.find("nested deeper than 1024 levels") != std::string::npos);
      CHECK(err.rfind("next.next.next.", 0) == 0);
      std::string ok;
      for (std::size_t i = 0; i < 100; ++i) ok += varint(1);
      ok += varint(0);
      CHECK(decode_avro(*schema, ok).kind() == Value::Kind::object);
    }
    SUBCASE("a map whose key runs past the end") {
      const auto schema = AvroSchema::parse(R"({"type":"map","values":"int"})");
      CHECK(decode_error(*schema, varint(1) + varint(100) + "k") ==
            "[0]: truncated: a map key of 100 bytes, 1 are left (at byte 3 of 4)");
    }
    SUBCASE("logical values out of their range name their field") {
      const auto schema = AvroSchema::parse(
          R"({"type":"record","name":"T","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]})");
      CHECK(decode_error(*schema, varint(INT64_MAX)) ==
            "at: timestamp-millis 9223372036854775807 is outside years 0001-9999 (at byte 10 of 10)");
    }
  }

  TEST_CASE("schemas avro-c refuses are refused, with its reason") {
    CHECK_THROWS_WITH_AS(
        AvroSchema::parse(R"({"type":"record","name":"R","fields":[{"name":"x","type":"Nope"}]})"),
        doctest::Contains("Nope"), etld::avro::AvroSchemaError);
    CHECK_THROWS_AS(AvroSchema::parse("{not json"), etld::avro::AvroSchemaError);
    CHECK_THROWS_AS(AvroSchema::parse(""), etld::avro::AvroSchemaError);
  }

  TEST_CASE("the Confluent wire frame: magic byte, big-endian id, body") {
    std::string error;
    const std::string payload = etld::avro::wire_header(0x01020304) + "body";
    auto f = etld::avro::read_wire_frame(payload, error);
    REQUIRE(f);
    CHECK(f->schema_id == 0x01020304);
    CHECK(f->body == "body");
    CHECK(etld::avro::read_wire_frame(etld::avro::wire_header(4294967295u), error)->schema_id == 4294967295u);
    CHECK(!etld::avro::read_wire_frame(R"({"id":1})", error));
    CHECK(error == "wrong magic byte 0x7b (expected 0: not the Confluent wire format)");
    CHECK(!etld::avro::read_wire_frame(std::string("\0\0\0", 3), error));
    CHECK(error == "too short: 3 bytes, less than the Confluent wire format's 5-byte header");
    CHECK(!etld::avro::read_wire_frame("", error));
    CHECK(error.rfind("empty payload", 0) == 0);
  }

  // Run with --no-skip: a rough throughput, printed, never asserted.
  TEST_CASE("throughput of a typical order record" * doctest::skip()) {
    Datum d(R"({"type":"record","name":"Order","fields":[
      {"name":"id","type":"long"},{"name":"customer","type":"string"},
      {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
      {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"note","type":["null","string"]},{"name":"qty","type":"int"}]})");
    avro_value_t f = d.field("id");
    avro_value_set_long(&f, 123456789);
    f = d.field("customer");
    avro_value_set_string(&f, "customer-00042");
    f = d.field("amount");
    avro_value_set_bytes(&f, const_cast<char*>("\x01\xe2\x4a"), 3);
    f = d.field("at");
    avro_value_set_long(&f, 1796558400123);
    avro_value_t b = Datum::branch(d.field("note"), 1);
    avro_value_set_string(&b, "leave at the door");
    f = d.field("qty");
    avro_value_set_int(&f, 3);
    const auto schema = d.compiled();
    const std::string body = d.body();
    constexpr int n = 500000;
    std::size_t sink = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) sink += decode_avro(*schema, body).as_object().size();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("avro decode: %d records of %zu bytes in %.3f s: %.0f records/s (%zu fields)\n", n,
                body.size(), took.count(), n / took.count(), sink / n);
  }
}
