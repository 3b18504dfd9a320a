// Whether a table takes the records of a (table, record schema) config (schema_columns.hpp), and
// what evolve: add_columns would change for it: one decision, a pure function of the table's
// catalog columns and the config, shared by the writer (schema_evolution.hpp: it refuses with
// every reason, or makes the changes) and by `etld validate --against-db` (avro_schema_check.hpp:
// it lists every reason and every change). The catalog read both use is here too.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "connectors/postgres/avro_column_rules.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"

namespace etld::pg {

struct TableColumn {
  ColumnType type;
  bool has_default = false;  // a DEFAULT, an identity or a generated column: fills itself
};
using TableColumns = std::map<std::string, TableColumn>;

// The columns of the table `qualified` ("schema"."table") by name; empty when there is no such
// table. Blocking; throws PgError.
TableColumns read_table_columns(PgConnection& conn, const std::string& qualified);

struct SchemaChange {
  std::string clause;   // of ALTER TABLE: ADD COLUMN IF NOT EXISTS "note" text
  std::string done;     // for the log: "added column note text"
  std::string planned;  // for validate: "add column note text"
};

struct SchemaFit {
  bool create = false;                // no table, and create_table: CREATE TABLE from the schema
  std::vector<SchemaChange> changes;  // what evolve: add_columns makes for the records to fit
  // Every reason the table cannot take the records, in the order of the config's columns then the
  // table's; when there is one, nothing is changed.
  std::vector<std::string> refusals;
};

// `table` as read_table_columns gives it (empty: no table); `t` a config made by
// config_for_schema (its columns point at the schema's fields).
SchemaFit fit_table_to_schema(const TableColumns& table, const PostgresSinkConfig& t);

}  // namespace etld::pg
