// The COPY encoder reads a record in one of two ways: straight from the payload with simdjson's On
// Demand parser (when nothing upstream decoded it) or from the event's Value tree. Both must write
// the same row, or fail with the same reason, for every record.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/postgres/copy_encoder.hpp"

namespace {

using etld::pg::ColumnSource;
using etld::pg::PgType;
using etld::pg::RowOp;

etld::pg::ColumnSpec column(std::string name, PgType type, std::string path = "",
                            ColumnSource source = ColumnSource::field, bool required = false) {
  etld::pg::ColumnSpec c;
  c.name = name;
  c.quoted = '"' + name + '"';
  c.source = source;
  c.path = path.empty() ? name : path;
  c.type = type;
  c.required = required;
  return c;
}

etld::pg::PostgresSinkConfig config() {
  etld::pg::PostgresSinkConfig cfg;
  cfg.columns = {
      column("id", PgType::bigint, "", ColumnSource::field, /*required=*/true),
      column("qty", PgType::smallint),
      column("amount", PgType::numeric),
      column("price", PgType::double_precision),
      column("ok", PgType::boolean),
      column("at", PgType::timestamptz),
      column("note", PgType::text),
      column("city", PgType::text, "address.city"),
      column("doc", PgType::jsonb, "address"),
      column("topic", PgType::text, "", ColumnSource::topic),
  };
  return cfg;
}

struct Encoded {
  RowOp op;
  std::string row, error;
  bool decoded;  // whether the event's Value tree was built
};

Encoded encode(const etld::pg::PostgresSinkConfig& cfg, const std::string& payload, bool decode_first) {
  etld::Event e;
  e.value = payload;
  e.topic = "orders";
  e.partition = 0;
  if (decode_first) e.set_record(etld::parse_json(payload));
  Encoded r;
  r.row = "prefix|";  // the encoder appends; a poison row must leave what was there
  r.op = etld::pg::encode_event(cfg, e, 7, r.row, r.error);
  r.decoded = e.parsed();
  return r;
}

}  // namespace

