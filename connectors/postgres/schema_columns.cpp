// Columns from the schema (schema_columns.hpp).
#include "connectors/postgres/schema_columns.hpp"

#include <algorithm>

#include "connectors/postgres/pg_debezium.hpp"
#include "connectors/postgres/pg_sql.hpp"

namespace etld::pg {

namespace {

using avro::AvroNode;
using avro::AvroType;
using avro::Logical;

// A Debezium type that Avro's own types say too little about, by the name Debezium's converters
// keep beside the type ("connect.name").
std::optional<SchemaColumnType> connect_type(const AvroNode& n) {
  const std::string& name = n.connect_name;
  auto by_name = [](PgType type, const char* sql) { return SchemaColumnType{type, sql, false, true}; };
  if (name == "io.debezium.time.ZonedTimestamp") return by_name(PgType::timestamptz, "timestamptz");
  if (name == "io.debezium.data.Json") return by_name(PgType::jsonb, "jsonb");
  if (name == "io.debezium.time.ZonedTime") return by_name(PgType::text, "time with time zone");
  // time.precision.mode isostring: ISO text that these columns parse.
  if (name == "io.debezium.time.IsoDate") return by_name(PgType::date, "date");
  if (name == "io.debezium.time.IsoTime") return by_name(PgType::text, "time");
  if (name == "io.debezium.time.IsoTimestamp") return by_name(PgType::text, "timestamp without time zone");
  // decode_logical makes a number of every digit of these: numeric of any precision and scale.
  if (name == "io.debezium.data.VariableScaleDecimal") return by_name(PgType::numeric, "numeric");
  if (name == "org.apache.kafka.connect.data.Decimal" && n.logical != Logical::decimal)
    return by_name(PgType::numeric, "numeric");
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

std::string with_overrides(std::vector<ColumnSpec> base, const std::vector<ColumnSpec>& overrides,
                           const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                           std::vector<ColumnSpec>& out) {
  out.clear();
  std::vector<bool> used(overrides.size(), false);
  for (ColumnSpec& c : base) {
    if (std::find(skipped.begin(), skipped.end(), c.name) != skipped.end()) continue;
    auto o = std::find_if(overrides.begin(), overrides.end(),
                          [&](const ColumnSpec& x) { return x.name == c.name; });
    if (o == overrides.end()) {
      out.push_back(std::move(c));
      continue;
    }
    used[static_cast<std::size_t>(o - overrides.begin())] = true;
    const avro::AvroNode* field = c.field;
    out.push_back(*o);
    if (o->source == ColumnSource::field && o->path == o->name) out.back().field = field;
  }
  for (std::size_t i = 0; i < overrides.size(); ++i)
    if (!used[i]) out.push_back(overrides[i]);
  if (out.empty()) return "no field to map to a column";
  for (const std::string& k : key) {
    auto it = std::find_if(out.begin(), out.end(), [&](const ColumnSpec& c) { return c.name == k; });
    if (it == out.end()) return "key column '" + k + "' is not a field of the records";
    it->is_key = true;
  }
  return {};
}

std::string columns_from_schema(const AvroNode& row, const std::vector<ColumnSpec>& overrides,
                                const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                                std::vector<ColumnSpec>& out) {
  out.clear();
  if (row.type != AvroType::record)
    return "the records' schema is not a record (" +
           (row.name.empty() ? std::string("a plain value") : row.name) +
           "): there are no fields to map to columns; map them with 'columns:'";
  std::vector<ColumnSpec> base;
  for (const auto& [name, node] : row.fields) {
    const std::optional<SchemaColumnType> t = column_type_for(*node);
    if (!t) continue;  // a field that is always null holds nothing
    const bool renamed = std::any_of(overrides.begin(), overrides.end(),
                                     [&, &name = name](const ColumnSpec& c) { return c.name == name; });
    if (name.size() > kMaxIdentifierBytes && !renamed &&
        std::find(skipped.begin(), skipped.end(), name) == skipped.end())
      return "field '" + name.substr(0, 80) +
             "...' has a name longer than PostgreSQL's 63-byte names; skip it " + "in column_overrides";
    ColumnSpec c;
    c.name = name;
    c.quoted = quote_ident(name);
    c.path = name;
    c.type = t->type;
    c.declared_type = t->sql;
    c.field = node;
    base.push_back(std::move(c));
  }
  std::string error = with_overrides(std::move(base), overrides, skipped, key, out);
  if (out.empty()) return "the schema " + row.name + " has no field to map to a column";
  if (!error.empty()) return error + " (schema " + row.name + ")";
  return {};
}

std::unique_ptr<PostgresSinkConfig> config_for_columns(const PostgresSinkConfig& t,
                                                       std::vector<ColumnSpec> columns,
                                                       std::vector<std::string> key,
                                                       std::shared_ptr<const RecordSchema> owner,
                                                       std::size_t number, std::string& error) {
  auto c = std::make_unique<PostgresSinkConfig>(t);
  c->routing = nullptr;
  c->key = std::move(key);
  c->columns = std::move(columns);
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
    error = "guard column '" + c->guard + "' is not a field of the records";
    return nullptr;
  }
  if (c->delete_on_tombstone && c->key.empty()) c->delete_on_tombstone = false;
  c->row_schema = owner ? std::move(owner) : std::make_shared<const RecordSchema>();
  c->stage_table = "etld_stage_s" + std::to_string(number);
  derive_sql(*c);
  if (c->mode == Mode::debezium) derive_debezium_sql(*c);
  return c;
}

std::unique_ptr<PostgresSinkConfig> config_for_schema(const PostgresSinkConfig& t,
                                                      std::shared_ptr<const RecordSchema> owner,
                                                      const AvroNode& row,
                                                      const std::vector<std::string>& key_fields,
                                                      std::size_t number, std::string& error) {
  const std::vector<std::string>& key = t.key.empty() ? key_fields : t.key;
  std::vector<ColumnSpec> columns;
  error = columns_from_schema(row, t.column_overrides, t.skipped_fields, key, columns);
  if (!error.empty()) return nullptr;
  return config_for_columns(t, std::move(columns), key, std::move(owner), number, error);
}

}  // namespace etld::pg
