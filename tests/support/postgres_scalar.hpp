// The first value of a query's first row, as text, for checks in tests ("<null>" for NULL or no row).
#pragma once

#include <libpq-fe.h>

#include <string>

#include "connectors/postgres/pg_connection.hpp"

namespace etld::test {

inline std::string scalar(pg::PgConnection& db, const std::string& sql) {
  auto r = db.query(sql);
  return PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
}

}  // namespace etld::test
