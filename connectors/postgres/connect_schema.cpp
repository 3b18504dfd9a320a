// A Kafka Connect schema as an Avro schema (connect_schema.hpp): the Avro schema is written as a
// Value and compiled from its JSON text, so that avro-c checks it as it checks a registry's.
#include "connectors/postgres/connect_schema.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <utility>

namespace etld::pg {

namespace {

// Kafka Connect's and Debezium's logical types that an Avro logical type says (the others are
// carried by name only, see connect_schema.hpp).
struct LogicalType {
  std::string_view connect_name;
  std::string_view avro_type;  // the only underlying type it applies to
  const char* logical;
};
constexpr LogicalType kLogicalTypes[] = {
    {"org.apache.kafka.connect.data.Date", "int", "date"},
    {"io.debezium.time.Date", "int", "date"},
    {"org.apache.kafka.connect.data.Time", "int", "time-millis"},
    {"io.debezium.time.Time", "int", "time-millis"},
    {"io.debezium.time.MicroTime", "long", "time-micros"},
    {"io.debezium.time.NanoTime", "long", "time-micros"},
    {"org.apache.kafka.connect.data.Timestamp", "long", "timestamp-millis"},
    {"io.debezium.time.Timestamp", "long", "local-timestamp-millis"},
    {"io.debezium.time.MicroTimestamp", "long", "local-timestamp-micros"},
    {"io.debezium.time.NanoTimestamp", "long", "local-timestamp-micros"},
    {"io.debezium.data.Uuid", "string", "uuid"},
};
constexpr std::string_view kDecimal = "org.apache.kafka.connect.data.Decimal";
constexpr std::string_view kVariableScaleDecimal = "io.debezium.data.VariableScaleDecimal";

// The Avro type of each Connect primitive type, by the names JsonConverter writes ("float",
// "double") and by Connect's own (float32, float64).
std::optional<std::string_view> avro_primitive(std::string_view connect_type) {
  constexpr std::pair<std::string_view, std::string_view> kPrimitives[] = {
      {"boolean", "boolean"}, {"int8", "int"},      {"int16", "int"},     {"int32", "int"},
      {"int64", "long"},      {"float", "float"},   {"float32", "float"}, {"double", "double"},
      {"float64", "double"},  {"string", "string"}, {"bytes", "bytes"},
  };
  for (const auto& [connect, avro] : kPrimitives)
    if (connect == connect_type) return avro;
  return std::nullopt;
}

const std::string* string_member(const Value& v, std::string_view name) {
  const Value* m = v.find(name);
  return m && m->kind() == Value::Kind::string ? &m->as_string() : nullptr;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_avro_name(std::string_view s) {
  return !s.empty() && !(s[0] >= '0' && s[0] <= '9') && std::all_of(s.begin(), s.end(), is_name_char);
}

// A parameter that Connect writes as text ("2") and some producers as a number.
enum class Param { absent, ok, malformed };
Param int_param(const Value& schema, std::string_view name, int& out) {
  const Value* params = schema.find("parameters");
  const Value* v = params ? params->find(name) : nullptr;
  if (!v) return Param::absent;
  if (v->kind() == Value::Kind::integer) {
    if (v->as_int() < -1'000'000 || v->as_int() > 1'000'000) return Param::malformed;
    out = static_cast<int>(v->as_int());
    return Param::ok;
  }
  if (v->kind() != Value::Kind::string) return Param::malformed;
  const std::string& s = v->as_string();
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() ? Param::ok : Param::malformed;
}

class Converter {
 public:
  explicit Converter(std::string what) : what_(std::move(what)) {}

  // The Avro type of the Connect schema `s` at `path` (dotted field names, "" for the root).
  bool type(const Value& s, const std::string& path, Value& out) {
    if (s.kind() != Value::Kind::object)
      return fail(path, std::string("the schema is ") + kind_name(s.kind()) + ", not an object");
    const std::string* type = string_member(s, "type");
    if (!type) return fail(path, "the schema has no 'type'");
    const std::string* name = string_member(s, "name");
    Object avro;
    if (*type == "struct" && name && *name == kVariableScaleDecimal) {
      // {"scale": 2, "value": bytes}: decode_logical makes a number of it, of any scale.
      avro.emplace_back("type", "bytes");
    } else if (*type == "struct") {
      return record(s, path, name, out);
    } else if (*type == "array") {
      const Value* items = s.find("items");
      if (!items) return fail(path, "an array without 'items'");
      Value item;
      if (!member_type(*items, path + "[]", item)) return false;
      avro = {{"type", "array"}, {"items", std::move(item)}};
    } else if (*type == "map") {
      if (!map(s, path, avro)) return false;
    } else if (auto primitive = avro_primitive(*type)) {
      avro.emplace_back("type", std::string(*primitive));
      if (name && !logical(s, *name, *primitive, path, avro)) return false;
    } else {
      return fail(path, "unknown Connect type '" + *type + "'");
    }
    if (name) avro.emplace_back("connect.name", *name);
    out = Value(std::move(avro));
    return true;
  }

  // The root: a struct.
  bool root(const Value& s, Value& out) {
    const std::string* type = s.kind() == Value::Kind::object ? string_member(s, "type") : nullptr;
    if (!type) return fail({}, "the schema has no 'type'");
    if (*type != "struct")
      return fail({}, "it is of type '" + *type + "', not a struct: it has no fields to map to columns");
    return record(s, {}, string_member(s, "name"), out);
  }

  const std::string& error() const { return error_; }

 private:
  bool fail(const std::string& path, const std::string& why) {
    error_ = "the Connect schema of " + what_ + (path.empty() ? "" : ", field '" + path + "'") + ": " + why;
    return false;
  }

  // A field's, an array's items' or a map's values' type: ["null", T] when optional.
  bool member_type(const Value& s, const std::string& path, Value& out) {
    Value t;
    if (!type(s, path, t)) return false;
    const Value* optional = s.find("optional");
    if (optional && optional->kind() != Value::Kind::boolean)
      return fail(path, "'optional' is " + optional->to_json() + ", not true or false");
    out = optional && optional->as_bool() ? Value(Array{Value("null"), std::move(t)}) : std::move(t);
    return true;
  }

  bool record(const Value& s, const std::string& path, const std::string* name, Value& out) {
    const Value* fields = s.find("fields");
    if (!fields || fields->kind() != Value::Kind::array) return fail(path, "a struct without 'fields'");
    Array avro_fields;
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < fields->as_array().size(); ++i) {
      const Value& f = fields->as_array()[i];
      const std::string* field = f.kind() == Value::Kind::object ? string_member(f, "field") : nullptr;
      if (!field) return fail(path, "its field #" + std::to_string(i + 1) + " has no name ('field')");
      const std::string field_path = path.empty() ? *field : path + "." + *field;
      if (!is_avro_name(*field))
        return fail(field_path,
                    "the name is not an Avro name ([A-Za-z_][A-Za-z0-9_]*), which columns from the "
                    "schema need: map this table's columns with 'columns:'");
      if (!seen.insert(*field).second) return fail(field_path, "the struct has two fields of this name");
      Value t;
      if (!member_type(f, field_path, t)) return false;
      Object avro_field{{"name", *field}};
      const bool nullable = t.kind() == Value::Kind::array;
      avro_field.emplace_back("type", std::move(t));
      if (nullable) avro_field.emplace_back("default", nullptr);
      avro_fields.emplace_back(std::move(avro_field));
    }
    Object avro{{"type", "record"}, {"name", unique_name(name ? *name : "ConnectDefault")}};
    avro.emplace_back("fields", std::move(avro_fields));
    if (name) avro.emplace_back("connect.name", *name);
    out = Value(std::move(avro));
    return true;
  }

  // Avro's map has string keys; other keys make an array of {key, value} records, as AvroData does.
  bool map(const Value& s, const std::string& path, Object& avro) {
    const Value* keys = s.find("keys");
    const Value* values = s.find("values");
    if (!keys || !values) return fail(path, "a map without 'keys' and 'values'");
    Value value;
    if (!member_type(*values, path + "{}", value)) return false;
    const std::string* key_type =
        keys->kind() == Value::Kind::object ? string_member(*keys, "type") : nullptr;
    const Value* key_optional = keys->kind() == Value::Kind::object ? keys->find("optional") : nullptr;
    if (key_type && *key_type == "string" && !(key_optional && key_optional->truthy())) {
      avro = {{"type", "map"}, {"values", std::move(value)}};
      return true;
    }
    Value key;
    if (!member_type(*keys, path + "{key}", key)) return false;
    Object entry{{"type", "record"}, {"name", unique_name("MapEntry")}};
    entry.emplace_back("fields", Array{Value(Object{{"name", "key"}, {"type", std::move(key)}}),
                                       Value(Object{{"name", "value"}, {"type", std::move(value)}})});
    avro = {{"type", "array"}, {"items", Value(std::move(entry))}};
    return true;
  }

  // The logical type the Connect type `name` has in Avro, when it has one on this type.
  bool logical(const Value& s, const std::string& name, std::string_view avro_type, const std::string& path,
               Object& avro) {
    for (const auto& l : kLogicalTypes)
      if (name == l.connect_name && avro_type == l.avro_type) avro.emplace_back("logicalType", l.logical);
    if (name != kDecimal || avro_type != "bytes") return true;
    int scale = 0, precision = 0;
    if (int_param(s, "scale", scale) != Param::ok)
      return fail(path, std::string(kDecimal) + " without an integer parameters.scale");
    const Param p = int_param(s, "connect.decimal.precision", precision);
    if (p == Param::malformed)
      return fail(path, std::string(kDecimal) + ": parameters.connect.decimal.precision is not an integer");
    // Without a precision (or with one Avro's decimal cannot have) it stays bytes: a numeric of
    // any precision, by its connect.name.
    if (p == Param::ok && precision >= 1 && scale >= 0 && scale <= precision) {
      avro.emplace_back("logicalType", "decimal");
      avro.emplace_back("precision", precision);
      avro.emplace_back("scale", scale);
    }
    return true;
  }

  // Connect's name as an Avro full name, unique in this schema: Avro refuses a second definition
  // of a name (two fields of one struct type), and names with characters Connect allows ("-").
  std::string unique_name(const std::string& connect_name) {
    std::string name;
    std::size_t start = 0;
    while (start <= connect_name.size()) {
      std::size_t dot = connect_name.find('.', start);
      if (dot == std::string::npos) dot = connect_name.size();
      std::string part = connect_name.substr(start, dot - start);
      std::replace_if(
          part.begin(), part.end(), [](char c) { return !is_name_char(c); }, '_');
      if (!is_avro_name(part)) part.insert(0, "_");
      name += (name.empty() ? "" : ".") + part;
      start = dot + 1;
    }
    std::string unique = name;
    for (int n = 2; !names_.insert(unique).second; ++n) unique = name + "_" + std::to_string(n);
    return unique;
  }

  std::string what_;
  std::string error_;
  std::set<std::string> names_;
};

// The struct to convert: `schema` itself, or its field `image`.
const Value* image_schema(const Value& schema, std::string_view image, std::string& error) {
  if (schema.kind() != Value::Kind::object) {
    error = std::string("the Connect schema is ") + kind_name(schema.kind()) + ", not an object";
    return nullptr;
  }
  if (image.empty()) return &schema;
  const Value* fields = schema.find("fields");
  if (fields && fields->kind() == Value::Kind::array)
    for (const Value& f : fields->as_array()) {
      const std::string* name = f.kind() == Value::Kind::object ? string_member(f, "field") : nullptr;
      if (name && *name == image) return &f;
    }
  error =
      "the Connect schema has no field '" + std::string(image) + "': not a Debezium change event's envelope";
  return nullptr;
}

std::shared_ptr<const avro::AvroSchema> compile(const Value& s, bool key, std::string& error) {
  Converter converter(key ? "the key" : "the row image");
  Value avro;
  if (!converter.root(s, avro)) {
    error = converter.error();
    return nullptr;
  }
#ifdef ETLD_WITH_AVRO
  try {
    return avro::AvroSchema::parse(avro.to_json());
  } catch (const avro::AvroSchemaError& e) {
    error = std::string("the Connect schema of ") + (key ? "the key" : "the row image") +
            " is not a valid Avro schema: " + e.what();
    return nullptr;
  }
#else
  error = "this etld is built without Avro (ETLD_WITH_AVRO=OFF): columns from a Connect schema need it";
  return nullptr;
#endif
}

// Whether two image schemas convert alike: their names and fields (not the image's own "field"
// and "optional", which differ between "before" and "after").
bool same_struct(const Value& a, const Value& b) {
  const Value* an = a.find("name");
  const Value* bn = b.find("name");
  if ((an == nullptr) != (bn == nullptr) || (an && !(*an == *bn))) return false;
  const Value* af = a.find("fields");
  const Value* bf = b.find("fields");
  if ((af == nullptr) != (bf == nullptr) || (af && !(*af == *bf))) return false;
  const Value* at = a.find("type");
  const Value* bt = b.find("type");
  return (at == nullptr) == (bt == nullptr) && (!at || *at == *bt);
}

}  // namespace

std::shared_ptr<const avro::AvroSchema> avro_from_connect(const Value& schema, std::string_view image,
                                                          std::string& error) {
  const Value* s = image_schema(schema, image, error);
  return s ? compile(*s, image.empty(), error) : nullptr;
}

std::shared_ptr<const avro::AvroSchema> ConnectSchemaCache::get(const Value& schema, std::string_view image,
                                                                std::string& error) {
  const Value* s = image_schema(schema, image, error);
  if (!s) return nullptr;
  const bool key = image.empty();
  auto hit = std::find_if(entries_.begin(), entries_.end(),
                          [&](const Entry& e) { return e.key == key && same_struct(e.image, *s); });
  if (hit == entries_.end()) {
    Entry e{*s, key, nullptr, {}};
    e.avro = compile(*s, key, e.error);
    if (entries_.size() >= capacity_) entries_.pop_back();
    entries_.insert(entries_.begin(), std::move(e));
  } else {
    std::rotate(entries_.begin(), hit, hit + 1);
  }
  error = entries_.front().error;
  return entries_.front().avro;
}

}  // namespace etld::pg
