// The postgres sink's column mapping (pg_columns.hpp).
#include "connectors/postgres/pg_columns.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/copy_encoder.hpp"

namespace etld::pg {

namespace {

bool parse_bool_text(std::string t, bool& out) {
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "yes" || t == "on") return out = true, true;
  if (t == "false" || t == "no" || t == "off") return out = false, true;
  return false;
}

struct Metadata {
  const char* name;
  ColumnSource source;
  std::vector<PgType> types;
};
const std::vector<Metadata>& metadata_sources() {
  static const std::vector<Metadata> m = {
      {"_topic", ColumnSource::topic, {PgType::text}},
      {"_partition",
       ColumnSource::partition,
       {PgType::integer, PgType::bigint, PgType::numeric, PgType::text}},
      {"_offset", ColumnSource::offset, {PgType::bigint, PgType::numeric, PgType::text}},
      {"_timestamp",
       ColumnSource::timestamp,
       {PgType::timestamptz, PgType::date, PgType::bigint, PgType::numeric, PgType::text}},
      {"_key",
       ColumnSource::key,
       {PgType::text, PgType::bytea, PgType::jsonb, PgType::uuid, PgType::smallint, PgType::integer,
        PgType::bigint, PgType::numeric}},
      {"_headers", ColumnSource::headers, {PgType::jsonb, PgType::text}},
  };
  return m;
}

// A Debezium envelope field as a `from` ("_source.lsn" -> "source.lsn", "_op" -> "op"), or "" when
// `from` is none: the envelope's fields besides the row images before and after.
std::string envelope_path(const std::string& from) {
  static const std::vector<std::string> scalars = {"_op", "_ts_ms", "_ts_us", "_ts_ns"};
  if (std::find(scalars.begin(), scalars.end(), from) != scalars.end()) return from.substr(1);
  for (const std::string prefix : {"_source", "_transaction"})
    if (from == prefix || from.rfind(prefix + ".", 0) == 0) return from.substr(1);
  return {};
}

ColumnSpec parse_column(const YAML::Node& key_node, const YAML::Node& value, bool debezium) {
  ColumnSpec col;
  col.name = key_node.Scalar();
  col.mark = key_node.Mark();
  if (col.name.empty()) throw ConfigError(key_node.Mark(), "empty column name in 'columns'");
  col.quoted = quote_ident(col.name);
  col.path = col.name;
  const std::string where = "column '" + col.name + "'";
  // yaml-cpp: a missing key yields a "zombie" node that can be copied but not assigned.
  if (!value.IsScalar() && !value.IsMap())
    throw ConfigError(value.IsDefined() && !value.IsNull() ? value.Mark() : key_node.Mark(),
                      where + " needs a type", "write `" + col.name + ": {from: field, type: text}`");
  if (value.IsMap()) check_keys(value, {"from", "type", "required", "default"}, where);
  auto field = [&](const char* k) {
    return value.IsMap() ? value[k] : YAML::Node(YAML::NodeType::Undefined);
  };
  const YAML::Node type_node = value.IsScalar() ? value : field("type");  // scalar: shorthand `id: bigint`
  const YAML::Node from_node = field("from");
  const YAML::Node required_node = field("required");
  const YAML::Node default_node = field("default");
  if (!type_node.IsDefined() || type_node.IsNull())
    throw ConfigError(key_node.Mark(), where + " needs a type", "types: " + join(type_names(), ", "));
  std::string type_text = scalar_string(type_node);
  auto type = parse_type(type_text);
  if (!type) {
    std::string hint = did_you_mean(type_text, type_names());
    if (hint.empty()) hint = "types: " + join(type_names(), ", ");
    throw ConfigError(type_node.Mark(), where + ": unknown type '" + type_text + "'", hint);
  }
  col.type = *type;
  col.type_mark = type_node.Mark();

  if (from_node.IsDefined() && !from_node.IsNull()) {
    std::string from = scalar_string(from_node);
    if (from.empty())
      throw ConfigError(from_node.Mark(), where + ": 'from' is empty", "write a field path, or \".\"");
    if (from == ".") {
      col.source = ColumnSource::whole;
      col.path = ".";
    } else if (!from.empty() && from.front() == '_') {
      std::vector<std::string> names;
      const Metadata* found = nullptr;
      for (const auto& m : metadata_sources()) {
        names.emplace_back(m.name);
        if (from == m.name) found = &m;
      }
      if (found) {
        col.source = found->source;
        col.path = from;
        if (std::find(found->types.begin(), found->types.end(), col.type) == found->types.end()) {
          std::vector<std::string> ok;
          for (auto t : found->types) ok.emplace_back(type_name(t));
          throw ConfigError(col.type_mark,
                            where + ": " + from + " cannot be written as " + type_name(col.type),
                            "use one of: " + join(ok, ", "));
        }
      } else if (std::string env = envelope_path(from); !env.empty()) {
        if (!debezium)
          throw ConfigError(from_node.Mark(),
                            where + ": '" + from + "' reads the envelope of a Debezium change event",
                            "only mode: debezium has one");
        if (env.back() == '.' || env.find("..") != std::string::npos)
          throw ConfigError(from_node.Mark(), where + ": invalid envelope path '" + from + "'",
                            "write e.g. _source.lsn");
        col.source = ColumnSource::envelope;
        col.path = env;
      } else if (std::string hint = did_you_mean(from, names); !hint.empty()) {
        throw ConfigError(from_node.Mark(), where + ": unknown metadata source '" + from + "'", hint);
      } else {
        col.path = from;  // a field whose name starts with '_'
      }
    } else {
      if (from.front() == '.' || from.back() == '.' || from.find("..") != std::string::npos)
        throw ConfigError(from_node.Mark(), where + ": invalid field path '" + from + "'",
                          "write a dotted path like customer.id, or \".\" for the whole record");
      col.path = from;
    }
  }

  if (required_node.IsDefined() && !required_node.IsNull()) {
    std::string t = scalar_string(required_node);
    if (!parse_bool_text(t, col.required))
      throw ConfigError(required_node.Mark(), where + ": 'required' must be true or false; got '" + t + "'");
  }
  if (default_node.IsDefined() && !default_node.IsNull()) {
    if (!default_node.IsScalar())
      throw ConfigError(default_node.Mark(), where + ": 'default' must be a scalar",
                        "for jsonb write the JSON as a string");
    std::string text = scalar_string(default_node);
    Value v(text);
    if (col.type == PgType::jsonb) {
      try {
        v = parse_json(text);
      } catch (const std::exception&) {
      }
    }
    std::string out, error;
    if (!encode_value(v, col, out, error)) throw ConfigError(default_node.Mark(), "default of " + error);
    col.default_copy = std::move(out);
  }
  return col;
}

}  // namespace

