// Why libpq cannot use a DSN, said without quoting it: libpq's own parse errors quote the bad part
// or the whole URI, which may be the password, so they are never shown. The DSN is read here only
// to locate the problem (a component and a character position) and to say how to fix it.
#pragma once

#include <optional>
#include <string>

namespace etld::pg {

struct DsnProblem {
  std::string message;  // "the password in the URI has a '%' not followed by two hex digits"
  std::string hint;     // how to write it instead
};

// The problem that makes PQconninfoParse refuse `dsn`, or that would make libpq connect with a
// mangled host or port (an unencoded '@' or '/' in a URI's password), or nullopt when there is none.
std::optional<DsnProblem> check_dsn(const std::string& dsn);

// Remembers the password-like parts of `dsn` as secrets (config/schema/secrets.hpp): the password and
// sslpassword values, as written and decoded, also when the DSN cannot be parsed.
void remember_dsn_secrets(const std::string& dsn);

}  // namespace etld::pg
