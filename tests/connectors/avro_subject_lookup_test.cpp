// The subject lookup of `validate --against-db` (connectors/avro/subject_lookup.hpp) against a real
// HTTP server started here (tests/support/avro_test_registry.hpp): the latest schema of a subject
// with its version and id, basic auth sent, a subject the registry lacks told apart from a
// registry that cannot be asked, a schema that is not Avro refused, and no password in a message.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "connectors/avro/subject_lookup.hpp"
#include "tests/support/avro_test_registry.hpp"

using namespace std::chrono_literals;
using etld::avro::fetch_latest_schema;
using etld::avro::RegistrySettings;
using etld::avro::SubjectSchema;
using etld::test::TestRegistry;

namespace {

constexpr const char* kSchema = R"({"type":"record","name":"R","fields":[{"name":"qty","type":"long"}]})";

RegistrySettings settings(const std::string& url) {
  RegistrySettings s;
  s.url = url;
  s.timeout = 2s;
  return s;
}

}  // namespace

TEST_SUITE("schema registry subject lookup") {
  TEST_CASE("the latest schema of a subject, with its version and id") {
    TestRegistry server;
    server.add_subject("orders-value", 3, 17, kSchema);
    const SubjectSchema got = fetch_latest_schema(settings(server.url()), "orders-value");
    REQUIRE(got.outcome == SubjectSchema::Outcome::found);
    CHECK(got.version == 3);
    CHECK(got.id == 17);
    REQUIRE(got.schema);
    CHECK(got.schema->root().fields.at(0).first == "qty");
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].target == "/subjects/orders-value/versions/latest");
  }

  TEST_CASE("a subject the registry does not have is told apart from a failure") {
    TestRegistry server;
    const SubjectSchema got = fetch_latest_schema(settings(server.url()), "nothing-value");
    CHECK(got.outcome == SubjectSchema::Outcome::not_registered);
    CHECK(got.error == "subject 'nothing-value' has no schema in the registry at " + server.url());

    server.fail_with(503);
    const SubjectSchema down = fetch_latest_schema(settings(server.url()), "nothing-value");
    CHECK(down.outcome == SubjectSchema::Outcome::unreachable);
    CHECK(down.error.find("HTTP 503") != std::string::npos);
  }

  TEST_CASE("basic auth is sent, and a refusal names no password") {
    TestRegistry server;
    server.add_subject("orders-value", 1, 1, kSchema);
    server.require_auth("etld:registry-secret-pw");
    RegistrySettings s = settings(server.url());
    s.username = "etld";
    s.password = "wrong-secret-pw";
    const SubjectSchema refused = fetch_latest_schema(s, "orders-value");
    CHECK(refused.outcome == SubjectSchema::Outcome::unreachable);
    CHECK(refused.error.find("HTTP 401: check schema_registry's username and password") != std::string::npos);
    CHECK(refused.error.find("wrong-secret-pw") == std::string::npos);
    s.password = "registry-secret-pw";
    CHECK(fetch_latest_schema(s, "orders-value").outcome == SubjectSchema::Outcome::found);
  }

  TEST_CASE("a schema that is not Avro, and a registry nothing answers at") {
    TestRegistry server;
    server.add_subject("proto-value", 1, 2, "syntax = \"proto3\";", "PROTOBUF");
    const SubjectSchema proto = fetch_latest_schema(settings(server.url()), "proto-value");
    CHECK(proto.outcome == SubjectSchema::Outcome::failed);
    CHECK(proto.error.find("is a PROTOBUF schema; etld reads Avro only") != std::string::npos);

    boost::asio::io_context io;
    unsigned short port = 0;
    {
      boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    const SubjectSchema none = fetch_latest_schema(settings(url), "orders-value");
    CHECK(none.outcome == SubjectSchema::Outcome::unreachable);
    CHECK(none.error.rfind(
              "cannot fetch the latest schema of subject 'orders-value' from the registry at " + url, 0) ==
          0);
  }
}