TEST_SUITE("postgres copy encoder") {
  TEST_CASE("COPY escaping finds special bytes at every position of a word") {
    // What the escaping must produce, one byte at a time.
    auto reference = [](std::string_view s) {
      std::string out;
      for (unsigned char c : s) {
        switch (c) {
          case '\\': out += "\\\\"; break;
          case '\t': out += "\\t"; break;
          case '\n': out += "\\n"; break;
          case '\r': out += "\\r"; break;
          case '\b': out += "\\b"; break;
          case '\f': out += "\\f"; break;
          case '\v': out += "\\v"; break;
          default:
            if (c < 0x20 || c == 0x7f) {
              char buf[8];
              std::snprintf(buf, sizeof buf, "\\%03o", c);
              out += buf;
            } else {
              out.push_back(static_cast<char>(c));
            }
        }
      }
      return out;
    };
    const std::string specials = std::string("\\\t\n\r\b\f\v\x01\x1f\x7f", 10);
    for (std::size_t len : {1, 7, 8, 9, 16, 17, 33}) {
      for (std::size_t at = 0; at < len; ++at) {
        for (char sp : specials) {
          std::string text(len, 'a');
          text[at] = sp;
          if (at + 3 < len) text[at + 3] = '\xc3';  // bytes above 0x7f are plain
          CAPTURE(len);
          CAPTURE(at);
          std::string out;
          CHECK(etld::pg::append_copy_escaped(out, text));
          CHECK(out == reference(text));
        }
      }
      std::string with_nul(len, 'b');
      with_nul[len / 2] = '\0';
      std::string out;
      CHECK_FALSE(etld::pg::append_copy_escaped(out, with_nul));
    }
  }

  TEST_CASE("rows straight from the JSON payload, without decoding it into a Value") {
    auto cfg = config();
    auto r = encode(cfg,
                    R"({"id": 42, "qty": "12", "amount": 19.5, "price": 3, "ok": "yes",)"
                    R"( "at": "2024-05-01T10:00:00Z", "note": "tab\there \\ \"q\" \u00e9",)"
                    R"( "address": {"city": "Köln"}})",
                    false);
    CHECK(r.op == RowOp::write);
    CHECK(r.row ==
          "prefix|42\t12\t19.5\t3\tt\t2024-05-01T10:00:00Z\ttab\\there \\\\ \"q\" "
          "\xc3\xa9\tKöln\t{\"city\":\"Köln\"}\torders\n");
    // `doc` is an object: the On Demand path hands that record to the Value path, which writes it.
    CHECK(r.decoded);

    auto flat = encode(cfg, R"({"id": 1, "note": null, "address": 5})", false);
    CHECK(flat.op == RowOp::write);
    CHECK_FALSE(flat.decoded);
    CHECK(flat.row == "prefix|1\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t5\torders\n");
  }

  TEST_CASE("the On Demand path and the Value path agree on every record") {
    auto cfg = config();
    const std::vector<std::string> records = {
        R"({"id": 1})",
        R"({"id": 9223372036854775807, "qty": -32768, "price": 1e308, "ok": 0})",
        R"({"id": 18446744073709551615})",  // beyond int64: a double, not an integer
        R"({"id": 2, "qty": 70000})",
        R"({"id": 3, "qty": 1.5})",
        R"({"id": 4, "amount": "12.50", "price": "NaN", "ok": true})",
        R"({"id": 5, "amount": "twelve"})",
        R"({"id": 6, "at": 1714557600123})",
        R"({"id": 7, "at": 1714557600123.9})",
        R"({"id": 8, "at": "yesterday"})",
        R"({"id": 9, "ok": "maybe"})",
        R"({"id": 10, "note": 12.25, "city": "x"})",
        R"({"id": 11, "note": true, "address": {"city": null}})",
        R"({"id": 12, "note": "a\u0000b"})",
        R"({"id": 13, "note": "first", "note": "second"})",
        R"({"id": 14, "note": [1, 2]})",
        R"({"id": 15, "address": {"city": {"name": "nested"}}})",
        R"({"id": "16"})",
        R"({"id": null})",
        R"({"qty": 1})",
        R"([1, 2, 3])",
        R"("just a string")",
        R"({"id": 18, "price": -0.0, "amount": 0.1})",
        R"({"id": 19, "note": "line\nbreak\r\u0001"})",
        // Numbers past 64 bits or double's range
        R"({"id": 20, "amount": 18446744073709551616, "note": -12345678901234567890})",
        R"({"id": 21, "amount": 1e400, "price": 1e400})",
        R"({"id": 1e400})",
        R"({"id": 22, "amount": 12345678901234567.89, "note": 1.10, "qty": 1e2})",
        R"({"id": 23.0, "qty": 1.5e1, "note": "\\u0000", "address": {"x": "\\u0000"}})",
        R"({"id": 9223372036854775808})",
        R"({"id": -9223372036854775809})",
        R"({"id": 9007199254740993.0})",
        R"({"id": 24, "qty": 1.0000000000000000001})",
        R"({"id": 25, "address": {"n": 1.10}, "amount": -0.0})",
    };
    for (const auto& rec : records) {
      CAPTURE(rec);
      Encoded dom = encode(cfg, rec, false), tree = encode(cfg, rec, true);
      CHECK(dom.op == tree.op);
      CHECK(dom.row == tree.row);
      CHECK(dom.error == tree.error);
    }
  }

  TEST_CASE("a payload that is not JSON is poison with the parser's reason, and the row is not written") {
    auto cfg = config();
    for (std::string bad : {"{\"id\": 1", "not json", "{\"id\": 1} trailing", "", "{\"id\": 01}",
                            "{\"id\": 1, \"amount\": 1e400,}"}) {
      CAPTURE(bad);
      auto r = encode(cfg, bad, false);
      CHECK(r.op == RowOp::poison);
      CHECK(r.error.rfind("invalid JSON: ", 0) == 0);
      CHECK(r.row == "prefix|");
    }
  }

  TEST_CASE("numbers reach numeric, jsonb and text columns with every digit, on both paths") {
    etld::pg::PostgresSinkConfig cfg;
    cfg.columns = {column("amount", PgType::numeric), column("note", PgType::text),
                   column("doc", PgType::jsonb, ".", ColumnSource::whole), column("one", PgType::jsonb, "n")};
    struct Case {
      std::string payload, row;
    };
    const std::vector<Case> cases = {
        {R"({"amount": 12345678901234567.89, "note": 1.10, "n": 1.10})",
         "12345678901234567.89\t1.10\t{\"amount\":12345678901234567.89,\"note\":1.10,\"n\":1.10}\t1.10\n"},
        {R"({"amount": 18446744073709551615, "n": 18446744073709551616})",
         "18446744073709551615\t\\N\t{\"amount\":18446744073709551615,\"n\":18446744073709551616}\t"
         "18446744073709551616\n"},
        {R"({"amount": -12345678901234567890, "n": 1e400})",
         "-12345678901234567890\t\\N\t{\"amount\":-12345678901234567890,\"n\":1e400}\t1e400\n"},
        {R"({"amount": 2.0, "note": 1E+2, "n": 0.5})",
         "2.0\t1E+2\t{\"amount\":2.0,\"note\":1E+2,\"n\":0.5}\t0.5\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.payload);
      for (bool decode_first : {false, true}) {
        auto r = encode(cfg, c.payload, decode_first);
        CHECK(r.op == RowOp::write);
        CHECK(r.row == "prefix|" + c.row);
      }
    }
  }

  TEST_CASE("integer columns take only what fits, decided on the digits, and never round") {
    etld::pg::PostgresSinkConfig cfg;
    cfg.columns = {column("id", PgType::bigint)};
    struct Case {
      std::string value, row, error;
    };
    const std::vector<Case> cases = {
        {"9223372036854775807", "9223372036854775807", ""},
        {"-9223372036854775808", "-9223372036854775808", ""},
        {"100.0", "100", ""},
        {"1e2", "100", ""},
        {"1.25e2", "125", ""},
        {"-0.0", "0", ""},
        {"92233720368547758.07e2", "9223372036854775807", ""},
        {"9223372036854775808", "", "column id (bigint): 9223372036854775808 out of range"},
        {"-9223372036854775809", "", "column id (bigint): -9223372036854775809 out of range"},
        {"18446744073709551616", "", "column id (bigint): 18446744073709551616 out of range"},
        {"12345678901234567890123", "", "column id (bigint): 12345678901234567890123 out of range"},
        {"1e400", "", "column id (bigint): 1e400 out of range"},
        {"9007199254740993.5", "", "column id (bigint): 9007199254740993.5 is not an integer"},
        {"1.0000000000000000001", "", "column id (bigint): 1.0000000000000000001 is not an integer"},
        {"1.5", "", "column id (bigint): 1.5 is not an integer"},
        {"1e-400", "", "column id (bigint): 1e-400 is not an integer"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.value);
      for (bool decode_first : {false, true}) {
        auto r = encode(cfg, R"({"id": )" + c.value + "}", decode_first);
        if (c.error.empty()) {
          CHECK(r.op == RowOp::write);
          CHECK(r.row == "prefix|" + c.row + "\n");
        } else {
          CHECK(r.op == RowOp::poison);
          CHECK(r.error == c.error);
          CHECK(r.row == "prefix|");
        }
      }
    }
    // The reason quotes at most 60 characters of a long number.
    auto r = encode(cfg, R"({"id": )" + std::string(500, '7') + "}", false);
    CHECK(r.op == RowOp::poison);
    INFO(r.error);
    CHECK(r.error.size() < 120);
    CHECK(r.error.find("out of range") != std::string::npos);
  }

  TEST_CASE("double precision rounds (its type), but refuses what overflows it") {
    etld::pg::PostgresSinkConfig cfg;
    cfg.columns = {column("price", PgType::double_precision)};
    auto r = encode(cfg, R"({"price": 12345678901234567.89})", false);
    CHECK(r.row == "prefix|12345678901234568\n");
    r = encode(cfg, R"({"price": 1e400})", false);
    CHECK(r.op == RowOp::poison);
    CHECK(r.error == "column price (double precision): 1e400 out of range");
  }

  TEST_CASE("jsonb refuses a NUL character, not an escaped backslash followed by u0000") {
    etld::pg::PostgresSinkConfig cfg;
    cfg.columns = {column("doc", PgType::jsonb, ".", ColumnSource::whole)};
    for (bool decode_first : {false, true}) {
      auto ok = encode(cfg, R"({"s": "\\u0000", "t": "\\\\\\u0000"})", decode_first);
      CHECK(ok.op == RowOp::write);
      // COPY escapes each backslash once more.
      CHECK(ok.row == R"(prefix|{"s":"\\\\u0000","t":"\\\\\\\\\\\\u0000"})"
                      "\n");
      for (std::string nul : {R"({"s": "a\u0000b"})", R"({"s": "\\\u0000"})", R"({"a\u0000": 1})"}) {
        CAPTURE(nul);
        auto bad = encode(cfg, nul, decode_first);
        CHECK(bad.op == RowOp::poison);
        CHECK(bad.error ==
              "column doc (jsonb): a string holds the character \\u0000 (NUL), which jsonb cannot store");
      }
    }
  }

  TEST_CASE("a bad value in the reason is escaped and short: a record's newline cannot forge a log line") {
    auto cfg = config();
    const std::string forged =
        "x\\n2026-01-01 00:00:00.000 error [db] forged\\u001b[2J" + std::string(200, 'y');
    for (bool decode_first : {false, true}) {
      CAPTURE(decode_first);
      auto r = encode(cfg, "{\"id\": \"" + forged + "\"}", decode_first);
      CHECK(r.op == RowOp::poison);
      CHECK(r.error ==
            "column id (bigint): 'x\\n2026-01-01 00:00:00.000 error [db] forged\\x1b[2Jyyyyyyyyy...(191 more "
            "bytes)' is not an integer");
    }
  }

  TEST_CASE("staged rows (upsert) carry the sequence number on both paths") {
    auto cfg = config();
    cfg.mode = etld::pg::Mode::upsert;
    auto dom = encode(cfg, R"({"id": 5, "note": "x"})", false);
    auto tree = encode(cfg, R"({"id": 5, "note": "x"})", true);
    CHECK(dom.row.rfind("prefix|7\tf\t5\t", 0) == 0);
    CHECK(dom.row == tree.row);
  }

  TEST_CASE("Kafka keys: bytea keeps the bytes; a key that is not UTF-8 is never replaced in text") {
    etld::pg::PostgresSinkConfig cfg;
    cfg.columns = {column("k", PgType::bytea, "_key", ColumnSource::key), column("id", PgType::bigint)};
    auto encode_key = [&](const std::string& key, std::string& error) {
      etld::Event e;
      e.value = R"({"id": 1})";
      e.has_value = true;
      e.key = key;
      e.has_key = true;
      std::string out;
      RowOp op = etld::pg::encode_event(cfg, e, 0, out, error);
      return std::make_pair(op, out);
    };
    std::string error;
    // 8-byte big-endian 128 and 255: two distinct values, written as hex (the backslash of \x
    // escaped for COPY text).
    const std::string k128("\0\0\0\0\0\0\0\x80", 8), k255("\0\0\0\0\0\0\0\xff", 8);
    CHECK(encode_key(k128, error) == std::make_pair(RowOp::write, std::string("\\\\x0000000000000080\t1\n")));
    CHECK(encode_key(k255, error) == std::make_pair(RowOp::write, std::string("\\\\x00000000000000ff\t1\n")));

    cfg.columns[0].type = PgType::text;
    error.clear();
    auto [op, row] = encode_key(k128, error);
    CHECK(op == RowOp::poison);
    CHECK(row.empty());
    CHECK(error.find("column k (text): the Kafka key (8 bytes) is not valid UTF-8") != std::string::npos);
    CHECK(error.find("bytea") != std::string::npos);
    error.clear();
    CHECK(encode_key("caf\xc3\xa9", error) == std::make_pair(RowOp::write, std::string("caf\xc3\xa9\t1\n")));

    // A tombstone deletes by the value the insert wrote: the raw bytes for bytea.
    cfg.columns[0].type = PgType::bytea;
    cfg.columns[0].is_key = true;
    cfg.key = {"k"};
    cfg.mode = etld::pg::Mode::upsert;
    cfg.delete_on_tombstone = true;
    etld::Event tomb;
    tomb.key = "{\x80";  // looks like JSON, is not: still the raw bytes
    tomb.has_key = true;
    tomb.has_value = false;
    std::string out;
    error.clear();
    CHECK(etld::pg::encode_event(cfg, tomb, 3, out, error) == RowOp::del);
    INFO(error);
    CHECK(out == "3\tt\t\\\\x7b80\t\\N\n");
    cfg.columns[0].type = PgType::text;
    out.clear();
    CHECK(etld::pg::encode_event(cfg, tomb, 3, out, error) == RowOp::poison);
    CHECK(error.find("not valid UTF-8") != std::string::npos);
  }
}
