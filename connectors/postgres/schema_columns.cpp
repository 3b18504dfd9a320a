// Columns from the schema (schema_columns.hpp).
#include "connectors/postgres/schema_columns.hpp"

#include <algorithm>

#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/pg_debezium.hpp"
#include "connectors/postgres/pg_sql.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/upstream.hpp"

namespace etld::pg {

namespace {

using avro::AvroNode;
using avro::AvroType;
using avro::Logical;

// A Debezium type that Avro's own types say too little about, by the name Debezium's converters
// keep beside the type ("connect.name").
std::optional<SchemaColumnType> connect_type(const AvroNode& n) {
  const std::string& name = n.connect_name;
  if (name == "io.debezium.time.ZonedTimestamp")
    return SchemaColumnType{PgType::timestamptz, "timestamptz", false};
  if (name == "io.debezium.data.Json") return SchemaColumnType{PgType::jsonb, "jsonb", false};
  if (name == "io.debezium.time.ZonedTime")
    return SchemaColumnType{PgType::text, "time with time zone", false};
  if (name == "org.apache.kafka.connect.data.Decimal" && n.logical != Logical::decimal)
    return SchemaColumnType{PgType::numeric, "numeric", false};  // no precision: unconstrained
  return std::nullopt;
}

std::optional<SchemaColumnType> value_type(const AvroNode& n) {
  if (auto t = connect_type(n)) return t;
  switch (n.type) {
    case AvroType::null: return std::nullopt;
    case AvroType::boolean: return SchemaColumnType{PgType::boolean, "boolean", false};
    case AvroType::int_:
      if (n.logical == Logical::date) return SchemaColumnType{PgType::date, "date", false};
      // Times go as their text ("12:30:00.250"), which a time column parses.
      if (n.logical == Logical::time_millis) return SchemaColumnType{PgType::text, "time", false};
      return SchemaColumnType{PgType::integer, "integer", false};
    case AvroType::long_:
      switch (n.logical) {
        case Logical::time_micros: return SchemaColumnType{PgType::text, "time", false};
        case Logical::timestamp_millis:
        case Logical::timestamp_micros: return SchemaColumnType{PgType::timestamptz, "timestamptz", false};
        case Logical::local_timestamp_millis:
        case Logical::local_timestamp_micros:
          return SchemaColumnType{PgType::text, "timestamp without time zone", false};
        default: return SchemaColumnType{PgType::bigint, "bigint", false};
      }
    case AvroType::float_: return SchemaColumnType{PgType::real, "real", false};
    case AvroType::double_: return SchemaColumnType{PgType::double_precision, "double precision", false};
    case AvroType::bytes:
    case AvroType::fixed:
      if (n.logical == Logical::decimal)
        return SchemaColumnType{
            PgType::numeric, "numeric(" + std::to_string(n.precision) + "," + std::to_string(n.scale) + ")",
            false};
      if (n.logical == Logical::uuid) return SchemaColumnType{PgType::uuid, "uuid", false};
      return SchemaColumnType{PgType::bytea, "bytea", false};
    case AvroType::string:
      if (n.logical == Logical::uuid) return SchemaColumnType{PgType::uuid, "uuid", false};
      return SchemaColumnType{PgType::text, "text", false};
    case AvroType::enum_: return SchemaColumnType{PgType::text, "text", false};
    case AvroType::record:
    case AvroType::array:
    case AvroType::map:
    case AvroType::union_: return SchemaColumnType{PgType::jsonb, "jsonb", false};
  }
  return std::nullopt;
}

}  // namespace

std::optional<SchemaColumnType> column_type_for(const AvroNode& field) {
  if (field.type != AvroType::union_) return value_type(field);
  // [null, T] is T that may be null; a union of several types holds any of them: jsonb.
  const AvroNode* only = nullptr;
  bool nullable = false, several = false;
  for (const AvroNode* b : field.branches) {
    if (b->type == AvroType::null) {
      nullable = true;
    } else if (only) {
      several = true;
    } else {
      only = b;
    }
  }
  if (!only) return std::nullopt;
  std::optional<SchemaColumnType> t =
      several ? SchemaColumnType{PgType::jsonb, "jsonb", false} : value_type(*only);
  if (t) t->nullable = nullable;
  return t;
}

std::string columns_from_schema(const AvroNode& row, const std::vector<ColumnSpec>& overrides,
                                const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                                std::vector<ColumnSpec>& out) {
  out.clear();
  if (row.type != AvroType::record)
    return "the records' schema is not a record (" +
           (row.name.empty() ? std::string("a plain value") : row.name) +
           "): there are no fields to map to columns; map them with 'columns:'";
  std::vector<bool> used(overrides.size(), false);
  for (const auto& [name, node] : row.fields) {
    if (std::find(skipped.begin(), skipped.end(), name) != skipped.end()) continue;
    auto o =
        std::find_if(overrides.begin(), overrides.end(), [&](const ColumnSpec& c) { return c.name == name; });
    if (o != overrides.end()) {
      used[static_cast<std::size_t>(o - overrides.begin())] = true;
      out.push_back(*o);
      if (o->source == ColumnSource::field && o->path == name) out.back().field = node;
      continue;
    }
    const std::optional<SchemaColumnType> t = column_type_for(*node);
    if (!t) continue;  // a field that is always null holds nothing
    if (name.size() > kMaxIdentifierBytes)
      return "field '" + name.substr(0, 80) +
             "...' has a name longer than PostgreSQL's 63-byte names; map it " +
             "under another name in column_overrides, or skip it";
    ColumnSpec c;
    c.name = name;
    c.quoted = quote_ident(name);
    c.path = name;
    c.type = t->type;
    c.declared_type = t->sql;
    c.field = node;
    out.push_back(std::move(c));
  }
  for (std::size_t i = 0; i < overrides.size(); ++i)
    if (!used[i]) out.push_back(overrides[i]);
  if (out.empty()) return "the schema " + row.name + " has no field to map to a column";
  for (const std::string& k : key) {
    auto it = std::find_if(out.begin(), out.end(), [&](const ColumnSpec& c) { return c.name == k; });
    if (it == out.end()) return "key column '" + k + "' is not a field of the schema " + row.name;
    it->is_key = true;
  }
  return {};
}

std::unique_ptr<PostgresSinkConfig> config_for_schema(const PostgresSinkConfig& t,
                                                      std::shared_ptr<const RecordSchema> owner,
                                                      const AvroNode& row,
                                                      const std::vector<std::string>& key_fields,
                                                      std::size_t number, std::string& error) {
  auto c = std::make_unique<PostgresSinkConfig>(t);
  c->routing = nullptr;
  if (c->key.empty()) c->key = key_fields;
  error = columns_from_schema(row, t.column_overrides, t.skipped_fields, c->key, c->columns);
  if (!error.empty()) return nullptr;
  if (c->mode != Mode::insert && c->key.empty()) {
    error =
        "mode " +
        std::string(c->mode == Mode::upsert     ? "upsert"
                    : c->mode == Mode::debezium ? "debezium"
                                                : "insert_ignore") +
        " needs a key: set key: [...], or give the records Avro keys (key_format: avro) whose fields name it";
    return nullptr;
  }
  if (!c->guard.empty() && std::none_of(c->columns.begin(), c->columns.end(),
                                        [&](const ColumnSpec& col) { return col.name == c->guard; })) {
    error = "guard column '" + c->guard + "' is not a field of the schema " + row.name;
    return nullptr;
  }
  if (c->delete_on_tombstone && c->key.empty()) c->delete_on_tombstone = false;
  c->row_schema = std::move(owner);
  c->stage_table = "etld_stage_s" + std::to_string(number);
  derive_sql(*c);
  if (c->mode == Mode::debezium) derive_debezium_sql(*c);
  return c;
}

void check_schema_upstream(const PostgresSinkConfig& c, const StageConfig& stage,
                           const PipelineConfig& pipeline) {
  if (!c.schema_columns || c.mode == Mode::debezium || stage.inputs.empty()) return;
  bool avro = false;
  const StageConfig* map = nullptr;
  for (const StageConfig* s : upstream_of(stage, pipeline)) {
    const StageType* type = find_stage_type(s->type);
    if (type && type->role == Role::source && s->type == "kafka" && s->options.has("format") &&
        s->options.get_string("format") == "avro")
      avro = true;
    if (s->type == "map" && !map) map = s;
  }
  const YAML::Mark mark = stage.options.mark(stage.options.has("tables") ? "tables" : "table");
  if (!avro)
    throw ConfigError(
        mark,
        "without 'columns', the columns come from each record's Avro schema, and no kafka source "
        "with format: avro is upstream of this sink",
        "map the columns with columns: {id: bigint, ...}, or read the topic with format: avro");
  if (map)
    throw ConfigError(mark,
                      "without 'columns', the columns come from each record's Avro schema, and map stage '" +
                          map->name +
                          "' upstream changes the records (their schema no longer describes them)",
                      "map the columns with columns: {id: bigint, ...}");
}

}  // namespace etld::pg
