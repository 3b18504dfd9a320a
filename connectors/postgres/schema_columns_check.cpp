// The validate check of schema_columns_check.hpp.
#include "connectors/postgres/schema_columns_check.hpp"

#include "connectors/postgres/schema_columns.hpp"

namespace etld::pg {

SchemaColumnsFindings check_schema_columns(const PostgresSinkConfig& t,
                                           const std::shared_ptr<const avro::AvroSchema>& schema,
                                           const avro::AvroNode& row,
                                           const std::vector<std::string>& key_fields,
                                           const TableColumns* table, const std::string& about,
                                           bool missing_table) {
  SchemaColumnsFindings out;
  const std::string cannot = "table " + t.display + " cannot take the records of " + about + ": ";
  std::string error;
  out.config = config_for_schema(t, schema, row, key_fields, 0, error);
  if (!out.config) {
    out.errors.push_back(cannot + error);
    return out;
  }
  if (!table || (table->empty() && !t.create_table && !missing_table)) return out;
  const SchemaFit fit = fit_table_to_schema(*table, *out.config);
  for (const std::string& refusal : fit.refusals) out.errors.push_back(cannot + refusal);
  for (const SchemaChange& change : fit.changes)
    out.warnings.push_back("table " + t.display + ": evolve: add_columns would " + change.planned +
                           " for the records of " + about);
  return out;
}

}  // namespace etld::pg
