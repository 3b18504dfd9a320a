// The schema-registry client (connectors/avro/schema_registry.hpp) against a real HTTP server
// started here (tests/support/avro_test_registry.hpp): schemas fetched once per id on the
// client's thread, an unknown id final, failures the registry may get over (5xx, timeouts, a
// refused connection, 401, a URL that is not the API root) retried with growing backoff and
// reported rate-limited, basic auth sent, no credential in any message, and a destructor that does
// not wait for a slow request.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "connectors/avro/avro_decode.hpp"
#include "connectors/avro/schema_registry.hpp"
#include "connectors/avro/wire_decoder.hpp"
#include "connectors/avro/wire_format.hpp"
#include "tests/support/avro_test_registry.hpp"
#include "tests/support/eventually.hpp"

using namespace std::chrono_literals;
using etld::avro::RegistryHooks;
using etld::avro::RegistrySettings;
using etld::avro::SchemaRegistry;
using etld::test::TestRegistry;

namespace {

constexpr const char* kSchema = R"({"type":"record","name":"R","fields":[{"name":"id","type":"long"}]})";

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout = 10s) {
  return etld::test::eventually(f, timeout, 5ms);
}

// What the hooks saw.
struct Seen {
  std::mutex mu;
  std::vector<std::string> warnings;
  std::atomic<int> settled{0}, retried{0}, fetched{0};

  RegistryHooks hooks() {
    RegistryHooks h;
    h.settled = [this] { ++settled; };
    h.retried = [this] { ++retried; };
    h.fetched = [this] { ++fetched; };
    h.warn = [this](const std::string& w) {
      std::lock_guard lock(mu);
      warnings.push_back(w);
    };
    return h;
  }
  std::vector<std::string> warned() {
    std::lock_guard lock(mu);
    return warnings;
  }
};

RegistrySettings settings(const std::string& url, std::chrono::milliseconds timeout = 5s) {
  RegistrySettings s;
  s.url = url;
  s.timeout = timeout;
  return s;
}

