// Kafka Connect schemas (the JsonConverter's {"schema": ..., "payload": ...} wrapper) as Avro
// schemas, for columns from the schema in mode debezium: the schemas of change events recorded
// from the real Debezium 3.6.1 connector (tests/fixtures/debezium, one column of each PostgreSQL
// type under each time.precision.mode), the Connect types Debezium's PostgreSQL connector does not
// write (int8, NanoTime, maps, a Decimal without precision), malformed schemas refused with their
// reasons, and the cache compiling one schema once.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/connect_schema.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/debezium_fixture.hpp"

#ifdef ETLD_WITH_AVRO

using etld::parse_json;
using etld::Value;
using etld::avro::AvroNode;
using etld::avro::AvroSchema;
using etld::avro::AvroType;
using etld::avro::Logical;
using etld::pg::avro_from_connect;
using etld::pg::ConnectSchemaCache;

namespace {

// A recorded Kafka record: its key and value (the wrapper, or null).
struct Recorded {
  Value key, value;
};

std::vector<Recorded> fixture(const std::string& name) {
  std::vector<Recorded> out;
  for (const auto& [key, value] : etld::test::debezium_fixture(name))
    out.push_back({parse_json(key), parse_json(value)});
  return out;
}

const Value& schema_of(const Value& wrapper) {
  const Value* s = wrapper.find("schema");
  REQUIRE(s != nullptr);
  return *s;
}

std::shared_ptr<const AvroSchema> convert(const Value& schema, std::string_view image) {
  std::string error;
  auto avro = avro_from_connect(schema, image, error);
  INFO(error);
  REQUIRE(avro != nullptr);
  CHECK(error.empty());
  return avro;
}

std::string convert_error(const std::string& schema_json, std::string_view image = "after") {
  std::string error;
  CHECK(avro_from_connect(parse_json(schema_json), image, error) == nullptr);
  return error;
}

std::vector<std::string> field_names(const AvroNode& record) {
  std::vector<std::string> out;
  for (const auto& [name, node] : record.fields) out.push_back(name);
  return out;
}

const AvroNode& field(const AvroNode& record, const std::string& name) {
  for (const auto& [n, node] : record.fields)
    if (n == name) return *node;
  FAIL("no field " << name);
  return record;
}

// The type of an optional field: the branch beside null.
const AvroNode& optional_value(const AvroNode& node) {
  REQUIRE(node.type == AvroType::union_);
  REQUIRE(node.branches.size() == 2);
  CHECK(node.branches[0]->type == AvroType::null);
  return *node.branches[1];
}

struct Expected {
  AvroType type;
  Logical logical = Logical::none;
  std::string connect_name = {};
};
void check_type(const AvroNode& record, const std::string& name, const Expected& e) {
  INFO("field " << name);
  const AvroNode& n = optional_value(field(record, name));
  CHECK(n.type == e.type);
  CHECK(n.logical == e.logical);
  CHECK(n.connect_name == e.connect_name);
}

// A struct schema of one field (as a field of the envelope: {"type": "struct", "fields": [...]}).
std::string one_field(const std::string& field) {
  return R"({"type":"struct","name":"srv.public.t.Envelope","fields":[{"type":"struct","optional":true,)"
         R"("name":"srv.public.t.Value","field":"after","fields":[)" +
         field + "]}]}";
}

}  // namespace

