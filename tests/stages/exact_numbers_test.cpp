// Numbers keep their digits: parse_json accepts every valid JSON number (RFC 8259 sets no range)
// and a record written out again carries each number's text as it came; filter passes payloads on
// byte for byte, and map rewrites only what it sets.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "stages/engine/registry.hpp"
#include "stages/engine/value.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/test_context.hpp"

namespace etld {
namespace {

// One batch of payloads through a transform; returns the events it passes on (none rejected).
Batch run_transform(const std::string& type, const std::string& yaml,
                    const std::vector<std::string>& payloads,
                    std::vector<std::string>* rejections = nullptr) {
  test::TestStageContext ctx(type, 0);
  auto transform = test::configure_stage(type, yaml)->make_transform(0);
  transform->start(ctx);
  auto acks = std::make_shared<test::RecordingAcks>();
  Batch in = test::make_events(payloads, acks, 0), out, kept;
  transform->process(in, out);
  for (auto& e : out) {
    if (e.rejected()) {
      if (rejections) rejections->push_back(e.rejection);
      e.ack.settle(AckStatus::dead_lettered);
    } else {
      e.ack.settle(AckStatus::done);
      kept.push_back(std::move(e));
    }
  }
  return kept;
}

// What a sink writes for an event: the payload unless a stage decoded (and maybe changed) it.
std::string written(Event& e) { return e.parsed() ? e.record().to_json() : e.value; }

TEST_CASE("every number of a document is written back with the text it came with") {
  const std::vector<std::string> documents = {
      R"({"big":18446744073709551615})",
      R"({"bigger":18446744073709551616,"neg":-12345678901234567890})",
      R"({"amount":12345678901234567.89,"n":1.10,"e":1e400,"tiny":1e-400,"E":2.5E+3})",
      R"([0,-0,1.0,-0.0,0.1,3.14,1e5,100000.0,9223372036854775807,-9223372036854775808])",
      R"({"deep":[{"x":[123456789012345678901234567890.000000000000000000001]}]})",
      R"(12345678901234567890)",
  };
  for (const auto& doc : documents) {
    CAPTURE(doc);
    CHECK(parse_json(doc).to_json() == doc);
  }
}

TEST_CASE("exact numbers: kinds, doubles for arithmetic, and copies") {
  Value v = parse_json(R"({"i":9223372036854775807,"u":18446744073709551615,"f":1.10,"s":0.5,"x":1e400})");
  CHECK(v.find("i")->kind() == Value::Kind::integer);
  CHECK(v.find("i")->number_text() == nullptr);
  const Value& u = *v.find("u");
  CHECK(u.kind() == Value::Kind::real);
  REQUIRE(u.number_text());
  CHECK(*u.number_text() == "18446744073709551615");
  CHECK(u.as_double() == 18446744073709551616.0);
  CHECK(*v.find("f")->number_text() == "1.10");
  CHECK(v.find("f")->as_double() == 1.1);
  CHECK(*v.find("f") == Value(1.1));             // compared as numbers
  CHECK(v.find("s")->number_text() == nullptr);  // 0.5 writes back as 0.5: a plain double
  CHECK(v.find("x")->as_double() == HUGE_VAL);
  CHECK(v.find("x")->truthy());
  Value copy = v;
  CHECK(copy.to_json() == v.to_json());
  CHECK(copy == v);
}

TEST_CASE("malformed JSON is still refused, numbers included") {
  for (std::string bad : {"{\"a\": 1",
                          "{\"a\": 01}",
                          "{\"a\": 1.}",
                          "{\"a\": .5}",
                          "{\"a\": -}",
                          "{\"a\": 1e}",
                          "{\"a\": +1}",
                          "{\"a\": 1.5.5}",
                          "{\"a\": 0x10}",
                          "{\"a\": NaN}",
                          "{\"a\": Infinity}",
                          "{\"a\": 1} trailing",
                          "[1, 2",
                          "[1 2]",
                          "{\"a\" 1}",
                          "{\"a\": 1,}",
                          "{\"a\": tru}",
                          "{\"a\": nul}",
                          "",
                          "1 2",
                          "\"unterminated",
                          "{\"a\": \"\\x\"}",
                          "{\"a\": [1,]}",
                          "{\"a\": 1}}",
                          "[1]]",
                          "{\"a\": \"\xff\"}",
                          "{\"a\": \"raw\ttab\"}",
                          "{\"a\": [[[1]]}",
                          "{1: 2}"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_json(bad), JsonError);
    try {
      parse_json(bad);
    } catch (const JsonError& e) {
      CHECK(std::string(e.what()).rfind("invalid JSON: ", 0) == 0);
    }
  }
}

TEST_CASE("is_json_number follows JSON's grammar") {
  for (const char* ok : {"0", "-0", "1", "-12", "1.5", "0.25", "1e5", "1E+5", "1e-5", "-1.5e300", "1e400"})
    CHECK_MESSAGE(is_json_number(ok), ok);
  for (const char* bad : {"", "-", "01", "+1", "1.", ".5", "1e", "1e+", "1.5.5", "NaN", "1 ", "0x1", "--1"})
    CHECK_FALSE_MESSAGE(is_json_number(bad), bad);
}

TEST_CASE("filter passes the payload on byte for byte, whatever its numbers") {
  const std::string payload = R"({"id": 12345678901234567890, "n": 1.10, "t": "caf\u00e9"})";
  auto out = run_transform("filter", R"(where: "n > 0")", {payload, R"({"id": 1, "n": -1})"});
  REQUIRE(out.size() == 1);
  CHECK_FALSE(out[0].parsed());  // the sink reads the payload, not a record written out again
  CHECK(written(out[0]) == payload);

  // Numbers beyond 64 bits and double's range are valid JSON: compared as doubles, kept as text.
  std::vector<std::string> rejections;
  out = run_transform("filter", R"(where: "x > 1")",
                      {R"({"x": 18446744073709551616})", R"({"x": 1e400})", R"({"x": -1e400})"}, &rejections);
  CHECK(rejections.empty());
  REQUIRE(out.size() == 2);
  CHECK(written(out[0]) == R"({"x": 18446744073709551616})");
  CHECK(written(out[1]) == R"({"x": 1e400})");
}

TEST_CASE("map writes the fields it did not touch with their exact text") {
  std::vector<std::string> rejections;
  auto out = run_transform("map", R"(set: {seen: "true"})",
                           {R"({"big":18446744073709551615})", R"({"neg":-12345678901234567890})",
                            R"({"amount": 12345678901234567.89, "n": 1.10, "e": 1e400})"},
                           &rejections);
  CHECK(rejections.empty());
  REQUIRE(out.size() == 3);
  CHECK(written(out[0]) == R"({"big":18446744073709551615,"seen":true})");
  CHECK(written(out[1]) == R"({"neg":-12345678901234567890,"seen":true})");
  CHECK(written(out[2]) == R"({"amount":12345678901234567.89,"n":1.10,"e":1e400,"seen":true})");

  // Arithmetic on such a number is floating point (docs/expressions.md): a computed result is a
  // double, the field it was computed from keeps its digits.
  out = run_transform("map", R"(set: {twice: "n * 2"})", {R"({"n": 1.10})"});
  REQUIRE(out.size() == 1);
  CHECK(written(out[0]) == R"({"n":1.10,"twice":2.2})");
}

}  // namespace
}  // namespace etld
