// The postgres sink's mode debezium: options and SQL (pg_debezium.hpp).
#include "connectors/postgres/pg_debezium.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "connectors/postgres/pg_columns.hpp"

namespace etld::pg {

namespace {

// Whether `field` names a field of the envelope that orders change events.
bool is_guard_field(const std::string& field) {
  if (field == "ts_ms" || field == "ts_us" || field == "ts_ns") return true;
  const std::string rest = field.rfind("source.", 0) == 0 ? field.substr(7) : "";
  return !rest.empty() && rest.back() != '.' && rest.find("..") == std::string::npos;
}

ColumnSpec* find_column(PostgresSinkConfig& c, const std::string& name) {
  auto it = std::find_if(c.columns.begin(), c.columns.end(),
                         [&](const ColumnSpec& col) { return col.name == name; });
  return it == c.columns.end() ? nullptr : &*it;
}

std::vector<std::string> column_names(const PostgresSinkConfig& c) {
  std::vector<std::string> names;
  for (const auto& col : c.columns) names.push_back(col.name);
  return names;
}

void configure_soft_delete(PostgresSinkConfig& c, const Options& o) {
  const std::string name = o.get_string("soft_delete");
  ColumnSpec* col = find_column(c, name);
  if (!col) {
    std::string hint = did_you_mean(name, column_names(c));
    throw ConfigError(o.mark("soft_delete"), "soft_delete column '" + name + "' is not in 'columns'",
                      hint.empty() ? "map it as a boolean: " + name + ": boolean" : hint);
  }
  if (col->type != PgType::boolean)
    throw ConfigError(
        col->type_mark,
        "soft_delete column '" + name + "' is mapped as " + type_name(col->type) + ": it must be boolean",
        "write " + name + ": boolean");
  if (col->is_key)
    throw ConfigError(o.mark("soft_delete"), "soft_delete column '" + name + "' is a key column");
  if (col->source != ColumnSource::field || col->path != col->name)
    throw ConfigError(col->mark,
                      "soft_delete column '" + name +
                          "' takes etld's value (true on delete, false on upsert): "
                          "it reads no field",
                      "map it without 'from': " + name + ": boolean");
  col->source = ColumnSource::soft_delete;
  c.soft_delete = name;
}

void configure_guard(PostgresSinkConfig& c, const Options& o) {
  const std::string field = o.get_string("guard");
  if (!is_guard_field(field))
    throw ConfigError(o.mark("guard"), "guard '" + field + "' is not a field of the Debezium envelope",
                      "with mode debezium write guard: source.lsn, ts_ms or source.ts_ms");
  ColumnSpec* col = nullptr;
  for (auto& candidate : c.columns)
    if (candidate.source == ColumnSource::envelope && candidate.path == field) col = &candidate;
  if (!col)
    throw ConfigError(o.mark("guard"), "guard " + field + " needs a column that stores it",
                      "map one, e.g. _guard: {from: _" + field + ", type: bigint}");
  static const std::vector<PgType> ordered = {PgType::smallint, PgType::integer,     PgType::bigint,
                                              PgType::numeric,  PgType::timestamptz, PgType::text};
  if (std::find(ordered.begin(), ordered.end(), col->type) == ordered.end())
    throw ConfigError(col->type_mark,
                      "guard column '" + col->name + "' is mapped as " + type_name(col->type) +
                          ": its values cannot order events",
                      "map it as bigint (or numeric, timestamptz, text)");
  if (col->is_key) throw ConfigError(o.mark("guard"), "guard column '" + col->name + "' is a key column");
  c.guard = col->name;
  c.guard_field = field;
}

}  // namespace

void configure_debezium(PostgresSinkConfig& c, const Options& o) {
  if (o.has("delete_on_tombstone") && o.get_bool("delete_on_tombstone"))
    throw ConfigError(
        o.mark("delete_on_tombstone"),
        "mode debezium ignores tombstones: the change event with op d before one deletes the row",
        "remove delete_on_tombstone");
  c.delete_on_tombstone = false;
  c.truncate = o.get_bool("truncate");
  if (o.has("soft_delete")) configure_soft_delete(c, o);
  if (o.has("guard")) configure_guard(c, o);
}

void derive_debezium_sql(PostgresSinkConfig& c) {
  std::vector<std::string> cols, keys, updates, envelope_sets;
  for (const auto& col : c.columns) {
    cols.push_back(col.quoted);
    if (!col.is_key) updates.push_back(col.quoted + " = EXCLUDED." + col.quoted);
    if (col.source == ColumnSource::envelope) envelope_sets.push_back(col.quoted + " = d." + col.quoted);
  }
  for (const auto& k : c.key) keys.push_back(quote_ident(k));
  const std::string col_list = join(cols, ", "), key_list = join(keys, ", ");
  auto match = [&](const std::string& a, const std::string& b) {
    std::vector<std::string> m;
    for (const auto& k : keys) m.push_back(a + "." + k + " = " + b + "." + k);
    return join(m, " AND ");
  };
  const std::string g = c.guard.empty() ? "" : quote_ident(c.guard);
  // The order of a key's events: by guard, then arrival; the latest decides.
  auto ord = [&](const std::string& a) {
    return g.empty() ? a + "._etld_seq" : "(" + a + "." + g + ", " + a + "._etld_seq)";
  };
  const std::string latest =
      " ORDER BY " + key_list + ", " + (g.empty() ? "" : g + " DESC, ") + "_etld_seq DESC";
  // An event older than the stored row (a replay) neither replaces nor deletes it; an equal one
  // is the same event again.
  auto guarded = [&](const std::string& event) {
    return g.empty() ? std::string() : " AND (t." + g + " IS NULL OR t." + g + " <= " + event + "." + g + ")";
  };
  auto later = [&](bool deletes) {
    return " AND NOT EXISTS (SELECT 1 FROM pg_temp." + c.stage_table + " o WHERE " +
           std::string(deletes ? "" : "NOT ") + "o._etld_del AND " + match("o", "s") + " AND " + ord("o") +
           " > " + ord("s") + ")";
  };
  const bool soft = !c.soft_delete.empty();
  auto upsert = [&](bool after_delete) {
    std::string sql = "INSERT INTO " + c.qualified + " AS t (" + col_list + ") SELECT " + col_list +
                      " FROM (SELECT DISTINCT ON (" + key_list + ") * FROM pg_temp." + c.stage_table +
                      " s WHERE NOT s._etld_del" + (after_delete ? later(true) : "") + latest +
                      ") x ON CONFLICT (" + key_list + ") DO ";
    if (updates.empty()) return sql + "NOTHING";
    sql += "UPDATE SET " + join(updates, ", ");
    if (!g.empty()) sql += " WHERE t." + g + " IS NULL OR t." + g + " <= EXCLUDED." + g;
    return sql;
  };
  c.upsert_sql = upsert(false);
  // A soft delete keeps the row: every key's latest upsert applies, then the deletes after it.
  c.upsert_after_delete_sql = soft ? c.upsert_sql : upsert(true);
  const std::string latest_delete =
      "(SELECT DISTINCT ON (" + key_list + ") * FROM pg_temp." + c.stage_table + " s WHERE s._etld_del";
  if (soft) {
    envelope_sets.insert(envelope_sets.begin(), quote_ident(c.soft_delete) + " = true");
    c.delete_sql.clear();
    c.soft_delete_sql = "UPDATE " + c.qualified + " AS t SET " + join(envelope_sets, ", ") + " FROM " +
                        latest_delete + later(false) + latest + ") d WHERE " + match("t", "d") + guarded("d");
  } else {
    c.delete_sql = "DELETE FROM " + c.qualified + " t USING " + latest_delete + latest + ") d WHERE " +
                   match("t", "d") + guarded("d");
  }
  if (c.truncate) c.truncate_sql = "TRUNCATE TABLE " + c.qualified;
}

}  // namespace etld::pg
