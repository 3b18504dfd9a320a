// Compiling a schema: avro-c parses the text and resolves names and namespaces; the plan is read
// off its tree, walking the same text (simdjson) beside it for the logical types avro-c 1.11 keeps
// no trace of. A reference to a named type is a link in avro-c's tree, and becomes a pointer to
// the node compiled where the type was defined (the Avro specification wants definitions first).
#include "connectors/avro/avro_schema.hpp"

#include <avro.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <simdjson.h>

namespace etld::avro {

namespace {

using Json = simdjson::dom::element;

struct AvroSchemaRef {
  avro_schema_t s;
  ~AvroSchemaRef() {
    if (s) avro_schema_decref(s);
  }
};

// The member `key` of `json` when it is an object that has it.
const Json* member(const Json* json, const char* key, Json& slot) {
  if (!json) return nullptr;
  simdjson::dom::object obj;
  if (json->get(obj) || obj.at_key(key).get(slot)) return nullptr;
  return &slot;
}

std::string_view string_member(const Json* json, const char* key) {
  Json slot;
  const Json* v = member(json, key, slot);
  std::string_view out;
  if (!v || v->get(out)) return {};
  return out;
}

// The logical types of int and long, by name.
struct NumberLogical {
  std::string_view name;
  AvroType type;
  Logical logical;
};
constexpr NumberLogical kNumberLogicals[] = {
    {"date", AvroType::int_, Logical::date},
    {"time-millis", AvroType::int_, Logical::time_millis},
    {"time-micros", AvroType::long_, Logical::time_micros},
    {"timestamp-millis", AvroType::long_, Logical::timestamp_millis},
    {"timestamp-micros", AvroType::long_, Logical::timestamp_micros},
    {"local-timestamp-millis", AvroType::long_, Logical::local_timestamp_millis},
    {"local-timestamp-micros", AvroType::long_, Logical::local_timestamp_micros},
};

std::optional<std::int64_t> int_member(const Json* json, const char* key) {
  Json slot;
  const Json* v = member(json, key, slot);
  std::int64_t out = 0;
  if (!v || v->get(out)) return std::nullopt;
  return out;
}

}  // namespace

class SchemaCompiler {
 public:
  explicit SchemaCompiler(AvroSchema& out) : out_(out) {}

  // `json` is the text of this type where it is written (nullptr when unknown: the annotations
  // are then none).
  const AvroNode* compile(avro_schema_t s, const Json* json) {
    if (avro_typeof(s) == AVRO_LINK) s = avro_schema_link_target(s);
    if (auto it = named_.find(s); it != named_.end()) return it->second;
    // {"type": {...}} and {"type": [...]}: the type is the inner text.
    Json here;
    const Json* j = nullptr;
    if (json) {
      here = *json;
      j = &here;
      Json inner;
      while (member(j, "type", inner) && (inner.is_object() || inner.is_array())) here = inner;
    }

    auto* n = make();
    switch (avro_typeof(s)) {
      case AVRO_NULL: n->type = AvroType::null; break;
      case AVRO_BOOLEAN: n->type = AvroType::boolean; break;
      case AVRO_INT32: n->type = AvroType::int_; break;
      case AVRO_INT64: n->type = AvroType::long_; break;
      case AVRO_FLOAT: n->type = AvroType::float_; break;
      case AVRO_DOUBLE: n->type = AvroType::double_; break;
      case AVRO_BYTES: n->type = AvroType::bytes; break;
      case AVRO_STRING: n->type = AvroType::string; break;
      case AVRO_FIXED:
        n->type = AvroType::fixed;
        n->fixed_size = avro_schema_fixed_size(s);
        name(*n, s);
        break;
      case AVRO_ENUM: {
        n->type = AvroType::enum_;
        name(*n, s);
        const int count = avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < count; ++i) n->symbols.emplace_back(avro_schema_enum_get(s, i));
        break;
      }
      case AVRO_RECORD: {
        n->type = AvroType::record;
        name(*n, s);  // before the fields: they may refer to the record itself
        Json fields_slot;
        simdjson::dom::array fields_json;
        const Json* fj = member(j, "fields", fields_slot);
        const bool have_fields = fj && !fj->get(fields_json);
        const auto count = avro_schema_record_size(s);
        for (std::size_t i = 0; i < count; ++i) {
          const int index = static_cast<int>(i);
          Json field_slot, type_slot;
          const Json* type_json = nullptr;
          if (have_fields && i < fields_json.size() && !fields_json.at(i).get(field_slot))
            type_json = member(&field_slot, "type", type_slot);
          const AvroNode* type = compile(avro_schema_record_field_get_by_index(s, index), type_json);
          n->fields.emplace_back(avro_schema_record_field_name(s, index), type);
        }
        break;
      }
      case AVRO_ARRAY: {
        n->type = AvroType::array;
        Json slot;
        n->items = compile(avro_schema_array_items(s), member(j, "items", slot));
        break;
      }
      case AVRO_MAP: {
        n->type = AvroType::map;
        Json slot;
        n->items = compile(avro_schema_map_values(s), member(j, "values", slot));
        break;
      }
      case AVRO_UNION: {
        n->type = AvroType::union_;
        simdjson::dom::array branches;
        const bool have_branches = j && !j->get(branches);
        const auto count = avro_schema_union_size(s);
        for (std::size_t i = 0; i < count; ++i) {
          Json branch;
          const bool known = have_branches && i < branches.size() && !branches.at(i).get(branch);
          n->branches.push_back(
              compile(avro_schema_union_branch(s, static_cast<int>(i)), known ? &branch : nullptr));
        }
        break;
      }
      default: throw AvroSchemaError("unsupported Avro type " + std::string(avro_schema_type_name(s)));
    }
    annotate(*n, j);
    return n;
  }

