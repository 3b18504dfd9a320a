// The `postgres` sink stage (registered by postgres_sink.cpp) and its live checks for
// `etld validate --against-db`.
#pragma once

#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_config.hpp"

namespace etld::pg {

// Connects with the stage's DSN and checks the mapping against the catalog: the table exists
// (unless create_table), every mapped column exists and can take its mapped type, NOT NULL
// columns without a default are mapped, the key has a unique index or constraint covering
// exactly its columns (upsert, insert_ignore), and an existing dead-letter table has the
// expected columns. Throws ConfigError located at the culprit option. Blocking (control plane).
void check_live(const PostgresSinkConfig& cfg, const StageConfig& stage);

}  // namespace etld::pg
