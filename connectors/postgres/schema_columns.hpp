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

#include "config/schema/pipeline.hpp"
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
};
std::optional<SchemaColumnType> column_type_for(const avro::AvroNode& field);

// The columns of the record node `row` with `overrides` (ColumnSpecs as parsed from
// column_overrides; an entry without a type and named `skip`... see skipped) applied: an override
// named as a field replaces its column, others are added after the fields. `skipped` names fields
// left out. Each column's `field` is its schema node (null for added ones). `key` marks key columns;
// returns "" or why no table can be made of it ("key column 'id' is not a field of the schema").
std::string columns_from_schema(const avro::AvroNode& row, const std::vector<ColumnSpec>& overrides,
                                const std::vector<std::string>& skipped, const std::vector<std::string>& key,
                                std::vector<ColumnSpec>& out);

// The table `t`'s config for records of the row schema `row` (owned by `owner`): its columns,
// key (t.key, else `key_fields`), staging table etld_stage_<number> and SQL. nullptr with `error`
// when no table can be made of it.
std::unique_ptr<PostgresSinkConfig> config_for_schema(const PostgresSinkConfig& t,
                                                      std::shared_ptr<const RecordSchema> owner,
                                                      const avro::AvroNode& row,
                                                      const std::vector<std::string>& key_fields,
                                                      std::size_t number, std::string& error);

// Throws ConfigError at the sink's table when its columns are to come from the schema but nothing
// upstream gives the records one: no kafka source with format: avro, or a map stage between
// (changing a record drops its schema). Mode debezium is not checked: JSON change events carry
// theirs in Kafka Connect's wrapper.
void check_schema_upstream(const PostgresSinkConfig& c, const StageConfig& stage,
                           const PipelineConfig& pipeline);

}  // namespace etld::pg
