// The dev environment's PostgreSQL for service tests: its DSN, and a connection with helpers to
// run SQL and read results as text ("<null>" for NULL or no row).
#pragma once

#include <libpq-fe.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "connectors/postgres/pg_connection.hpp"
#include "tests/support/services.hpp"

namespace etld::test {

// PG_DSN when set (the dev environment's exports), else the services the tests start.
inline const std::string& dsn() {
  static const std::string d = [] {
    const char* env = std::getenv("PG_DSN");
    return env && *env ? std::string(env) : services().pg_dsn;
  }();
  return d;
}

inline std::string scalar(pg::PgConnection& db, const std::string& sql) {
  auto r = db.query(sql);
  return PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
}

// A test-side connection (time zone UTC, so that timestamps read back in one form).
struct Db {
  pg::PgConnection conn{dsn()};
  Db() { conn.exec("SET TimeZone = 'UTC'"); }
  void exec(const std::string& sql) { conn.exec(sql); }
  std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql) {
    auto r = conn.query(sql);
    std::vector<std::vector<std::optional<std::string>>> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::vector<std::optional<std::string>> row;
      for (int j = 0; j < PQnfields(r.get()); ++j)
        row.push_back(PQgetisnull(r.get(), i, j) ? std::nullopt
                                                 : std::optional<std::string>(PQgetvalue(r.get(), i, j)));
      out.push_back(std::move(row));
    }
    return out;
  }
  std::string scalar(const std::string& sql) { return test::scalar(conn, sql); }
  long count(const std::string& table) { return std::stol(scalar("SELECT count(*) FROM " + table)); }
};

}  // namespace etld::test
