// The COPY encoder's On Demand path (connectors/postgres/copy_ondemand.cpp) reads a payload forward
// only, once: fields out of the columns' order, named twice, under nested paths, with escaped
// names, and the values no column takes must come out as the Value path (parse_json, then
// Value::at_path) writes them, without the record being decoded into a Value.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "connectors/postgres/copy_encoder.hpp"

namespace {

using etld::pg::ColumnSource;
using etld::pg::PgType;
using etld::pg::RowOp;

etld::pg::ColumnSpec column(std::string name, PgType type, std::string path = "") {
  etld::pg::ColumnSpec c;
  c.name = name;
  c.quoted = '"' + name + '"';
  c.path = path.empty() ? name : path;
  c.type = type;
  return c;
}

// No column takes an object or the whole record: every valid record stays on the On Demand path.
etld::pg::PostgresSinkConfig scalar_config() {
  etld::pg::PostgresSinkConfig cfg;
  cfg.columns = {
      column("id", PgType::bigint),
      column("note", PgType::text),
      column("city", PgType::text, "address.city"),
      column("zip", PgType::integer, "address.zip"),
      column("street", PgType::text, "address.street.name"),
      column("city_again", PgType::text, "address.city"),
      column("amount", PgType::numeric),
      column("ok", PgType::boolean),
      column("at", PgType::timestamptz),
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
  if (decode_first) e.set_record(etld::parse_json(payload));
  Encoded r;
  r.row = "prefix|";
  r.op = etld::pg::encode_event(cfg, e, 7, r.row, r.error);
  r.decoded = e.parsed();
  return r;
}

// Encodes `payload` both ways; they must agree. Returns the On Demand path's result.
Encoded both_ways(const etld::pg::PostgresSinkConfig& cfg, const std::string& payload) {
  Encoded direct = encode(cfg, payload, false);
  Encoded tree;
  try {
    tree = encode(cfg, payload, true);
  } catch (const etld::JsonError& e) {  // not JSON: nothing upstream could have decoded it
    tree = {RowOp::poison, "prefix|", "", false};
    CHECK(direct.op == RowOp::poison);
    CHECK(direct.error == e.what());
    CHECK(direct.row == "prefix|");
    return direct;
  }
  CHECK(direct.op == tree.op);
  CHECK(direct.row == tree.row);
  CHECK(direct.error == tree.error);
  return direct;
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_SUITE("postgres copy encoder, On Demand") {
  TEST_CASE("fields in any order, under nested paths, named twice: as the Value path reads them") {
    auto cfg = scalar_config();
    struct Case {
      std::string payload, row;
    };
    const std::vector<Case> cases = {
        // Reversed, with two columns on one path.
        {R"({"at": "2024-05-01T10:00:00Z", "ok": true, "amount": 1.10, "address": {"zip": 50667,)"
         R"( "city": "K\u00f6ln"}, "note": "n", "id": 1})",
         "1\tn\tKöln\t50667\t\\N\tKöln\t1.10\tt\t2024-05-01T10:00:00Z\n"},
        // The first of two fields of one name counts, at every level, for the whole of it.
        {R"({"id": 2, "address": {"city": "a"}, "address": {"city": "b", "zip": 1}})",
         "2\t\\N\ta\t\\N\t\\N\ta\t\\N\t\\N\t\\N\n"},
        {R"({"address": 5, "address": {"city": "b"}, "id": 3, "id": 4})",
         "3\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"},
        {R"({"id": 4, "address": {"city": "a", "city": "b", "street": {"name": "s", "name": "t"}}})",
         "4\t\\N\ta\t\\N\ts\ta\t\\N\t\\N\t\\N\n"},
        // A null counts as the field (the second one is not read), and writes \N.
        {R"({"id": 5, "note": null, "note": "second"})", "5\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"},
        // Escaped names are the columns' names once unescaped.
        {R"({"i\u0064": 6, "n\u006fte": "esc", "address": {"c\u0069ty": "x"}})",
         "6\tesc\tx\t\\N\t\\N\tx\t\\N\t\\N\t\\N\n"},
        // A path into an array or a scalar finds nothing; fields no column takes are passed over.
        {R"({"id": 7, "address": [{"city": "x"}], "extra": {"deep": [1, {"x": [true, false, null]}]}})",
         "7\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"},
        {R"({"id": 8, "address": {"other": {"city": "no"}, "street": "flat", "city": "c"}, "z": [[]]})",
         "8\t\\N\tc\t\\N\t\\N\tc\t\\N\t\\N\t\\N\n"},
        // Unicode escapes become UTF-8; raw UTF-8 passes unchanged.
        {R"({"id": 9, "note": "\ud83d\ude00 \u00e9 \u4e2d \u0001"})",
         "9\t\xf0\x9f\x98\x80 \xc3\xa9 \xe4\xb8\xad \\001\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"},
        {"{\"id\": 10, \"note\": \"raw \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"}",
         "10\traw \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"},
        // Numbers keep their digits wherever they stand; blanks around them are not part of them.
        {"{ \"amount\" :\t-12345678901234567890.10 ,\n\"id\" : -9223372036854775808 }",
         "-9223372036854775808\t\\N\t\\N\t\\N\t\\N\t\\N\t-12345678901234567890.10\t\\N\t\\N\n"},
        {R"({"amount": -0, "id": 1e2, "note": 1.50, "address": {"zip": 2.0E1}})",
         "100\t1.50\t\\N\t20\t\\N\t\\N\t-0\t\\N\t\\N\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.payload);
      Encoded r = both_ways(cfg, c.payload);
      CHECK(r.op == RowOp::write);
      CHECK(r.row == "prefix|" + c.row);
      CHECK_FALSE(r.decoded);  // written from the payload, not from a Value tree
    }
  }

  TEST_CASE("a value that does not fit its column is poison with the Value path's reason") {
    auto cfg = scalar_config();
    struct Case {
      std::string payload, error;
    };
    const std::vector<Case> cases = {
        {R"({"address": {"zip": 2147483648}, "id": 1})", "column zip (integer): 2147483648 out of range"},
        {R"({"address": {"zip": 1.5}, "id": 1})", "column zip (integer): 1.5 is not an integer"},
        {R"({"id": 18446744073709551616})", "column id (bigint): 18446744073709551616 out of range"},
        {R"({"ok": "perhaps", "id": 1})", "column ok (boolean): 'perhaps' is not a boolean"},
        {R"({"note": "a\u0000b"})",
         "column note (text): contains a NUL byte, which PostgreSQL text cannot store"},
        {R"({"at": 4e15})", "column at (timestamptz): 4e15 (epoch milliseconds) out of range"},
        {R"({"amount": "1,5"})", "column amount (numeric): '1,5' is not a number"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.payload);
      Encoded r = both_ways(cfg, c.payload);
      CHECK(r.op == RowOp::poison);
      CHECK(r.error == c.error);
      CHECK(r.row == "prefix|");
    }
  }

  TEST_CASE("a record that is not valid JSON anywhere, in a field no column takes too, is poison") {
    auto cfg = scalar_config();
    const std::vector<std::string> bad = {
        R"({"id": 1, "zzz": tru})",
        R"({"id": 1, "zzz": nul})",
        R"({"id": 1, "zzz": [1 2]})",
        R"({"id": 1, "zzz": {"a" 1}})",
        R"({"id": 1, "zzz": 01})",
        R"({"id": 1, "zzz": -})",
        R"({"id": 1, "zzz": "\x"})",
        R"({"id": 1, "z\qz": 1})",
        R"({"id": 1, "zzz": "\ud800"})",
        R"({"id": 1, "note": "\ud800"})",
        R"({"id": 1, "address": {"other": [1,]}, "note": "x"})",
        R"({"id": 1, "note": "x"} trailing)",
        R"({"id": 1}{"id": 2})",
        R"({"id": 1, "note": "x")",
        "{\"id\": 1, \"zzz\": \"\xff\"}",           // not UTF-8, where no column reads it
        "{\"id\": 1, \"note\": \"caf\xc3\"}",       // a truncated sequence
        "{\"id\": 1, \"note\": \"\xed\xa0\x80\"}",  // an encoded surrogate
        "{\"id\": 1, \"zzz\": \"a\tb\"}",           // a raw control character in a string
    };
    for (const auto& payload : bad) {
      CAPTURE(payload);
      Encoded r = both_ways(cfg, payload);
      CHECK(r.op == RowOp::poison);
      CHECK(r.error.rfind("invalid JSON: ", 0) == 0);
      CHECK(r.row == "prefix|");
    }
    // Bytes are refused, never replaced: the reason says so.
    Encoded r = both_ways(cfg, "{\"id\": 1, \"note\": \"\xff\"}");
    CHECK(r.error.find("UTF-8") != std::string::npos);
  }

  TEST_CASE("nesting is bounded where no column reads it, with the Value path's reason") {
    auto cfg = scalar_config();
    // The record is level 1: a field's 1023 nested arrays reach level 1024, the bound; one more is refused.
    Encoded deepest = both_ways(cfg, R"({"id": 1, "zzz": )" + nested(1023) + "}");
    CHECK(deepest.op == RowOp::write);
    CHECK_FALSE(deepest.decoded);
    Encoded too_deep = both_ways(cfg, R"({"id": 1, "zzz": )" + nested(1024) + "}");
    CHECK(too_deep.op == RowOp::poison);
    CHECK(too_deep.error == "invalid JSON: nested deeper than 1024 levels");
    Encoded deep_path = both_ways(cfg, R"({"address": {"x": )" + nested(5000) + "}}");
    CHECK(deep_path.op == RowOp::poison);
    CHECK(deep_path.error == "invalid JSON: nested deeper than 1024 levels");
  }

  TEST_CASE("what a column takes whole, and records that are not objects, go to the Value path") {
    auto cfg = scalar_config();
    // `note` is text: an object there is written as its JSON text, by the Value path.
    Encoded obj = both_ways(cfg, R"({"id": 1, "note": {"b": [1, 2.50], "a": "x"}})");
    CHECK(obj.op == RowOp::write);
    CHECK(obj.row == "prefix|1\t{\"b\":[1,2.50],\"a\":\"x\"}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n");
    CHECK(obj.decoded);
    for (std::string payload : {"[1, 2]", "\"text\"", "5", "null", " {\"id\": 1} "}) {
      CAPTURE(payload);
      Encoded r = both_ways(cfg, payload);
      CHECK(r.op == RowOp::write);
    }
  }

  TEST_CASE("a config changed or replaced between records is read with its own columns") {
    auto cfg = scalar_config();
    const std::string payload = R"({"id": 1, "note": "n", "other": "o", "address": {"city": "c"}})";
    CHECK(encode(cfg, payload, false).row == "prefix|1\tn\tc\t\\N\t\\N\tc\t\\N\t\\N\t\\N\n");
    cfg.columns[1].path = "other";  // the same object, a different path
    CHECK(encode(cfg, payload, false).row == "prefix|1\to\tc\t\\N\t\\N\tc\t\\N\t\\N\t\\N\n");
    // Routed sinks alternate between tables' configs, more of them than are kept per thread.
    std::vector<etld::pg::PostgresSinkConfig> tables;
    const std::vector<std::string> fields = {"id", "note", "other", "address.city", "missing", "id", "note"};
    for (const auto& f : fields) {
      etld::pg::PostgresSinkConfig t;
      t.columns = {column("c", PgType::text, f)};
      tables.push_back(t);
    }
    const std::vector<std::string> want = {"1", "n", "o", "c", "\\N", "1", "n"};
    for (int round = 0; round < 3; ++round)
      for (std::size_t i = 0; i < tables.size(); ++i) {
        CAPTURE(i);
        Encoded r = encode(tables[i], payload, false);
        CHECK(r.row == "prefix|" + want[i] + "\n");
        CHECK_FALSE(r.decoded);
      }
  }
}