 private:
  AvroNode* make() {
    out_.nodes_.push_back(std::make_unique<AvroNode>());
    return out_.nodes_.back().get();
  }

  void name(AvroNode& n, avro_schema_t s) {
    named_[s] = &n;
    const char* ns = avro_schema_namespace(s);
    n.name = (ns && *ns ? std::string(ns) + "." : std::string()) + avro_schema_name(s);
  }

  // The logical type written beside the type, when it is one etld maps and fits its type; and
  // the Kafka Connect type's name that Debezium's AvroConverter writes beside it ("connect.name"):
  // a ZonedTimestamp is a string to Avro, a timestamptz to the column.
  static void annotate(AvroNode& n, const Json* json) {
    n.connect_name = string_member(json, "connect.name");
    const std::string_view lt = string_member(json, "logicalType");
    if (lt.empty()) return;
    const AvroType t = n.type;
    if (lt == "decimal" && (t == AvroType::bytes || t == AvroType::fixed)) {
      const auto precision = int_member(json, "precision");
      const auto scale = int_member(json, "scale").value_or(0);
      if (!precision || *precision < 1 || scale < 0 || scale > *precision) return;
      n.logical = Logical::decimal;
      n.scale = static_cast<std::int32_t>(scale);
      n.precision = static_cast<std::int32_t>(*precision);
    } else if (lt == "uuid" && (t == AvroType::string || (t == AvroType::fixed && n.fixed_size == 16))) {
      n.logical = Logical::uuid;
    } else {
      for (const auto& [name, type, logical] : kNumberLogicals)
        if (lt == name && t == type) n.logical = logical;
    }
  }

  AvroSchema& out_;
  std::map<avro_schema_t, const AvroNode*> named_;
};

std::shared_ptr<const AvroSchema> AvroSchema::parse(std::string_view json) {
  // avro-c keeps its last error in a global where it is built without thread-local storage.
  static std::mutex avro_c_mu;
  std::lock_guard lock(avro_c_mu);
  AvroSchemaRef parsed{nullptr};
  if (avro_schema_from_json_length(json.data(), json.size(), &parsed.s) != 0 || !parsed.s)
    throw AvroSchemaError(avro_strerror());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const bool have_json = !parser.parse(json.data(), json.size()).get(doc);
  std::shared_ptr<AvroSchema> schema(new AvroSchema());
  SchemaCompiler compiler(*schema);
  schema->root_ = compiler.compile(parsed.s, have_json ? &doc : nullptr);
  return schema;
}

}  // namespace etld::avro
