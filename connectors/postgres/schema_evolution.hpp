// The table of a (table, record schema) config (schema_columns.hpp) made ready on the writer's
// connection: created from the schema (create_table), evolved (evolve: add_columns: missing
// columns added as nullable, columns widened where PostgreSQL keeps every value), or refused with
// the reason its records are dead letters for. Decided and changed in one transaction under the
// table's DDL advisory lock, after reading the catalog inside it: of several instances meeting the
// same new schema at once, one changes the table and the others find it changed.
// Threading: blocking, on the writer's connection thread.
#pragma once

#include <string>
#include <vector>

#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"

namespace etld::pg {

struct SchemaReadiness {
  std::string refusal;               // "" = the table takes the schema's records
  std::vector<std::string> changes;  // made by this call, for the log: "added column note text"
};

// Throws PgError (the caller retries transient ones); the transaction is rolled back on a throw.
SchemaReadiness ready_table_for_schema(PgConnection& conn, const PostgresSinkConfig& t);

}  // namespace etld::pg
