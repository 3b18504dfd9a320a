// The postgres sink's mode debezium (docs/cdc.md): its options (soft_delete, truncate, a guard on
// an envelope field) and its SQL. Rows go through the staging table as upserts do; per key, the
// latest event of a batch (by guard, then arrival) decides, and an event whose guard is older than
// the stored row's changes nothing. The envelope itself is read by debezium_encoder.hpp.
#pragma once

#include "config/schema/options.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Reads soft_delete, truncate and guard for mode debezium into `c` (whose columns and key are
// parsed); throws ConfigError located at the culprit.
void configure_debezium(PostgresSinkConfig& c, const Options& o);

// Replaces the upsert mode's delete and upsert SQL by mode debezium's, and adds its soft-delete
// and truncate statements.
void derive_debezium_sql(PostgresSinkConfig& c);

}  // namespace etld::pg