TEST_SUITE("connect_schema") {
  TEST_CASE("the row image of a recorded change event: fields in order, optional ones nullable") {
    const auto events = fixture("customers.schemas.tsv");
    const auto avro = convert(schema_of(events[0].value), "after");
    const AvroNode& row = avro->root();
    CHECK(row.type == AvroType::record);
    CHECK(row.name == "fxschema2.public.fixture_customers.Value");
    CHECK(row.connect_name == "fxschema2.public.fixture_customers.Value");
    CHECK(field_names(row) ==
          std::vector<std::string>{"id", "name", "balance", "seen", "active", "note", "born"});
    CHECK(field(row, "id").type == AvroType::int_);
    CHECK(field(row, "name").type == AvroType::string);
    CHECK(field(row, "active").type == AvroType::boolean);
    check_type(row, "balance", {AvroType::string});  // decimal.handling.mode=string
    check_type(row, "note", {AvroType::string});
    check_type(row, "seen", {AvroType::string, Logical::none, "io.debezium.time.ZonedTimestamp"});
    check_type(row, "born", {AvroType::string, Logical::none, "io.debezium.time.IsoDate"});

    // A delete's row image is "before", of the same struct.
    const auto before = convert(schema_of(events[3].value), "before");
    CHECK(field_names(before->root()) == field_names(row));

    // After ALTER TABLE ... ADD COLUMN tier the events carry it, last.
    const auto evolved = convert(schema_of(events[8].value), "after");
    CHECK(field_names(evolved->root()) ==
          std::vector<std::string>{"id", "name", "balance", "seen", "active", "note", "born", "tier"});
    check_type(evolved->root(), "tier", {AvroType::string});
  }

  TEST_CASE("a key's schema is converted itself") {
    const auto events = fixture("customers.schemas.tsv");
    const auto key = convert(schema_of(events[0].key), "");
    CHECK(key->root().name == "fxschema2.public.fixture_customers.Key");
    CHECK(field_names(key->root()) == std::vector<std::string>{"id"});
    CHECK(field(key->root(), "id").type == AvroType::int_);
    // The same text as a value: {"schema": {"type":"struct","fields":[...]}, "payload": {"id": 1}}.
    const auto inline_key = convert(
        parse_json(R"({"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]})"), "");
    CHECK(inline_key->root().name == "ConnectDefault");  // AvroData's name for an unnamed struct
    CHECK(field(inline_key->root(), "id").type == AvroType::int_);
  }

  TEST_CASE("every column type, time.precision.mode adaptive and decimal.handling.mode precise") {
    const auto events = fixture("types.schemas.tsv");
    const auto avro = convert(schema_of(events[0].value), "after");
    const AvroNode& row = avro->root();
    CHECK(field(row, "id").type == AvroType::int_);
    CHECK(field(row, "i2").type == AvroType::int_);  // int16
    check_type(row, "i8", {AvroType::long_});
    check_type(row, "r4", {AvroType::float_});
    check_type(row, "r8", {AvroType::double_});
    const AvroNode& n102 = optional_value(field(row, "n102"));
    CHECK(n102.type == AvroType::bytes);
    CHECK(n102.logical == Logical::decimal);
    CHECK(n102.precision == 10);
    CHECK(n102.scale == 2);
    CHECK(n102.connect_name == "org.apache.kafka.connect.data.Decimal");
    // numeric without (p,s): a {scale, value} struct, which decode_logical turns into its number.
    check_type(row, "nfree", {AvroType::bytes, Logical::none, "io.debezium.data.VariableScaleDecimal"});
    check_type(row, "flag", {AvroType::boolean});
    check_type(row, "t", {AvroType::string});
    check_type(row, "vc", {AvroType::string});
    check_type(row, "b", {AvroType::bytes});
    check_type(row, "d", {AvroType::int_, Logical::date, "io.debezium.time.Date"});
    check_type(row, "tm", {AvroType::int_, Logical::time_millis, "io.debezium.time.Time"});
    check_type(row, "tm6", {AvroType::long_, Logical::time_micros, "io.debezium.time.MicroTime"});
    check_type(row, "ttz", {AvroType::string, Logical::none, "io.debezium.time.ZonedTime"});
    check_type(row, "ts3", {AvroType::long_, Logical::local_timestamp_millis, "io.debezium.time.Timestamp"});
    check_type(row, "ts6",
               {AvroType::long_, Logical::local_timestamp_micros, "io.debezium.time.MicroTimestamp"});
    check_type(row, "tstz", {AvroType::string, Logical::none, "io.debezium.time.ZonedTimestamp"});
    check_type(row, "u", {AvroType::string, Logical::uuid, "io.debezium.data.Uuid"});
    check_type(row, "j", {AvroType::string, Logical::none, "io.debezium.data.Json"});
    check_type(row, "jb", {AvroType::string, Logical::none, "io.debezium.data.Json"});
    check_type(row, "iv", {AvroType::long_, Logical::none, "io.debezium.time.MicroDuration"});
    check_type(row, "x", {AvroType::string, Logical::none, "io.debezium.data.Xml"});
    check_type(row, "bits", {AvroType::bytes, Logical::none, "io.debezium.data.Bits"});
    for (const char* name : {"arr", "nested_arr"}) {
      INFO(name);
      const AvroNode& arr = optional_value(field(row, name));
      CHECK(arr.type == AvroType::array);
      REQUIRE(arr.items != nullptr);
      CHECK(optional_value(*arr.items).type ==
            (name == std::string("arr") ? AvroType::int_ : AvroType::string));
    }
    // Every column of the table, in its order.
    CHECK(field_names(row).size() == 26);
    CHECK(field_names(row).back() == "nested_arr");
  }

  TEST_CASE("time.precision.mode connect: Kafka Connect's own Date, Time and Timestamp") {
    const auto events = fixture("types.connect.schemas.tsv");
    const auto avro = convert(schema_of(events[0].value), "after");
    const AvroNode& row = avro->root();
    check_type(row, "d", {AvroType::int_, Logical::date, "org.apache.kafka.connect.data.Date"});
    check_type(row, "tm", {AvroType::int_, Logical::time_millis, "org.apache.kafka.connect.data.Time"});
    check_type(row, "tm6", {AvroType::int_, Logical::time_millis, "org.apache.kafka.connect.data.Time"});
    // Connect's Timestamp is an instant (UTC): timestamptz, where Debezium's own is local.
    check_type(row, "ts3",
               {AvroType::long_, Logical::timestamp_millis, "org.apache.kafka.connect.data.Timestamp"});
    check_type(row, "ts6",
               {AvroType::long_, Logical::timestamp_millis, "org.apache.kafka.connect.data.Timestamp"});
  }

  TEST_CASE("time.precision.mode isostring: ISO text, named") {
    const auto events = fixture("types.isostring.schemas.tsv");
    const auto avro = convert(schema_of(events[0].value), "after");
    const AvroNode& row = avro->root();
    check_type(row, "d", {AvroType::string, Logical::none, "io.debezium.time.IsoDate"});
    check_type(row, "tm", {AvroType::string, Logical::none, "io.debezium.time.IsoTime"});
    check_type(row, "ts6", {AvroType::string, Logical::none, "io.debezium.time.IsoTimestamp"});
  }

  TEST_CASE("nested structs: the whole envelope, with before and after of one struct name") {
    const auto events = fixture("customers.schemas.tsv");
    const auto envelope = convert(schema_of(events[0].value), "");
    const AvroNode& root = envelope->root();
    CHECK(field_names(root) == std::vector<std::string>{"before", "after", "source", "transaction", "op",
                                                        "ts_ms", "ts_us", "ts_ns"});
    const AvroNode& before = optional_value(field(root, "before"));
    const AvroNode& after = optional_value(field(root, "after"));
    // Avro names a type once: the second definition of a struct name gets a name of its own.
    CHECK(before.name == "fxschema2.public.fixture_customers.Value");
    CHECK(after.name == "fxschema2.public.fixture_customers.Value_2");
    CHECK(after.connect_name == "fxschema2.public.fixture_customers.Value");
    CHECK(field_names(after) == field_names(before));
    const AvroNode& source = field(root, "source");
    CHECK(source.type == AvroType::record);
    CHECK(source.name == "io.debezium.connector.postgresql.Source");
    check_type(source, "snapshot", {AvroType::string, Logical::none, "io.debezium.data.Enum"});
    check_type(source, "lsn", {AvroType::long_});
  }

  TEST_CASE("the Connect types Debezium's PostgreSQL connector does not write") {
    const auto avro = convert(parse_json(one_field(R"(
      {"type":"int8","optional":false,"field":"tiny"},
      {"type":"float32","optional":false,"field":"f32"},
      {"type":"float64","optional":true,"field":"f64"},
      {"type":"int64","optional":true,"name":"io.debezium.time.NanoTime","field":"nt"},
      {"type":"int64","optional":true,"name":"io.debezium.time.NanoTimestamp","field":"nts"},
      {"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal",
       "parameters":{"scale":"3"},"field":"free"},
      {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal",
       "parameters":{"scale":4,"connect.decimal.precision":20},"field":"numbers"},
      {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal",
       "parameters":{"scale":"-2","connect.decimal.precision":"5"},"field":"negative_scale"},
      {"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int64","optional":true},
       "optional":false,"field":"counts"},
      {"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false},
       "optional":false,"field":"by_number"},
      {"type":"struct","name":"my-server.public.addr","optional":true,"field":"home","fields":[
        {"type":"string","optional":false,"field":"city"},
        {"type":"struct","name":"geo","optional":false,"field":"at","fields":[
          {"type":"double","optional":false,"field":"lat"}]}]},
      {"type":"struct","name":"my-server.public.addr","optional":false,"field":"work","fields":[
        {"type":"string","optional":false,"field":"city"}]}
    )")),
                              "after");
    const AvroNode& row = avro->root();
    CHECK(field(row, "tiny").type == AvroType::int_);
    CHECK(field(row, "f32").type == AvroType::float_);
    check_type(row, "f64", {AvroType::double_});
    // decode_logical writes NanoTime as time text and NanoTimestamp as timestamp text, to the
    // nanosecond (PostgreSQL rounds them to its microseconds).
    check_type(row, "nt", {AvroType::long_, Logical::time_micros, "io.debezium.time.NanoTime"});
    check_type(row, "nts",
               {AvroType::long_, Logical::local_timestamp_micros, "io.debezium.time.NanoTimestamp"});
    // No precision: a numeric of any, by its name; an Avro decimal cannot have a negative scale.
    check_type(row, "free", {AvroType::bytes, Logical::none, "org.apache.kafka.connect.data.Decimal"});
    const AvroNode& numbers = field(row, "numbers");
    CHECK(numbers.logical == Logical::decimal);
    CHECK(numbers.precision == 20);
    CHECK(numbers.scale == 4);
    CHECK(field(row, "negative_scale").logical == Logical::none);
    CHECK(field(row, "negative_scale").connect_name == "org.apache.kafka.connect.data.Decimal");

    const AvroNode& counts = field(row, "counts");
    CHECK(counts.type == AvroType::map);
    CHECK(optional_value(*counts.items).type == AvroType::long_);
    // Avro's maps have string keys: others are an array of {key, value}, as AvroData writes them.
    const AvroNode& by_number = field(row, "by_number");
    REQUIRE(by_number.type == AvroType::array);
    CHECK(field_names(*by_number.items) == std::vector<std::string>{"key", "value"});
    CHECK(field(*by_number.items, "key").type == AvroType::int_);

    const AvroNode& home = optional_value(field(row, "home"));
    CHECK(home.name == "my_server.public.addr");  // '-' is no Avro name character
    CHECK(home.connect_name == "my-server.public.addr");
    CHECK(field(field(home, "at"), "lat").type == AvroType::double_);
    CHECK(field(row, "work").name == "my_server.public.addr_2");
  }

  TEST_CASE("connect.name in an Avro schema's text is kept on its node") {
    const auto avro = AvroSchema::parse(R"({"type":"record","name":"r","connect.name":"x.R","fields":[
      {"name":"a","type":["null",{"type":"string","connect.name":"io.debezium.time.ZonedTimestamp"}]},
      {"name":"b","type":{"type":"long","logicalType":"timestamp-micros","connect.name":"io.debezium.time.MicroTimestamp"}},
      {"name":"c","type":"string"}]})");
    CHECK(avro->root().connect_name == "x.R");
    CHECK(optional_value(field(avro->root(), "a")).connect_name == "io.debezium.time.ZonedTimestamp");
    CHECK(field(avro->root(), "b").connect_name == "io.debezium.time.MicroTimestamp");
    CHECK(field(avro->root(), "b").logical == Logical::timestamp_micros);
    CHECK(field(avro->root(), "c").connect_name.empty());
  }

  TEST_CASE("malformed schemas are refused with the reason and the field") {
    std::string error;
    CHECK(avro_from_connect(parse_json("[1, 2]"), "after", error) == nullptr);
    CHECK(error == "the Connect schema is array, not an object");
    CHECK(avro_from_connect(parse_json("null"), "", error) == nullptr);
    CHECK(error == "the Connect schema is null, not an object");

    CHECK(convert_error(R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"op"}]})") ==
          "the Connect schema has no field 'after': not a Debezium change event's envelope");
    CHECK(
        convert_error(R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"op"}]})",
                      "op") ==
        "the Connect schema of the row image: it is of type 'string', not a struct: it has no fields to map "
        "to columns");
    CHECK(convert_error(R"({"type":"string"})", "") ==
          "the Connect schema of the key: it is of type 'string', not a struct: it has no fields to map to "
          "columns");
    CHECK(convert_error(R"({"type":"struct","fields":[{"optional":true,"field":"after"}]})") ==
          "the Connect schema of the row image: the schema has no 'type'");
    CHECK(
        convert_error(R"({"type":"struct","fields":[{"type":"struct","optional":true,"field":"after"}]})") ==
        "the Connect schema of the row image: a struct without 'fields'");
    CHECK(convert_error(one_field(R"({"type":"int128","optional":false,"field":"id"})")) ==
          "the Connect schema of the row image, field 'id': unknown Connect type 'int128'");
    CHECK(convert_error(one_field(R"({"optional":false,"field":"id"})")) ==
          "the Connect schema of the row image, field 'id': the schema has no 'type'");
    CHECK(convert_error(one_field(R"({"type":"int32","optional":false,"field":"id"},{"type":"int32"})")) ==
          "the Connect schema of the row image: its field #2 has no name ('field')");
    CHECK(convert_error(one_field(R"({"type":"int32","optional":false,"field":"id"},
                                     {"type":"string","optional":false,"field":"id"})")) ==
          "the Connect schema of the row image, field 'id': the struct has two fields of this name");
    CHECK(convert_error(one_field(R"({"type":"struct","optional":false,"field":"home","fields":[
                                       {"type":"array","optional":false,"field":"tags"}]})")) ==
          "the Connect schema of the row image, field 'home.tags': an array without 'items'");
    CHECK(convert_error(one_field(R"({"type":"map","keys":{"type":"string"},"field":"m"})")) ==
          "the Connect schema of the row image, field 'm': a map without 'keys' and 'values'");
    CHECK(convert_error(one_field(R"({"type":"array","items":{"type":"nope"},"field":"tags"})")) ==
          "the Connect schema of the row image, field 'tags[]': unknown Connect type 'nope'");
    CHECK(convert_error(one_field(R"({"type":"int32","optional":"yes","field":"id"})")) ==
          "the Connect schema of the row image, field 'id': 'optional' is \"yes\", not true or false");
    CHECK(convert_error(
              one_field(R"({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","field":"p"})")) ==
          "the Connect schema of the row image, field 'p': org.apache.kafka.connect.data.Decimal without an "
          "integer parameters.scale");
    CHECK(convert_error(one_field(R"({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal",
                                      "parameters":{"scale":"2","connect.decimal.precision":"ten"},"field":"p"})")) ==
          "the Connect schema of the row image, field 'p': org.apache.kafka.connect.data.Decimal: "
          "parameters.connect.decimal.precision is not an integer");
    // PostgreSQL's column names may be what Avro's field names may not.
    CHECK(convert_error(one_field(R"({"type":"int32","optional":false,"field":"order-id"})")) ==
          "the Connect schema of the row image, field 'order-id': the name is not an Avro name "
          "([A-Za-z_][A-Za-z0-9_]*), which columns from the schema need: map this table's columns with "
          "'columns:'");
  }

  TEST_CASE("the cache compiles a schema once and a changed schema again") {
    const auto events = fixture("customers.schemas.tsv");
    ConnectSchemaCache cache;
    std::string error;
    // Two events of one schema, parsed apart: one compiled schema.
    const auto first = cache.get(schema_of(events[0].value), "after", error);
    REQUIRE(first != nullptr);
    CHECK(cache.get(schema_of(events[1].value), "after", error) == first);
    CHECK(cache.get(schema_of(events[2].value), "after", error) == first);
    // A delete's "before" is the same struct: the same schema.
    CHECK(cache.get(schema_of(events[3].value), "before", error) == first);
    // A field added: another schema; the first stays cached.
    const auto evolved = cache.get(schema_of(events[8].value), "after", error);
    REQUIRE(evolved != nullptr);
    CHECK(evolved != first);
    CHECK(field_names(evolved->root()).back() == "tier");
    CHECK(cache.get(schema_of(events[0].value), "after", error) == first);
    CHECK(cache.get(schema_of(events[8].value), "after", error) == evolved);
    // The key's schema is another entry.
    const auto key = cache.get(schema_of(events[0].key), "", error);
    REQUIRE(key != nullptr);
    CHECK(key != first);
    CHECK(cache.get(schema_of(events[1].key), "", error) == key);

    // A field's type changed (what ALTER COLUMN ... TYPE does): another schema.
    Value changed = schema_of(events[0].value);
    Value* after = nullptr;
    for (Value& f : changed.find("fields")->as_array())
      if (f.find("field")->as_string() == "after") after = &f;
    REQUIRE(after != nullptr);
    after->find("fields")->as_array()[0].set("type", "int64");
    const auto widened = cache.get(changed, "after", error);
    REQUIRE(widened != nullptr);
    CHECK(widened != first);
    CHECK(field(widened->root(), "id").type == AvroType::long_);
  }

  TEST_CASE("the cache keeps its last schemas, most recent first, and errors too") {
    const auto events = fixture("customers.schemas.tsv");
    ConnectSchemaCache cache(2);
    std::string error;
    const auto a = cache.get(schema_of(events[0].value), "after", error);
    const auto b = cache.get(schema_of(events[8].value), "after", error);
    const auto key = cache.get(schema_of(events[0].key), "", error);  // a is the least recent: dropped
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(key != nullptr);
    CHECK(cache.get(schema_of(events[8].value), "after", error) == b);
    const auto a_again = cache.get(schema_of(events[0].value), "after", error);  // compiled again
    REQUIRE(a_again != nullptr);
    CHECK(a_again != a);
    CHECK(field_names(a_again->root()) == field_names(a->root()));
    CHECK(cache.get(schema_of(events[8].value), "after", error) == b);  // b was used after key

    const Value bad = parse_json(one_field(R"({"type":"int128","optional":false,"field":"id"})"));
    CHECK(cache.get(bad, "after", error) == nullptr);
    CHECK(error == "the Connect schema of the row image, field 'id': unknown Connect type 'int128'");
    error.clear();
    CHECK(cache.get(bad, "after", error) == nullptr);
    CHECK(error == "the Connect schema of the row image, field 'id': unknown Connect type 'int128'");
    // A good schema after a bad one reports no error.
    CHECK(cache.get(schema_of(events[8].value), "after", error) == b);
    CHECK(error.empty());
    // No envelope at all: refused before the cache.
    CHECK(cache.get(parse_json(R"({"type":"struct","fields":[]})"), "after", error) == nullptr);
    CHECK(error == "the Connect schema has no field 'after': not a Debezium change event's envelope");
  }
}

#endif  // ETLD_WITH_AVRO
