// `etld validate --against-db` for a postgres sink fed by a kafka source with `format: avro`: the
// table's columns against the latest schema the registry holds for each of the source's topics
// (subject "<topic>-value"), by the rules of avro_column_rules.hpp (docs/formats.md).
#pragma once

#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Appends to `errors` each mapped column that cannot hold the field it reads (located at the
// column's entry), each field the schema lacks, and each registry that cannot be asked (located at
// the source's schema_registry); to `warnings` ("file:line:col: warning: ...") what it leaves
// unchecked and why. Each topic is checked against the table its records go to (the stage's, a
// `tables:` entry's, a `{topic}` template's). Without `columns:`, the columns the schema gives
// are checked as the writer checks them (schema_columns_check.hpp): every reason the table cannot
// take the records is an error at the table, every change evolve would make a warning. Without
// avro sources upstream it does nothing; when the catalog cannot be read (check_live reports
// why), or the table does not exist yet (create_table), it checks the fields and the mapped types
// only. Blocking (control plane).
void check_against_avro_schemas(const PostgresSinkConfig& cfg, const StageConfig& stage,
                                const PipelineConfig& pipeline, std::vector<ConfigError>& errors,
                                std::vector<std::string>& warnings);

}  // namespace etld::pg
