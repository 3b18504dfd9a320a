// The postgres sink's `mode: merge`: the table's columns, key and fold rules come from the stage
// upstream (StageFactory::output_columns, such as the window stage with `emit: updates`), and
// each incoming partial row folds into the stored row of its key with INSERT .. ON CONFLICT (key)
// DO UPDATE SET col = <the column's merge_sql>. Several partials of one key in one batch (from
// several source partitions) fold in rounds, one statement per round, in the batch's
// transaction: ON CONFLICT cannot touch a row twice in one statement. See
// docs/connectors/postgres.md, "mode: merge".
#pragma once

#include <string>

#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Fills c.columns, c.key and c.merge_columns from the stage feeding `stage`; throws ConfigError
// located at `mode` (or at the option that makes no sense with it).
void configure_merge(PostgresSinkConfig& c, const StageConfig& stage, const PipelineConfig& pipeline);

// c.merge_rounds_sql and c.merge_round_sql, and the CREATE TABLE of mode merge, from c.merge_columns.
void derive_merge_sql(PostgresSinkConfig& c);

}  // namespace etld::pg
