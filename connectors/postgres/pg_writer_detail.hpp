// Helpers shared by the postgres writer's two files (pg_writer.cpp, pg_writer_exactly_once.cpp).
#pragma once

#include <string>

#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/pg_writer.hpp"
#include "stages/sink/retry.hpp"

namespace etld::pg {

// PostgreSQL's error classes (pg_connection.hpp) in the sink kit's terms.
sink::Failure pg_failure(const PgError& e);
// Bisection came down to one row that PostgreSQL refuses: it is poison, with the reason.
void mark_poison(Row& r, const PgError& e);

}  // namespace etld::pg
