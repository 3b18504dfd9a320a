// DSN errors name the component and position of the problem and how to fix it, never the DSN's
// text: libpq's own messages quote the bad part (often the password) or the whole URI. Runs
// without a database: check_dsn only parses.
#include <doctest/doctest.h>

#include <libpq-fe.h>

#include <string>

#include "config/loader.hpp"
#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/postgres/dsn_check.hpp"

using etld::pg::check_dsn;

namespace {

// libpq's own message for `dsn` ("" when it parses): what the old code showed.
std::string libpq_message(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  std::string msg = err ? err : "";
  if (err) PQfreemem(err);
  if (opts) PQconninfoFree(opts);
  return msg;
}

struct Case {
  std::string dsn;
  std::string secret;   // must not appear in the message
  std::string message;  // what it must say instead
};

}  // namespace

TEST_CASE("check_dsn: the DSNs of the issue are refused without quoting them, located") {
  const Case cases[] = {
      {"postgresql://app:Sup3r%zzSecret@db.internal:5432/prod", "zzSecret",
       "cannot be parsed by libpq: the password in the URI has a '%' not followed by two hex digits, at "
       "character 23"},
      {"postgresql://app:pw-Tail-0815@[fd00::1/prod", "pw-Tail-0815",
       "cannot be parsed by libpq: the IPv6 host address opened with '[' at character 31 has no closing ']'"},
      {"host=db user=app password=first-half second-half dbname=prod", "second-half",
       "cannot be parsed by libpq: the value of 'password' ends at the space before character 38, and the "
       "word there has no '='"},
      {"host=db password='never-closed dbname=prod", "never-closed",
       "cannot be parsed by libpq: the quoted value opened at character 18 has no closing quote"},
      {"postgresql://app:p%00w@db/prod", "p%00w",
       "cannot be parsed by libpq: the password in the URI holds %00"},
      {"postgresql://app:pw@db/prod?sslmode=require&oops", "oops",
       "cannot be parsed by libpq: the URI's query parameter 2 (at character 45) has no '='"},
      {"postgresql://app:pw@db/prod?sslmdoe=require", "sslmdoe",
       "cannot be parsed by libpq: the URI's query parameter 1 (at character 29) is not a libpq connection "
       "option (did you mean 'sslmode'?)"},
      {"host=db passwrd=hunter2-long", "hunter2-long",
       "cannot be parsed by libpq: the keyword at character 9 is not a libpq connection option (did you mean "
       "'password'?)"},
      // libpq parses these, but would connect to a host or port made of the password's tail and quote it.
      {"postgresql://app:p@ss-word-99@db/prod", "ss-word-99",
       "the URI has more than one '@' before the host"},
      {"postgresql://app:pw-head-55/ss-word-99@db/prod", "pw-head-55", "the port is not a number"},
      {"postgresql://app:12/ss-word-99@db/prod", "ss-word-99", "the URI has an '@' after the first '/'"},
  };
  for (const auto& c : cases) {
    INFO(c.dsn);
    auto problem = check_dsn(c.dsn);
    REQUIRE(problem);
    INFO(problem->message, " | ", problem->hint);
    CHECK(problem->message.find(c.message) == 0);
    CHECK(problem->message.find(c.secret) == std::string::npos);
    CHECK(problem->hint.find(c.secret) == std::string::npos);
    CHECK(problem->hint.find("the DSN is not shown") != std::string::npos);
  }
  // What libpq itself says quotes the secret: the reason not to show it.
  CHECK(libpq_message(cases[0].dsn).find("zzSecret") != std::string::npos);
  CHECK(libpq_message(cases[1].dsn).find("pw-Tail-0815") != std::string::npos);
  CHECK(libpq_message(cases[2].dsn).find("second-half") != std::string::npos);
}

TEST_CASE("check_dsn: the hints say how to write the DSN") {
  CHECK(check_dsn("postgresql://app:Sup3r%zzSecret@db/prod")->hint.find("'%' as %25") != std::string::npos);
  CHECK(check_dsn("host=db password=a b")->hint.find("password='my secret'") != std::string::npos);
}

TEST_CASE("check_dsn: valid DSNs pass") {
  for (const char* dsn : {"postgresql://app:Sup3r%25Secret@db.internal:5432/prod",
                          "postgresql://app:pw@[fd00::1]:5432/prod?sslmode=require&ssl=true",
                          "postgres://db1:5432,db2:5433/prod?target_session_attrs=read-write",
                          "postgresql:///prod?host=/run/postgresql", "postgresql://",
                          "host=db user=app password='first-half second-half' dbname=prod",
                          "host=db password=with\\ space port=5432,5433", "dbname=prod"}) {
    INFO(dsn);
    auto problem = check_dsn(dsn);
    CHECK_MESSAGE(!problem, (problem ? problem->message : ""));
  }
}

TEST_CASE("remember_dsn_secrets: passwords as parsed, as written, and of DSNs libpq cannot parse") {
  etld::pg::remember_dsn_secrets("postgresql://app:Sup3r%25Secret-1@db/prod");
  CHECK(etld::redact_secrets("Sup3r%Secret-1 Sup3r%25Secret-1") == "*** ***");
  etld::pg::remember_dsn_secrets("postgresql://app:Sup3r%zzSecret-2@db/prod");
  CHECK(etld::redact_secrets("Sup3r%zzSecret-2") == "***");
  etld::pg::remember_dsn_secrets("host=db password=first-half-3 second-half-3 dbname=prod");
  CHECK(etld::redact_secrets("first-half-3 second-half-3") == "***");
  CHECK(etld::redact_secrets("second-half-3") == "***");
  etld::pg::remember_dsn_secrets("host=db sslpassword='quoted secret 4' password = spaced-secret-5");
  CHECK(etld::redact_secrets("quoted secret 4, spaced-secret-5") == "***, ***");
  etld::pg::remember_dsn_secrets("postgresql://app:p@ss-word-6@db/prod?password=query-secret-7&x=1");
  CHECK(etld::redact_secrets("p@ss-word-6 query-secret-7") == "*** ***");
}

TEST_CASE("a broken DSN in a pipeline file: the diagnostic is located at the dsn and quotes no part of it") {
  etld::Diagnostics diags("p.yaml");
  auto config = etld::load_pipeline_text(R"yaml(stages:
  in: {type: stdin}
  db:
    type: postgres
    inputs: [in]
    dsn: "postgresql://app:Sup3r%zzSecret@db.internal:5432/prod"
    table: t
    columns: {id: bigint}
)yaml",
                                         "p.yaml", diags);
  CHECK(config == nullptr);
  const std::string out = diags.format();
  INFO(out);
  CHECK(out.find("p.yaml:6:10: error: option 'dsn': cannot be parsed by libpq: the password in the URI") ==
        0);
  CHECK(out.find("zzSecret") == std::string::npos);
  CHECK(out.find("db.internal") == std::string::npos);
}
