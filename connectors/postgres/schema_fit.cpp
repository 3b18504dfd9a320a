// The decision of schema_fit.hpp.
#include "connectors/postgres/schema_fit.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "connectors/postgres/schema_columns.hpp"

namespace etld::pg {

namespace {

int integer_digits(const std::string& typname) { return typname == "int2" ? 5 : typname == "int4" ? 10 : 19; }

// The type `column` may be changed to, so that it holds the field's values and every value it holds
// now unchanged; nullopt when there is none that PostgreSQL converts without loss.
std::optional<std::string> safe_widening(const ColumnType& column, const SchemaColumnType& want) {
  const std::string& from = column.typname;
  if (from == "int2" && (want.sql == "integer" || want.sql == "bigint")) return want.sql;
  if (from == "int4" && want.sql == "bigint") return want.sql;
  if (from == "float4" && want.sql == "double precision") return want.sql;
  if (want.type != PgType::numeric) return std::nullopt;
  // numeric(p,s) for a decimal(p2,s2): wide enough for both.
  int p = -1, s = -1;
  if (want.sql.rfind("numeric(", 0) == 0 && std::sscanf(want.sql.c_str(), "numeric(%d,%d)", &p, &s) != 2)
    return std::nullopt;
  if (p < 0) return std::string("numeric");  // unconstrained holds everything
  int have_int = 0, have_scale = 0;
  if (from == "numeric") {
    if (column.precision <= 0) return std::nullopt;  // unconstrained already: nothing to widen
    have_int = column.precision - std::max(column.scale, 0);
    have_scale = std::max(column.scale, 0);
  } else if (from == "int2" || from == "int4" || from == "int8") {
    have_int = integer_digits(from);
  } else {
    return std::nullopt;
  }
  const int scale = std::max(have_scale, s), integer = std::max(have_int, p - s);
  if (integer + scale > 1000) return std::string("numeric");
  return "numeric(" + std::to_string(integer + scale) + "," + std::to_string(scale) + ")";
}

std::string sql_type_of(const ColumnSpec& col) {
  return col.declared_type.empty() ? type_name(col.type) : col.declared_type;
}

}  // namespace

TableColumns read_table_columns(PgConnection& conn, const std::string& qualified) {
  Result r = conn.query(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      "CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END, a.attnotnull, "
      "CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, "
      "a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = "
      "t.typbasetype "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
      {qualified});
  TableColumns out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    TableColumn c;
    c.type.display = PQgetvalue(r.get(), i, 1);
    c.type.typname = PQgetvalue(r.get(), i, 2);
    c.type.not_null = PQgetvalue(r.get(), i, 3)[0] == 't';
    const long typmod = std::strtol(PQgetvalue(r.get(), i, 4), nullptr, 10);
    if (c.type.typname == "numeric" && typmod >= 4) {  // PostgreSQL's packing of numeric(p,s)
      c.type.precision = static_cast<int>(((typmod - 4) >> 16) & 0xffff);
      c.type.scale = static_cast<int>((typmod - 4) & 0xffff);
    }
    c.has_default = PQgetvalue(r.get(), i, 5)[0] == 't';
    out.emplace(PQgetvalue(r.get(), i, 0), std::move(c));
  }
  return out;
}

SchemaFit fit_table_to_schema(const TableColumns& table, const PostgresSinkConfig& t) {
  SchemaFit out;
  if (table.empty()) {
    if (t.create_table)
      out.create = true;
    else
      out.refusals.push_back("table " + t.display + " does not exist: create it, or set create_table: true");
    return out;
  }
  for (const ColumnSpec& col : t.columns) {
    auto it = table.find(col.name);
    if (it == table.end()) {
      const std::string column = col.name + " " + sql_type_of(col);
      if (t.evolve)
        out.changes.push_back({"ADD COLUMN IF NOT EXISTS " + col.quoted + " " + sql_type_of(col),
                               "added column " + column, "add column " + column});
      else
        out.refusals.push_back("it has no column " + col.name + " (the schema's field " + col.name + ", " +
                               sql_type_of(col) + "); add it, or set evolve: add_columns");
      continue;
    }
    if (!col.field) continue;  // mapped by column_overrides: the mapping's own type decides
    const ColumnType& have = it->second.type;
    const std::optional<SchemaColumnType> want = column_type_for(*col.field);
    if (!want) continue;
    // A nullable field for a NOT NULL column: dropping NOT NULL loses nothing (but for a key).
    if (want->nullable && have.not_null) {
      if (!t.evolve || col.is_key) {
        out.refusals.push_back("column " + col.name + " is NOT NULL and the field " + col.name + " (" +
                               avro_type_text(*col.field) + ") may be null" +
                               (col.is_key ? " (a key column cannot be nullable)"
                                           : "; evolve: add_columns would drop NOT NULL"));
        continue;
      }
      out.changes.push_back({"ALTER COLUMN " + col.quoted + " DROP NOT NULL",
                             "column " + col.name + " made nullable", "drop NOT NULL of column " + col.name});
    }
    if (want->by_connect_name) continue;  // the column takes its text; PostgreSQL judges each value
    std::optional<std::string> problem = avro_column_problem(*col.field, have, true);
    // The column rules take a double into a real column (validate accepts what a user chose),
    // but a real rounds a double's digits: with evolve, where a column can be widened, it is.
    if (!problem && t.evolve && have.typname == "float4" && want->type == PgType::double_precision)
      problem = "real rounds the digits of a double";
    if (!problem) continue;
    const std::optional<std::string> wider = safe_widening(have, *want);
    if (!t.evolve || !wider) {
      out.refusals.push_back("column " + col.name + " (" + have.display + ") cannot hold the field " +
                             col.name + " (" + avro_type_text(*col.field) + "): " + *problem +
                             (wider ? "; evolve: add_columns would widen it to " + *wider
                                    : "; no safe widening: change the column, or map the field with "
                                      "column_overrides"));
      continue;
    }
    const std::string widened = "column " + col.name + " from " + have.display + " to " + *wider;
    out.changes.push_back(
        {"ALTER COLUMN " + col.quoted + " TYPE " + *wider, "widened " + widened, "widen " + widened});
  }
  // A column the records no longer fill (a field removed from the schema) that cannot stay empty.
  for (const auto& [name, col] : table) {
    if (t.deletes_only) break;
    if (!col.type.not_null || col.has_default) continue;
    const bool written = std::any_of(t.columns.begin(), t.columns.end(),
                                     [&, &name = name](const ColumnSpec& c) { return c.name == name; });
    if (!written)
      out.refusals.push_back("column " + name +
                             " is NOT NULL without a default, and the schema has no field " + name +
                             " (removed?): every row would fail; give the column a default or drop NOT NULL");
  }
  return out;
}

}  // namespace etld::pg
