// Making a table ready for a record schema (schema_evolution.hpp).
#include "connectors/postgres/schema_evolution.hpp"

#include "connectors/postgres/schema_fit.hpp"

namespace etld::pg {

SchemaReadiness ready_table_for_schema(PgConnection& conn, const PostgresSinkConfig& t) {
  SchemaReadiness out;
  conn.exec("BEGIN");
  try {
    conn.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", {t.lock_key});
    const SchemaFit fit = fit_table_to_schema(read_table_columns(conn, t.qualified), t);
    if (!fit.refusals.empty()) {
      conn.exec("ROLLBACK");
      // Every reason: with only the first, the user would fix it, restart, and meet the next.
      for (const std::string& why : fit.refusals)
        out.refusal += (out.refusal.empty() ? "" : "; also, ") + why;
      return out;
    }
    if (fit.create) {
      conn.exec(t.create_table_sql);
      out.changes.push_back("created table " + t.display + " from the schema");
      conn.exec("COMMIT");
      return out;
    }
    if (!fit.changes.empty()) {
      std::string sql = "ALTER TABLE " + t.qualified + " ";
      for (std::size_t i = 0; i < fit.changes.size(); ++i) {
        sql += (i ? ", " : "") + fit.changes[i].clause;
        out.changes.push_back(fit.changes[i].done);
      }
      conn.exec(sql);
    }
    conn.exec("COMMIT");
    return out;
  } catch (...) {
    PGresult* r = PQexec(conn.raw(), "ROLLBACK");
    if (r) PQclear(r);
    throw;
  }
}

}  // namespace etld::pg