// The mapping and the conflict target of every mode but merge.
void parse_columns_and_key(PostgresSinkConfig& c, const Options& o, const std::string& mode) {
  // Without `columns:` they come from each record's schema (schema_columns.hpp); column_overrides
  // are parsed as columns here (mode debezium's soft_delete and guard look for theirs among them)
  // and set aside by parse_config.
  c.schema_columns = !o.has("columns");
  if (!c.schema_columns && o.has("column_overrides"))
    throw ConfigError(o.mark("column_overrides"),
                      "option 'column_overrides' applies when 'columns' is not given",
                      "with columns: every column is mapped there; remove column_overrides");
  if (!c.schema_columns && o.has("evolve") && o.get_string("evolve") != "none")
    throw ConfigError(
        o.mark("evolve"), "option 'evolve' applies to columns from the schema (no 'columns:')",
        "add the column to 'columns' and to the table yourself, or drop 'columns' to map the schema");
  c.evolve = o.has("evolve") && o.get_string("evolve") == "add_columns";
  YAML::Node cols = c.schema_columns ? o.node("column_overrides") : o.node("columns");
  if (c.schema_columns && (!cols.IsDefined() || cols.IsNull())) cols = YAML::Node(YAML::NodeType::Map);
  if (c.schema_columns && cols.IsMap()) {
    // `field: skip` leaves a field of the schema out.
    YAML::Node kept(YAML::NodeType::Map);
    for (auto it = cols.begin(); it != cols.end(); ++it) {
      if (it->second.IsScalar() && it->second.Scalar() == "skip")
        c.skipped_fields.push_back(it->first.Scalar());
      else
        kept[it->first] = it->second;
    }
    cols = kept;
  }
  if (!c.schema_columns && (!(cols.IsMap() || cols.IsSequence()) || cols.size() == 0))
    throw ConfigError(
        o.mark("columns"),
        "option 'columns' must be a non-empty map of column -> {from, type}, or a list of {name, from, type}",
        "write columns: {id: {from: id, type: bigint}}");
  std::set<std::string> seen;
  auto add = [&](const YAML::Node& name, const YAML::Node& value) {
    ColumnSpec col = parse_column(name, value, c.mode == Mode::debezium);
    if (!seen.insert(col.name).second)
      throw ConfigError(name.Mark(), "column '" + col.name + "' is mapped twice", "Please delete one.");
    c.columns.push_back(std::move(col));
  };
  if (cols.IsMap())
    for (auto it = cols.begin(); it != cols.end(); ++it) add(it->first, it->second);
  // The list form, as Kafka Connect users write schemas: - {name: id, from: id, type: bigint}.
  for (std::size_t i = 0; cols.IsSequence() && i < cols.size(); ++i) {
    const YAML::Node item = cols[i];
    if (!item.IsMap() || !item["name"].IsDefined() || !item["name"].IsScalar())
      throw ConfigError(item.Mark(), "an entry of 'columns' as a list needs 'name'",
                        "write - {name: id, type: bigint}");
    YAML::Node rest(YAML::NodeType::Map);
    for (auto it = item.begin(); it != item.end(); ++it)
      if (it->first.Scalar() != "name") rest[it->first] = it->second;
    add(item["name"], rest);
  }

  // key
  if (o.has("key")) {
    c.key = o.get_string_list("key");
    std::set<std::string> kseen;
    std::vector<std::string> names;
    for (const auto& col : c.columns) names.push_back(col.name);
    for (const auto& k : c.key) {
      if (!kseen.insert(k).second)
        throw ConfigError(o.mark("key"), "key column '" + k + "' is listed twice", "Please delete one.");
      auto it = std::find_if(c.columns.begin(), c.columns.end(),
                             [&](const ColumnSpec& col) { return col.name == k; });
      if (it == c.columns.end() && c.schema_columns) continue;  // checked against each schema
      if (it == c.columns.end()) {
        std::string hint = did_you_mean(k, names);
        if (hint.empty()) hint = "every key column must be mapped in 'columns'";
        throw ConfigError(o.mark("key"), "key column '" + k + "' is not in 'columns'", hint);
      }
      it->is_key = true;
    }
  }
  if (c.mode != Mode::insert && c.key.empty() && !c.schema_columns)  // schema columns: Avro keys may name it
    throw ConfigError(o.mark(o.has("key") ? "key" : "mode"),
                      "mode '" + mode + "' needs 'key' (the conflict target)", "add key: [id]");
}

}  // namespace etld::pg
