#include "connectors/postgres/pg_merge.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/schema/diagnostics.hpp"
#include "stages/engine/registry.hpp"

namespace etld::pg {

namespace {

// The factory of the stage feeding the sink: the loader configures stages in topological order,
// so it is made already; a configuration built by hand has none, and configuring is free of side
// effects, so it is made here then.
std::shared_ptr<StageFactory> upstream_factory(const StageConfig& up, const PipelineConfig& pipeline,
                                               const YAML::Mark& at) {
  if (up.factory) return up.factory;
  const StageType* type = find_stage_type(up.type);
  if (!type || !type->configure) return nullptr;
  try {
    return type->configure(up, pipeline);
  } catch (const std::exception& e) {
    throw ConfigError(at, "mode: merge derives its columns from stage '" + up.name +
                              "', whose own configuration is invalid: " + e.what());
  }
}

// Types etld converts itself by their canonical name; others ("text[]", "varchar(20)") are
// declared as written and their values sent as text for PostgreSQL to read.
void set_type(ColumnSpec& col, const std::string& sql_type) {
  std::string lower = sql_type;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (auto t = parse_type(lower)) {
    col.type = *t;
    return;
  }
  col.type = lower.rfind("numeric(", 0) == 0 ? PgType::numeric : PgType::text;
  col.declared_type = sql_type;
}

// merge_sql with {old:NAME} -> t."NAME" (the stored row) and {new:NAME} -> EXCLUDED."NAME" (the
// incoming one). Throws ConfigError at `at` for a placeholder that names no column.
std::string render_merge(const std::string& sql, const std::set<std::string>& names,
                         const std::string& column, const std::string& stage, const YAML::Mark& at) {
  std::string out;
  std::size_t i = 0;
  while (i < sql.size()) {
    const bool old_ref = sql.compare(i, 5, "{old:") == 0, new_ref = sql.compare(i, 5, "{new:") == 0;
    if (!old_ref && !new_ref) {
      out += sql[i++];
      continue;
    }
    const std::size_t close = sql.find('}', i);
    const std::string name = close == std::string::npos ? "" : sql.substr(i + 5, close - i - 5);
    if (!names.count(name))
      throw ConfigError(at,
                        fmt::format("mode: merge: stage '{}' declares for column '{}' the merge rule \"{}\", "
                                    "which refers to '{}', not one of its columns",
                                    stage, column, sql, name));
    out += (old_ref ? "t." : "EXCLUDED.") + quote_ident(name);
    i = close + 1;
  }
  return out;
}

// `columns: {name: type}`: another type for derived columns (a group value stored as bigint, say),
// nothing else: where values come from and how they fold stay the stage's.
void override_types(PostgresSinkConfig& c, const Options& o, const std::string& stage) {
  if (!o.has("columns")) return;
  const YAML::Node cols = o.node("columns");
  if (!cols.IsMap())
    throw ConfigError(o.mark("columns"),
                      "with mode: merge, option 'columns' can only give derived columns a type",
                      "write columns: {page: text}, or remove it");
  std::vector<std::string> names;
  for (const auto& col : c.columns) names.push_back(col.name);
  for (auto it = cols.begin(); it != cols.end(); ++it) {
    const std::string name = it->first.Scalar();
    auto col =
        std::find_if(c.columns.begin(), c.columns.end(), [&](const ColumnSpec& s) { return s.name == name; });
    if (col == c.columns.end()) {
      std::string hint = did_you_mean(name, names);
      throw ConfigError(it->first.Mark(),
                        "column '" + name + "' is not one of stage '" + stage + "''s output",
                        hint.empty() ? "its columns: " + fmt::format("{}", fmt::join(names, ", ")) : hint);
    }
    if (!it->second.IsScalar() || it->second.Scalar().empty())
      throw ConfigError(
          it->second.IsDefined() ? it->second.Mark() : it->first.Mark(),
          "with mode: merge, column '" + name + "' takes only a type",
          "write " + name + ": bigint; where its values come from and how they fold is the stage's");
    const std::string text = it->second.Scalar();
    const auto type = parse_type(text);
    if (!type) {
      std::string hint = did_you_mean(text, type_names());
      throw ConfigError(it->second.Mark(), "column '" + name + "': unknown type '" + text + "'",
                        hint.empty() ? "types: " + fmt::format("{}", fmt::join(type_names(), ", ")) : hint);
    }
    col->type = *type;
    col->declared_type.clear();
    col->type_mark = it->second.Mark();
  }
}

}  // namespace

void configure_merge(PostgresSinkConfig& c, const StageConfig& stage, const PipelineConfig& pipeline) {
  const Options& o = stage.options;
  const YAML::Mark at = o.mark("mode");
  if (o.has("key"))
    throw ConfigError(o.mark("key"), "option 'key' does not apply to mode: merge",
                      "the key columns and how rows fold come from the stage upstream; remove 'key'");
  if (o.has("delete_on_tombstone") && o.get_bool("delete_on_tombstone"))
    throw ConfigError(o.mark("delete_on_tombstone"), "delete_on_tombstone does not apply to mode: merge",
                      "partial results fold into their rows and are never tombstones; remove it");
  if (stage.inputs.size() != 1)
    throw ConfigError(at,
                      "mode: merge folds in the output of exactly one stage; stage '" + stage.name +
                          "' has " + std::to_string(stage.inputs.size()) + " inputs",
                      "give each stage whose output is merged a sink of its own");
  const StageConfig* up = pipeline.find(stage.inputs.front());
  if (!up) throw ConfigError(at, "mode: merge: input '" + stage.inputs.front() + "' names no stage");
  const std::shared_ptr<StageFactory> factory = upstream_factory(*up, pipeline, at);
  c.merge_columns = factory ? factory->output_columns() : std::vector<OutputColumn>{};
  if (c.merge_columns.empty())
    throw ConfigError(at,
                      "mode: merge needs a stage upstream that declares its output, such as window with "
                      "emit: updates; stage '" +
                          up->name + "' (type " + up->type + ") does not",
                      "feed the sink from such a stage, or use mode: upsert with columns and key");

  std::set<std::string> names;
  for (const auto& out : c.merge_columns)
    if (out.name.empty() || !names.insert(out.name).second)
      throw ConfigError(at, "mode: merge: stage '" + up->name + "' declares the column '" + out.name + "' " +
                                (out.name.empty() ? "without a name" : "twice"));
  for (auto& out : c.merge_columns) {
    ColumnSpec col;
    col.name = out.name;
    col.quoted = quote_ident(out.name);
    col.path = out.name;
    col.is_key = out.key;
    col.mark = at;
    col.type_mark = at;
    set_type(col, out.sql_type);
    if (out.key) c.key.push_back(out.name);
    // A column without a rule takes the incoming value, as an upsert would.
    if (!out.key)
      out.merge_sql = render_merge(out.merge_sql.empty() ? "{new:" + out.name + "}" : out.merge_sql, names,
                                   out.name, up->name, at);
    c.columns.push_back(std::move(col));
  }
  override_types(c, o, up->name);
  if (c.key.empty())
    throw ConfigError(at,
                      "mode: merge needs key columns to fold rows on, but stage '" + up->name +
                          "' declares none (a global window without group_by has one row only)",
                      "add group_by to the stage, or use a window with bounds (tumbling, sliding)");
}

void derive_merge_sql(PostgresSinkConfig& c) {
  std::vector<std::string> cols, keys, defs, sets;
  for (const auto& col : c.columns) {
    cols.push_back(col.quoted);
    if (col.is_key) keys.push_back(col.quoted);
    defs.push_back(col.quoted + " " + (col.declared_type.empty() ? type_name(col.type) : col.declared_type));
  }
  for (const auto& out : c.merge_columns)
    if (!out.key) sets.push_back(quote_ident(out.name) + " = " + out.merge_sql);
  const std::string col_list = fmt::format("{}", fmt::join(cols, ", "));
  const std::string key_list = fmt::format("{}", fmt::join(keys, ", "));
  // Rows of one key are numbered in arrival order; round n folds in every key's n-th row. A null
  // group value is a value like any other: PARTITION BY and the NULLS NOT DISTINCT constraint
  // both put nulls together.
  c.merge_rounds_sql =
      "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM pg_temp.etld_stage WHERE NOT "
      "_etld_del GROUP BY " +
      key_list + ") g";
  c.merge_round_sql =
      "INSERT INTO " + c.qualified + " AS t (" + col_list + ") SELECT " + col_list +
      " FROM (SELECT *, row_number() OVER (PARTITION BY " + key_list +
      " ORDER BY _etld_seq) AS _etld_round FROM pg_temp.etld_stage WHERE NOT _etld_del) x "
      "WHERE _etld_round = $1 ON CONFLICT (" +
      key_list + ") DO " +
      (sets.empty() ? std::string("NOTHING") : "UPDATE SET " + fmt::format("{}", fmt::join(sets, ", ")));
  if (c.create_table)
    c.create_table_sql = "CREATE TABLE IF NOT EXISTS " + c.qualified + " (" +
                         fmt::format("{}", fmt::join(defs, ", ")) + ", UNIQUE NULLS NOT DISTINCT (" +
                         key_list + "))";
}

}  // namespace etld::pg
