#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "config/schema/diagnostics.hpp"
#include "config/terminal_progress.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/pg_routing.hpp"
#include "connectors/postgres/postgres_sink.hpp"

namespace etld::pg {

namespace {

struct CatalogColumn {
  std::string name;
  std::string type;     // format_type(): "integer", "character varying(20)"
  std::string typname;  // base type name: int4, varchar, ...
  bool not_null = false, has_default = false, identity = false, generated = false;
};

std::string get(const Result& r, int row, int col) {
  return PQgetisnull(r.get(), row, col) ? std::string() : std::string(PQgetvalue(r.get(), row, col));
}

std::vector<CatalogColumn> read_columns(PgConnection& conn, const std::string& oid) {
  Result r = conn.query(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      "CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END, a.attnotnull, a.atthasdef, "
      "a.attidentity <> '', a.attgenerated <> '' "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = "
      "t.typbasetype "
      "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
      {oid});
  std::vector<CatalogColumn> cols;
  for (int i = 0; i < PQntuples(r.get()); ++i)
    cols.push_back({get(r, i, 0), get(r, i, 1), get(r, i, 2), get(r, i, 3) == "t", get(r, i, 4) == "t",
                    get(r, i, 5) == "t", get(r, i, 6) == "t"});
  return cols;
}

// Whether a column of PostgreSQL type `typname` can take values mapped as `t`.
bool compatible(PgType t, const std::string& typname) {
  static const std::set<std::string> text_like = {"text", "varchar", "bpchar", "name", "citext"};
  if (t == PgType::bytea || typname == "bytea") return t == PgType::bytea && typname == "bytea";
  if (text_like.count(typname)) return true;
  auto in = [&](std::initializer_list<PgType> ok) { return std::find(ok.begin(), ok.end(), t) != ok.end(); };
  using P = PgType;
  if (typname == "int2") return in({P::smallint});
  if (typname == "int4") return in({P::smallint, P::integer});
  if (typname == "int8") return in({P::smallint, P::integer, P::bigint});
  if (typname == "numeric" || typname == "float4" || typname == "float8")
    return in({P::smallint, P::integer, P::bigint, P::real, P::double_precision, P::numeric});
  if (typname == "bool") return in({P::boolean});
  if (typname == "timestamptz" || typname == "timestamp" || typname == "date")
    return in({P::timestamptz, P::date});
  if (typname == "uuid") return in({P::uuid});
  if (typname == "jsonb" || typname == "json") return in({P::jsonb});
  // Other types (enums, arrays, domains of them...) parse their text form: only text fits.
  return t == P::text;
}

std::string oid_of(PgConnection& conn, const std::string& qualified) {
  Result r = conn.query("SELECT to_regclass($1)::oid", {qualified});
  return get(r, 0, 0);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

}  // namespace

void check_live(const PostgresSinkConfig& c, const StageConfig& stage) {
  if (c.routing) {
    // tables: every entry against its table; a template names its tables only when records come.
    auto* progress = current_progress();
    if (c.routing->by_topic.empty()) {
      if (progress) progress->clear();
      std::cerr << "stage '" << stage.name << "': table template " << c.routing->template_text
                << ": no table to check before records name them\n";
    }
    std::size_t k = 0;
    for (const auto& [topic, entry] : c.routing->by_topic) {
      if (progress)
        progress->detail("table " + std::to_string(++k) + " of " +
                         std::to_string(c.routing->by_topic.size()) + " (" + entry.cfg->display + ")");
      check_live(*entry.cfg, entry.stage);
    }
    return;
  }
  const Options& o = stage.options;
  std::unique_ptr<PgConnection> conn;
  try {
    conn = std::make_unique<PgConnection>(c.dsn);
  } catch (const PgError& e) {
    throw ConfigError(o.mark("dsn"), "cannot connect to PostgreSQL (" + c.dsn_redacted + "): " + e.what());
  }
  try {
    // The dead-letter table, if it exists, must have the columns the sink writes.
    if (c.on_poison == PoisonPolicy::dead_letter && c.dead_letter_table) {
      std::string dl_oid = oid_of(*conn, c.dead_letter_qualified);
      if (!dl_oid.empty()) {
        std::set<std::string> have;
        for (const auto& col : read_columns(*conn, dl_oid)) have.insert(col.name);
        std::vector<std::string> missing;
        for (const char* n : {"pipeline", "stage", "topic", "partition", "offset", "key", "value", "headers",
                              "error", "sqlstate"})
          if (!have.count(n)) missing.emplace_back(n);
        if (!missing.empty())
          throw ConfigError(
              o.mark("dead_letter"),
              "dead-letter table " + c.dead_letter_display + " lacks column(s) " + join(missing),
              "drop it to let etld create it, or name another table in dead_letter.table");
      }
    }

    std::string oid = oid_of(*conn, c.qualified);
    if (oid.empty()) {
      if (c.create_table) return;  // created from the mapping on start
      throw ConfigError(o.mark("table"), "table " + c.display + " does not exist",
                        "create it, or set create_table: true");
    }
    // Columns from the schema: the columns and the key are each schema's, checked against the
    // table by check_against_avro_schemas (avro_schema_check.hpp); only a key given here is known.
    if (c.schema_columns && c.key.empty()) return;
    std::vector<CatalogColumn> cols = read_columns(*conn, oid);
    std::map<std::string, const CatalogColumn*> by_name;
    std::vector<std::string> names;
    for (const auto& col : cols) {
      by_name[col.name] = &col;
      names.push_back(col.name);
    }
    std::set<std::string> mapped;
    for (const auto& m : c.columns) {
      mapped.insert(m.name);
      auto it = by_name.find(m.name);
      if (it == by_name.end()) {
        std::string hint = did_you_mean(m.name, names);
        if (hint.empty()) hint = "its columns: " + join(names);
        throw ConfigError(m.mark, "table " + c.display + " has no column '" + m.name + "'", hint);
      }
      const CatalogColumn& col = *it->second;
      if (col.generated)
        throw ConfigError(
            m.mark, "column '" + m.name + "' of table " + c.display + " is generated: it cannot be written",
            "remove it from 'columns'");
      // mode debezium: the soft-delete flag is compared with true, the guard ordered with <=.
      if (m.name == c.soft_delete && col.typname != "bool")
        throw ConfigError(o.mark("soft_delete"),
                          "soft_delete column '" + m.name + "' of table " + c.display + " is " + col.type +
                              ": it must be boolean",
                          "ALTER TABLE ... ALTER COLUMN " + m.name + " TYPE boolean, or name another column");
      static const std::set<std::string> ordered = {"int2",        "int4",      "int8", "numeric",
                                                    "timestamptz", "timestamp", "text", "varchar"};
      if (c.mode == Mode::debezium && m.name == c.guard && !ordered.count(col.typname))
        throw ConfigError(o.mark("guard"),
                          "guard column '" + m.name + "' of table " + c.display + " is " + col.type +
                              ": its values cannot order change events",
                          "make it bigint (source.lsn, ts_ms) or numeric");
      // A type taken as written from the stage upstream (mode merge) is PostgreSQL's to read.
      if (m.declared_type.empty() && !compatible(m.type, col.typname))
        throw ConfigError(m.type_mark,
                          "column '" + m.name + "' of table " + c.display + " is " + col.type +
                              ": values mapped as " + type_name(m.type) + " cannot be written to it",
                          "map it with a type the column takes, or change the column's type");
    }
    for (const auto& col : cols) {
      // Columns from the schema: which columns a schema fills is check_against_avro_schemas's.
      if (c.schema_columns || mapped.count(col.name) || !col.not_null || col.has_default || col.identity ||
          col.generated)
        continue;
      throw ConfigError(o.mark("columns"),
                        "column '" + col.name + "' of table " + c.display +
                            " is NOT NULL without a default, but it is not mapped: every insert would fail",
                        "map it in 'columns', or give it a DEFAULT");
    }

    if (c.mode != Mode::insert) {
      Result r = conn->query(
          "SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = "
          "i.indrelid AND "
          "a.attnum = k)::text[], i.indimmediate, i.indpred IS NULL AND i.indexprs IS NULL "
          "FROM pg_index i WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid",
          {oid});
      std::set<std::string> want(c.key.begin(), c.key.end());
      bool found = false, deferrable = false;
      for (int i = 0; i < PQntuples(r.get()) && !found; ++i) {
        if (get(r, i, 2) != "t") continue;
        // Parse the text[] literal {a,b,"c d"}.
        std::string lit = get(r, i, 0);
        std::set<std::string> have;
        std::string cur;
        bool quoted = false;
        for (std::size_t k = 1; k + 1 < lit.size(); ++k) {
          char ch = lit[k];
          if (quoted && ch == '\\' && k + 2 < lit.size()) {
            cur.push_back(lit[++k]);
          } else if (ch == '"') {
            quoted = !quoted;
          } else if (ch == ',' && !quoted) {
            have.insert(cur);
            cur.clear();
          } else {
            cur.push_back(ch);
          }
        }
        if (!lit.empty() && lit != "{}") have.insert(cur);
        if (have != want) continue;
        if (get(r, i, 1) != "t") {
          deferrable = true;
          continue;
        }
        found = true;
      }
      if (!found)
        throw ConfigError(
            o.mark("key"),
            deferrable ? "the unique constraint on (" + join(c.key) + ") of table " + c.display +
                             " is deferrable: ON CONFLICT cannot use it"
                       : "no unique index or constraint of table " + c.display +
                             " covers exactly the key columns (" + join(c.key) + "): ON CONFLICT needs one",
            "add PRIMARY KEY (" + join(c.key) + ") or a UNIQUE constraint on exactly those columns");
    }
  } catch (const PgError& e) {
    throw ConfigError(o.mark("table"), "reading the catalog for table " + c.display + " failed: " + e.what());
  }
}

}  // namespace etld::pg
