// Columns from the schema (docs/connectors/postgres.md#columns-from-the-schema): a postgres sink
// without `columns:` maps each top-level field of a record's schema (the Avro schema the kafka
// source decoded it with, or for mode debezium the schema of the change event's row image) to a
// column of the same name and of the type the field's values take, with the stage's
// `column_overrides` on top. The table for one schema is a PostgresSinkConfig of its own, whose
// COPY names the schema's columns: records of an older schema still write only their own fields.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// The column a field of this type becomes: its PgType (how the sink converts the values) and its
// SQL type (create_table, evolve): bigint, numeric(20,4), "timestamp without time zone", jsonb.
// nullopt for a field that holds nothing (type null).
struct SchemaColumnType {
  PgType type;
  std::string sql;
  bool nullable;  // a union with null
  // Typed by Debezium's name for it ("connect.name"), not by the Avro type, which says less (a
  // VariableScaleDecimal's bytes): the Avro rules of avro_column_rules.hpp do not apply to it.
  bool by_connect_name = false;
};
std::optional<SchemaColumnType> column_type_for(const avro::AvroNode& field);

// `base` (the columns of a schema's or of JSON records' fields) with `overrides` (ColumnSpecs as
// parsed from column_overrides) applied: one named as a column replaces it (keeping its `field`),
// the others are added after; `skipped` columns are left out; `key` columns marked. Returns "" or
// why no table can be made of them ("key column 'id' is not a field of the records").
std::string with_overrides(std::vector<ColumnSpec> base, const std::vector<ColumnSpec>& overrides,
                           const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                           std::vector<ColumnSpec>& out);

// The columns of the record node `row`, one per field (its `field` the field's node), with the
// overrides applied as with_overrides does. Returns "" or why no table can be made of it.
std::string columns_from_schema(const avro::AvroNode& row, const std::vector<ColumnSpec>& overrides,
                                const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                                std::vector<ColumnSpec>& out);

// The table `t`'s config for rows of these columns: its key, staging table etld_stage_s<number>
// and SQL; `owner` keeps what the columns point into alive (null: nothing to keep). nullptr with
// `error` when no table can be made of it (an upsert without a key).
std::unique_ptr<PostgresSinkConfig> config_for_columns(const PostgresSinkConfig& t,
                                                       std::vector<ColumnSpec> columns,
                                                       std::vector<std::string> key,
                                                       std::shared_ptr<const RecordSchema> owner,
                                                       std::size_t number, std::string& error);

// The same for records of the row schema `row` (owned by `owner`); the key is t.key, else
// `key_fields` (an Avro key's fields).
std::unique_ptr<PostgresSinkConfig> config_for_schema(const PostgresSinkConfig& t,
                                                      std::shared_ptr<const RecordSchema> owner,
                                                      const avro::AvroNode& row,
                                                      const std::vector<std::string>& key_fields,
                                                      std::size_t number, std::string& error);

}  // namespace etld::pg