// A port nothing listens on: bound, then closed.
unsigned short closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_SUITE("schema registry client") {
  TEST_CASE("a schema is fetched once, on the client's thread, and decodes") {
    TestRegistry server;
    server.add(7, kSchema);
    Seen seen;
    SchemaRegistry client(settings(server.url()), seen.hooks());
    CHECK(client.lookup(7).pending());  // never waits: the fetch is queued
    // Asked again, while the fetch runs or once it is done (the client's thread may be that quick):
    // never a second fetch (checked below).
    const auto again = client.lookup(7);
    CHECK((again.pending() || again.schema != nullptr));
    REQUIRE(eventually([&] { return seen.settled == 1; }));
    const auto found = client.lookup(7);
    REQUIRE(found.schema != nullptr);
    CHECK(etld::avro::decode_avro(*found.schema, std::string("\x54", 1)).to_json() == R"({"id":42})");
    CHECK(client.lookup(7).schema == found.schema);
    CHECK(seen.fetched == 1);
    CHECK(seen.retried == 0);
    const auto asked = server.requests();
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].target == "/schemas/ids/7");
    CHECK(asked[0].authorization.empty());
  }

  TEST_CASE("an id the registry does not have is final, remembered, and says where it looked") {
    TestRegistry server;
    Seen seen;
    SchemaRegistry client(settings(server.url()), seen.hooks());
    client.lookup(42);
    REQUIRE(eventually([&] { return seen.settled == 1; }));
    const auto failed = client.lookup(42);
    CHECK(failed.schema == nullptr);
    CHECK(failed.error == "schema id 42 not found in the registry at " + server.url());
    client.lookup(42);
    CHECK(server.requests().size() == 1);
    CHECK(seen.retried == 0);
  }

  TEST_CASE("HTTP 500 is retried with growing backoff, warned about once, until the registry answers") {
    TestRegistry server;
    server.add(3, kSchema);
    server.fail_with(500);
    Seen seen;
    SchemaRegistry client(settings(server.url()), seen.hooks());
    client.lookup(3);
    std::this_thread::sleep_for(1000ms);
    // 100, 200, 400 ms apart: a handful of requests in a second, never a busy loop.
    const auto tries = server.requests().size();
    CHECK(tries >= 2);
    CHECK(tries <= 6);
    CHECK(client.lookup(3).pending());
    CHECK(seen.settled == 0);
    CHECK(seen.retried == static_cast<int>(tries));
    const auto warned = seen.warned();
    REQUIRE(warned.size() == 1);  // rate-limited: one per 10 s
    CHECK(warned[0] == "cannot fetch schema id 3 from the registry at " + server.url() +
                           ": HTTP 500: failing on purpose (retrying in 100 ms)");
    server.fail_with(std::nullopt);
    REQUIRE(eventually([&] { return seen.settled == 1; }));
    CHECK(client.lookup(3).schema != nullptr);
  }

  TEST_CASE("a request slower than the timeout is retried, and the destructor does not wait for one") {
    TestRegistry server;
    server.add(5, kSchema);
    server.delay(600ms);
    Seen seen;
    {
      SchemaRegistry client(settings(server.url(), 200ms), seen.hooks());
      client.lookup(5);
      REQUIRE(eventually([&] { return seen.retried >= 1; }));
      const auto warned = seen.warned();
      REQUIRE(!warned.empty());
      CHECK(warned[0].find("cannot fetch schema id 5 from the registry at " + server.url() +
                           ": Timeout was reached") == 0);
      server.delay(0ms);
      REQUIRE(eventually([&] { return seen.settled == 1; }));
      CHECK(client.lookup(5).schema != nullptr);
    }
    server.delay(3000ms);
    Seen slow;
    const auto asked = server.requests().size();
    const auto start = std::chrono::steady_clock::now();
    {
      SchemaRegistry client(settings(server.url(), 30s), slow.hooks());
      client.lookup(5);
      REQUIRE(eventually([&] { return server.requests().size() > asked; }));  // the request is in flight
    }
    CHECK(std::chrono::steady_clock::now() - start < 2500ms);
    CHECK(slow.settled == 0);
  }

  TEST_CASE(
      "an unreachable registry is retried; a URL that is not the API root is not taken for 'not found'") {
    Seen seen;
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
    {
      SchemaRegistry client(settings(url), seen.hooks());
      client.lookup(1);
      REQUIRE(eventually([&] { return seen.retried >= 2; }));
      CHECK(client.lookup(1).pending());
      const auto warned = seen.warned();
      REQUIRE(!warned.empty());
      CHECK(warned[0].find("cannot fetch schema id 1 from the registry at " + url +
                           ": Couldn't connect to server") == 0);
    }
    TestRegistry server;
    server.add(1, kSchema);
    Seen wrong;
    SchemaRegistry client(settings(server.url() + "/not-the-api"), wrong.hooks());
    client.lookup(1);
    REQUIRE(eventually([&] { return wrong.retried >= 1; }));
    CHECK(client.lookup(1).pending());
    CHECK(wrong.warned().at(0) == "cannot fetch schema id 1 from the registry at " + server.url() +
                                      "/not-the-api: HTTP 404 without the registry's error_code 40403: is " +
                                      server.url() +
                                      "/not-the-api the registry's API root? (retrying in 100 ms)");
  }

  TEST_CASE("basic auth is sent; refused credentials are retried and never quoted") {
    TestRegistry server;
    server.add(9, kSchema);
    server.require_auth("alice:s3cret-pass-99");
    Seen seen;
    auto s = settings(server.url());
    s.username = "alice";
    s.password = "wrong-pass-1234";
    {
      SchemaRegistry client(s, seen.hooks());
      client.lookup(9);
      REQUIRE(eventually([&] { return seen.retried >= 1; }));
      const auto warned = seen.warned().at(0);
      CHECK(warned == "cannot fetch schema id 9 from the registry at " + server.url() +
                          ": HTTP 401: check schema_registry's username and password (retrying in 100 ms)");
      CHECK(client.lookup(9).pending());
    }
    s.password = "s3cret-pass-99";
    Seen ok;
    SchemaRegistry client(s, ok.hooks());
    client.lookup(9);
    REQUIRE(eventually([&] { return ok.settled == 1; }));
    CHECK(client.lookup(9).schema != nullptr);
    CHECK(server.requests().back().authorization == "Basic YWxpY2U6czNjcmV0LXBhc3MtOTk=");
    CHECK(server.requests().back().status == 200);
  }

  TEST_CASE("schemas etld cannot use are final failures with the reason") {
    TestRegistry server;
    server.add(11, R"(syntax = "proto3"; message M {})", "PROTOBUF");
    server.add(12, R"({"type":"record","name":"R","fields":[{"name":"x","type":"Nope"}]})");
    server.add(13, kSchema, "AVRO");
    Seen seen;
    SchemaRegistry client(settings(server.url()), seen.hooks());
    for (std::uint32_t id : {11u, 12u, 13u}) client.lookup(id);
    REQUIRE(eventually([&] { return seen.settled == 3; }));
    CHECK(client.lookup(11).error == "schema id 11 from the registry at " + server.url() +
                                         " is a PROTOBUF schema; etld decodes Avro only");
    CHECK(client.lookup(12).error.rfind(
              "schema id 12 from the registry at " + server.url() + " is not a valid Avro schema: ", 0) == 0);
    CHECK(client.lookup(13).schema != nullptr);
    CHECK(seen.retried == 0);
  }

  TEST_CASE("the wire decoder changes an event only once both its schemas are there") {
    using Outcome = etld::avro::WireDecoder::Outcome;
    TestRegistry server;
    server.add(1, R"({"type":"record","name":"K","fields":[{"name":"id","type":"long"}]})");
    server.add(2, kSchema);
    server.fail_id(2, 503);
    Seen seen;
    auto client = std::make_shared<SchemaRegistry>(settings(server.url()), seen.hooks());
    etld::avro::WireDecoder decoder(client, /*values=*/true, /*keys=*/true);
    const std::string key = etld::avro::wire_header(1) + "\x02", value = etld::avro::wire_header(2) + "\x54";
    etld::Event e;
    e.key = key;
    e.has_key = true;
    e.value = value;
    std::string reason;
    std::uint32_t waiting_for = 0;
    REQUIRE(eventually(
        [&] { return decoder.decode(e, reason, waiting_for) == Outcome::waiting && waiting_for == 2; }));
    CHECK(e.key == key);  // the key's schema is there, the value's is not: nothing changed yet
    CHECK_FALSE(e.parsed());
    CHECK(decoder.waiting(2));
    server.fail_id(2, std::nullopt);
    REQUIRE(eventually([&] { return !decoder.waiting(2); }));
    REQUIRE(decoder.decode(e, reason, waiting_for) == Outcome::decoded);
    CHECK(e.key == R"({"id":1})");
    CHECK(e.record().to_json() == R"({"id":42})");
    CHECK(e.value == value);  // the raw bytes stay

    // A tombstone keeps no value; its key is decoded (a Debezium delete is found by it).
    etld::Event tombstone;
    tombstone.key = key;
    tombstone.has_key = true;
    tombstone.has_value = false;
    CHECK(decoder.decode(tombstone, reason, waiting_for) == Outcome::decoded);
    CHECK(tombstone.key == R"({"id":1})");
    CHECK_FALSE(tombstone.parsed());

    // A value that does not decode: a reason, and the key left as it came.
    etld::Event bad;
    bad.key = key;
    bad.has_key = true;
    bad.value = etld::avro::wire_header(2);
    CHECK(decoder.decode(bad, reason, waiting_for) == Outcome::rejected);
    CHECK(reason ==
          "avro: body does not decode with schema id 2: id: truncated: a number runs past the end of "
          "the body (at byte 0 of 0)");
    CHECK(bad.key == key);
    bad.key = "raw";
    CHECK(decoder.decode(bad, reason, waiting_for) == Outcome::rejected);
    CHECK(reason == "avro: key: wrong magic byte 0x72 (expected 0: not the Confluent wire format)");
  }
}
