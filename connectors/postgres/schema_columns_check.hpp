// `etld validate --against-db` for a table whose columns come from the records' Avro schema
// (schema_columns.hpp, no `columns:`): what the writer would decide at run time for the latest
// schema of a topic (schema_fit.hpp), every reason and every change at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/schema_fit.hpp"

namespace etld::pg {

struct SchemaColumnsFindings {
  std::vector<std::string> errors;    // why the table cannot take the records
  std::vector<std::string> warnings;  // what evolve: add_columns would change
  // The table's config for the schema (null when none can be made): its columns, for the checks
  // of the column_overrides that read other fields.
  std::unique_ptr<PostgresSinkConfig> config;
};

// `t`: the table's config (t.schema_columns); `schema` the topic's latest schema and `row` its row
// record (the root, or with mode debezium the envelope's `after`); `key_fields` the fields of the
// topic's Avro key schema (the key when t has none); `table` its catalog columns (null: the
// catalog cannot be read, check_live says why); `about` names the topic and the subject's version
// for the messages; `missing_table`: whether a table that does not exist is reported here
// (check_live reports those named by `table:` and `tables:`).
SchemaColumnsFindings check_schema_columns(const PostgresSinkConfig& t,
                                           const std::shared_ptr<const avro::AvroSchema>& schema,
                                           const avro::AvroNode& row,
                                           const std::vector<std::string>& key_fields,
                                           const TableColumns* table, const std::string& about,
                                           bool missing_table);

}  // namespace etld::pg
