// The SQL text the postgres sink runs, derived once per stage from its parsed configuration:
// COPY targets, the staging table, upsert and delete statements, the tables' DDL, the
// dead-letter insert and the exactly-once offsets statements (PostgresSinkConfig's "Derived SQL").
#pragma once

#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Fills c's derived SQL from its table, columns, key, mode and tables' names.
void derive_sql(PostgresSinkConfig& c);

}  // namespace etld::pg
