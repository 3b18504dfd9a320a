// The window stage's aggregate functions (stages/flow/aggregate.hpp) on hand-made inputs: each
// kind's exact result, exact sums of decimals and of integers past 64 bits, merging split inputs
// equals folding them whole (also through write_partial / read_partial), the data and
// configuration errors, and HyperLogLog's error against its documented bound.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "stages/flow/aggregate.hpp"
#include "stages/flow/hll.hpp"

namespace {

using etld::ConfigError;
using etld::ExprError;
using etld::Value;
using etld::flow::AggLimits;
using etld::flow::AggregateSpec;
using etld::flow::AggState;
using etld::flow::parse_aggregate;

AggregateSpec spec_of(const std::string& text, const std::string& output = "out") {
  YAML::Mark mark;
  mark.line = 3;
  mark.column = 5;
  return parse_aggregate(output, text, mark);
}

Value json(const std::string& text) { return etld::parse_json(text); }

struct Input {
  Value value;
  std::int64_t at = 0;
};

std::vector<Input> inputs(const std::vector<std::string>& texts) {
  std::vector<Input> out;
  for (const auto& t : texts) out.push_back({json(t), 0});
  return out;
}

// Folds `in` as the window stage does: check, then add.
AggState fold(const AggregateSpec& spec, const std::vector<Input>& in, const AggLimits& limits = {}) {
  AggState s(spec);
  for (const auto& i : in) {
    s.check(spec, i.value, limits);
    s.add(spec, i.value, i.at);
  }
  return s;
}

std::string result_of(const std::string& text, const std::vector<std::string>& values) {
  auto spec = spec_of(text);
  return fold(spec, inputs(values)).result(spec).to_json();
}

std::string partial_of(const AggregateSpec& spec, const AggState& s) {
  Value record{etld::Object{}};
  s.write_partial(spec, record);
  return record.to_json();
}

TEST_CASE("count counts events, count(expr) the non-null values; nothing counted is 0") {
  CHECK(result_of("count", {"1", "null", "\"x\""}) == "3");
  CHECK(result_of("count(v)", {"1", "null", "\"x\""}) == "2");
  CHECK(result_of("count(v)", {}) == "0");
  CHECK(result_of("count()", {"null"}) == "1");
}

TEST_CASE("sum keeps every digit: decimals at numeric's scale, integers past 64 bits") {
  CHECK(result_of("sum(v)", {"0.1", "0.2"}) == "0.3");
  CHECK(result_of("sum(v)", {"1.10", "2.20"}) == "3.30");
  CHECK(result_of("sum(v)", {"1.5e3", "1.5e-3", "2"}) == "1502.0015");
  CHECK(result_of("sum(v)", {"-0.05", "0.02"}) == "-0.03");
  CHECK(result_of("sum(v)", {"0.05", "-0.05"}) == "0.00");
  CHECK(result_of("sum(v)", {"9223372036854775807", "9223372036854775807", "9223372036854775807"}) ==
        "27670116110564327421");
  CHECK(result_of("sum(v)", {"-9223372036854775808", "-1"}) == "-9223372036854775809");
  CHECK(result_of("sum(v)", {"123456789012345678901234567890.123456789", "0.000000001", "1"}) ==
        "123456789012345678901234567891.123456790");
  CHECK(result_of("sum(v)", {"1", "2"}) == "3");
  CHECK(result_of("sum(v)", {"null"}) == "null");
  auto spec = spec_of("sum(v)");
  auto s = fold(spec, inputs({"1", "2"}));
  CHECK(s.result(spec).kind() == Value::Kind::integer);
  // A value computed by an expression (a double) counts as its shortest text.
  s.add(spec, Value(0.25), 0);
  CHECK(s.result(spec).to_json() == "3.25");
}

TEST_CASE("sum and avg: what cannot be exact is a data error, and leaves the state unchanged") {
  auto spec = spec_of("sum(amount)", "revenue");
  auto s = fold(spec, inputs({"1.5"}));
  auto throws = [&](const std::string& v) {
    try {
      s.check(spec, json(v), {});
    } catch (const ExprError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(throws("1e400") == "sum(amount) for 'revenue': 1e400 cannot be summed exactly (more than 76 digits)");
  CHECK(throws("1e-100").find("cannot be summed exactly") != std::string::npos);
  // A number of 10,000 digits is quoted by its start and its length, not whole.
  const std::string long_reason = throws(std::string(10000, '9'));
  CHECK(long_reason.find("cannot be summed exactly") != std::string::npos);
  CHECK(long_reason.find("... (10000 bytes)") != std::string::npos);
  CHECK(long_reason.size() < 300);
  CHECK(throws("\"12\"") == "sum(amount) for 'revenue': expected a number, got string");
  CHECK(throws("true").find("expected a number, got boolean") != std::string::npos);
  s.check(spec, Value(0.5), {});
  CHECK_THROWS_WITH_AS(s.check(spec, Value(HUGE_VAL), {}),
                       "sum(amount) for 'revenue': expected a finite number, got NaN or an infinity",
                       ExprError);
  std::string big(76, '9');  // 76 digits fit; at the state's scale of 1 they need 77
  CHECK(throws(big).find("needs more than 76 digits") != std::string::npos);
  CHECK(s.result(spec).to_json() == "1.5");
  CHECK(throws("12345678901234567890.5") == "no error");
  // merge: the same bound
  auto huge = fold(spec, inputs({std::string(75, '9')}));
  auto huge2 = fold(spec, inputs({std::string(75, '9') + ".5"}));
  CHECK_THROWS_AS(huge.merge(spec, huge2, {}), ExprError);
  CHECK(huge.result(spec).to_json() == std::string(75, '9'));
}

TEST_CASE("avg: the exact sum divided by the count, rounded half away from zero to 16 decimals") {
  CHECK(result_of("avg(v)", {"1", "2", "2"}) == "1.6666666666666667");
  CHECK(result_of("avg(v)", {"10", "20"}) == "15");
  CHECK(result_of("avg(v)", {"-1", "-2"}) == "-1.5");
  CHECK(result_of("avg(v)", {"0.1", "0.2"}) == "0.15");
  CHECK(result_of("avg(v)", {"-1", "-2", "-2"}) == "-1.6666666666666667");
  CHECK(result_of("avg(v)", {"0.00000000000000005", "0.00000000000000005"}) == "0.0000000000000001");
  CHECK(result_of("avg(v)", {"-0.00000000000000005"}) == "-0.0000000000000001");
  CHECK(result_of("avg(v)", {"0.00000000000000004"}) == "0");
  CHECK(result_of("avg(v)", {"18446744073709551615", "1", "null"}) == "9223372036854775808");
  CHECK(result_of("avg(v)", {"null"}) == "null");
}

TEST_CASE("min and max: numbers exactly, strings by bytes, booleans; mixing kinds is a data error") {
  CHECK(result_of("max(v)", {"9223372036854775807", "9223372036854775808", "9223372036854775807.5"}) ==
        "9223372036854775808");
  CHECK(result_of("min(v)", {"9223372036854775807", "9223372036854775806.99999999999999999999"}) ==
        "9223372036854775806.99999999999999999999");
  CHECK(result_of("max(v)", {"1e400", "2e399", "-1e401"}) == "1e400");
  CHECK(result_of("min(v)", {"1e400", "2e399", "-1e401"}) == "-1e401");
  CHECK(result_of("min(v)", {"0.1", "1e-1", "0.10"}) == "0.1");  // equal: the first stays
  CHECK(result_of("max(v)", {"-0.5", "-0.25", "-1"}) == "-0.25");
  CHECK(result_of("max(v)", {"\"a\"", "\"z\"", "\"\\u00e9\"", "\"Z\""}) == "\"\xc3\xa9\"");
  CHECK(result_of("min(v)", {"\"b\"", "\"a\"", "\"B\""}) == "\"B\"");
  CHECK(result_of("min(v)", {"true", "false"}) == "false");
  CHECK(result_of("max(v)", {"null"}) == "null");
  auto spec = spec_of("min(v)");
  auto s = fold(spec, inputs({"3"}));
  CHECK_THROWS_WITH_AS(s.check(spec, json("\"3\""), {}),
                       "min(v) for 'out': cannot order string against integer", ExprError);
  CHECK_THROWS_AS(s.check(spec, json("[1]"), {}), ExprError);
  auto strings = fold(spec, inputs({"\"x\""}));
  CHECK_THROWS_AS(s.merge(spec, strings, {}), ExprError);
  CHECK(s.result(spec).to_json() == "3");
  auto typed = spec_of("max(v) as text");
  CHECK_THROWS_WITH_AS(fold(typed, inputs({"1"})),
                       "max(v) as text for 'out': integer 1 does not fit its column type text", ExprError);
  CHECK(result_of("max(v) as bigint", {"1", "5"}) == "5");
}

TEST_CASE("first and last by event time; on equal times first keeps the earliest added, last the latest") {
  auto first = spec_of("first(v)");
  auto last = spec_of("last(v)");
  std::vector<Input> in{{json("\"b\""), 20},  {json("\"a\""), 10},  {json("\"c\""), 30},
                        {json("\"a2\""), 10}, {json("\"c2\""), 30}, {json("null"), 5}};
  CHECK(fold(first, in).result(first).to_json() == "\"a\"");
  CHECK(fold(last, in).result(last).to_json() == "\"c2\"");
  CHECK(partial_of(first, fold(first, in)) == R"({"out":"a","out__at":10})");
  CHECK(partial_of(last, fold(last, {})) == R"({"out":null,"out__at":null})");
}

TEST_CASE("count_distinct is exact by JSON text and bounded by max_distinct") {
  CHECK(result_of("count_distinct(v)", {"1", "1.0", "\"1\"", "1", "null", "{\"a\":1}"}) == "4");
  CHECK(result_of("count_distinct(v)", {}) == "0");
  auto spec = spec_of("count_distinct(v)");
  AggLimits limits{.max_distinct = 2};
  auto s = fold(spec, inputs({"\"a\"", "\"b\"", "\"a\""}), limits);
  s.check(spec, json("\"b\""), limits);  // already counted: fine
  CHECK_THROWS_WITH_AS(s.check(spec, json("\"c\""), limits),
                       "count_distinct(v) for 'out': more than 2 distinct values", ExprError);
  auto other = fold(spec, inputs({"\"c\""}), limits);
  CHECK_THROWS_AS(s.merge(spec, other, limits), ExprError);
  CHECK(s.result(spec).to_json() == "2");
  CHECK(partial_of(spec, s) == R"({"out":2,"out__set":["\"a\"","\"b\""]})");
}

TEST_CASE("top_k: the k most frequent values, by count descending then JSON text ascending") {
  CHECK(result_of("top_k(v, 3)",
                  {"\"b\"", "\"a\"", "\"d\"", "\"b\"", "\"c\"", "\"a\"", "\"d\"", "\"b\"", "\"a\""}) ==
        R"([{"value":"a","count":3},{"value":"b","count":3},{"value":"d","count":2}])");
  CHECK(result_of("top_k(v, 10)", {"1.10", "1.10", "2"}) ==
        R"([{"value":1.10,"count":2},{"value":2,"count":1}])");
  CHECK(result_of("top_k(v, 2)", {"null"}) == "null");
  auto spec = spec_of("top_k(concat(a, ',)', b), 2)");
  CHECK(spec.k == 2);
  CHECK(spec.input->text() == "concat(a, ',)', b)");
  AggLimits limits{.max_distinct = 1};
  auto s = fold(spec, inputs({"1", "1"}), limits);
  CHECK_THROWS_AS(s.check(spec, json("2"), limits), ExprError);
  CHECK(partial_of(spec, s) == R"({"out":[{"value":1,"count":2}],"out__counts":{"1":2}})");
}

TEST_CASE("approx_count_distinct: HyperLogLog within its documented error") {
  using etld::flow::HyperLogLog;
  // Few values: linear counting is all but exact.
  auto spec = spec_of("approx_count_distinct(v)");
  AggState small(spec);
  for (int i = 0; i < 1000; ++i) small.add(spec, Value("user-" + std::to_string(i % 200)), 0);
  auto est = small.result(spec).as_int();
  CHECK(est >= 198);
  CHECK(est <= 202);
  CHECK(result_of("approx_count_distinct(v)", {}) == "0");
  CHECK(result_of("approx_count_distinct(v)", {"1", "1", "null"}) == "1");

  // 1M distinct values: within 3 standard errors (1.04 / sqrt(2^14) each), split or whole.
  constexpr int kN = 1'000'000;
  AggState whole(spec), a(spec), b(spec);
  for (int i = 0; i < kN; ++i) {
    Value v(std::int64_t{i} * 7919);
    whole.add(spec, v, 0);
    (i % 3 == 0 ? a : b).add(spec, std::move(v), 0);
  }
  double bound = 3 * 1.04 / std::sqrt(static_cast<double>(HyperLogLog::kRegisters));
  auto estimate = static_cast<double>(whole.result(spec).as_int());
  INFO("estimate " << estimate);
  CHECK(std::abs(estimate - kN) / kN < bound);
  a.merge(spec, b, {});
  CHECK(a.result(spec).as_int() == whole.result(spec).as_int());
  CHECK((partial_of(spec, a) == partial_of(spec, whole)));  // not printed: 16384 registers
  CHECK(whole.memory_bytes() < 64 * 1024);                  // fixed memory, whatever the cardinality
  // The hash is fixed forever (registers are stored): a change would break stored partials.
  // (FNV-1a 64 then fmix64, as computed independently.)
  CHECK(HyperLogLog::hash("") == 0xefd01f60ba992926ULL);
  CHECK(HyperLogLog::hash("\"alice\"") == 0x3d57fb84dbe3d391ULL);
}

// Random inputs for every kind; folding them whole equals merging folds of random contiguous
// splits, directly or through write_partial / read_partial (what departition and the SQL merge do).
TEST_CASE("merging random splits equals folding the whole input, for every aggregate") {
  std::mt19937_64 rng(20261206);
  const char* kinds[] = {"count",
                         "count(v)",
                         "sum(v)",
                         "avg(v)",
                         "min(v)",
                         "max(v)",
                         "first(v)",
                         "last(v)",
                         "count_distinct(v)",
                         "approx_count_distinct(v)",
                         "top_k(v, 3)",
                         "min(s)",
                         "max(s) as text"};
  auto number = [&] {
    switch (rng() % 5) {
      case 0: return json(std::to_string(static_cast<std::int64_t>(rng() % 2000) - 1000));
      case 1: return json(std::to_string(rng() % 100) + "." + std::to_string(rng() % 1000));
      case 2: return json("92233720368547758" + std::to_string(rng() % 100));
      case 3: return Value();
      default: return json("-0." + std::to_string(rng() % 10) + "0");
    }
  };
  for (int round = 0; round < 40; ++round) {
    for (const char* text : kinds) {
      auto spec = spec_of(text);
      bool strings = spec.text.find("(s)") != std::string::npos;
      std::vector<Input> in;
      std::size_t n = 1 + rng() % 60;
      for (std::size_t i = 0; i < n; ++i) {
        Value v =
            strings
                ? Value(std::string(1, static_cast<char>('a' + rng() % 20)) + (rng() % 2 ? "\xc3\xa9" : ""))
                : number();
        in.push_back({std::move(v), static_cast<std::int64_t>(rng() % 10)});
      }
      AggState whole = fold(spec, in);
      AggState direct(spec), via_partials(spec);
      for (std::size_t from = 0; from < n;) {
        std::size_t to = std::min(n, from + 1 + rng() % 8);
        AggState part = fold(spec, {in.begin() + static_cast<std::ptrdiff_t>(from),
                                    in.begin() + static_cast<std::ptrdiff_t>(to)});
        Value record{etld::Object{}};
        part.write_partial(spec, record);
        via_partials.merge(spec, AggState::read_partial(spec, json(record.to_json())), {});
        direct.merge(spec, part, {});
        from = to;
      }
      INFO(text << " round " << round);
      CHECK(partial_of(spec, direct) == partial_of(spec, whole));
      CHECK(partial_of(spec, via_partials) == partial_of(spec, whole));
    }
  }
}

TEST_CASE("memory_bytes: small for scalar states, growing with what a set holds") {
  auto count = spec_of("count");
  auto distinct = spec_of("count_distinct(v)");
  AggState c(count), d(distinct);
  CHECK(c.memory_bytes() <= 128);  // one state per aggregate per (window, group): kept small
  std::size_t empty = d.memory_bytes();
  for (int i = 0; i < 1000; ++i) d.add(distinct, Value("value-" + std::to_string(i)), 0);
  d.add(distinct, Value("value-1"), 0);  // already held: no growth
  CHECK(d.memory_bytes() >= empty + 1000 * 9);
  CHECK(d.memory_bytes() <= empty + 1000 * 100);
}

TEST_CASE("read_partial refuses a record that is not the aggregate's state") {
  auto bad = [](const std::string& text, const std::string& record) {
    auto spec = spec_of(text);
    CHECK_THROWS_AS(AggState::read_partial(spec, json(record)), ExprError);
  };
  bad("approx_count_distinct(v)", R"({"out__hll":{"16384":1}})");
  bad("approx_count_distinct(v)", R"({"out__hll":{"1":52}})");
  bad("approx_count_distinct(v)", R"({"out__hll":[1]})");
  bad("top_k(v, 2)", R"({"out__counts":{"not json":1}})");
  bad("top_k(v, 2)", R"({"out__counts":{"1":0}})");
  bad("count_distinct(v)", R"({"out__set":[1]})");
  bad("avg(v)", R"({"out__sum":"1","out__count":1})");
  bad("avg(v)", R"({"out__sum":1,"out__count":-1})");
  bad("first(v)", R"({"out":1,"out__at":"x"})");
  bad("sum(v)", R"({"out":1e400})");
  bad("count", R"({"out":1.5})");
}

std::string config_error(const std::string& text) {
  try {
    spec_of(text, "x");
  } catch (const ConfigError& e) {
    CHECK(e.mark().line == 3);
    return e.what();
  }
  return "no error";
}

TEST_CASE("parse_aggregate: the forms, and located errors that name the aggregate") {
  auto s = spec_of("last(price) as numeric");
  CHECK(s.kind == etld::flow::AggKind::last);
  CHECK(s.sql_type == "numeric");
  CHECK(s.input->text() == "price");
  CHECK(spec_of("max( a.b )").sql_type == "jsonb");
  CHECK(spec_of("count_distinct(`odd)name`)").input->text() == "`odd)name`");
  CHECK(spec_of("min(v) as double precision").sql_type == "double precision");
  CHECK(!spec_of(" count ").input);
  CHECK(spec_of("count_distinct(customer)").kind == etld::flow::AggKind::count_distinct);
  CHECK(spec_of("approx_count_distinct(customer)").kind == etld::flow::AggKind::approx_count_distinct);

  auto unknown = config_error("median(v)");
  CHECK(unknown.find("aggregates 'x': unknown aggregate 'median'; expected count, count(expr)") !=
        std::string::npos);
  CHECK(unknown.find("top_k(expr, k)") != std::string::npos);
  CHECK(config_error("sum()") == "aggregates 'x': sum() needs an expression");
  CHECK(config_error("sum(v").find("expected sum(expression)") != std::string::npos);
  CHECK(config_error("top_k(v)").find("k an integer from 1 to 10000, got no k") != std::string::npos);
  CHECK(config_error("top_k(v, 0)").find("got '0'") != std::string::npos);
  CHECK(config_error("top_k(v, x)").find("got 'x'") != std::string::npos);
  CHECK(config_error("top_k(, 3)") == "aggregates 'x': top_k() needs an expression");
  CHECK(config_error("last(v) as money").find("unknown type 'money' after 'as'") != std::string::npos);
  CHECK(config_error("sum(v) as numeric").find("unexpected 'as numeric' after sum(expression)") !=
        std::string::npos);
  CHECK(config_error("sum(a +)").find("at column 7 of \"sum(a +)\"") != std::string::npos);
  CHECK(config_error(std::string(60000, 'x')).size() < 1000);
  CHECK(config_error("top_k(v, " + std::string(60000, '7') + ")").size() < 1000);
}

TEST_CASE("output_columns: each aggregate's columns, types and merge SQL placeholders") {
  auto names = [](const std::string& text) {
    std::string out;
    for (const auto& c : etld::flow::output_columns(spec_of(text, "m"))) {
      CHECK(!c.key);
      CHECK(c.merge_sql.find("{new:") != std::string::npos);
      out += c.name + ":" + c.sql_type + ";";
    }
    return out;
  };
  CHECK(names("count") == "m:bigint;");
  CHECK(names("sum(v)") == "m:numeric;");
  CHECK(names("avg(v)") == "m:numeric;m__sum:numeric;m__count:bigint;");
  CHECK(names("min(v)") == "m:jsonb;");
  CHECK(names("max(v) as timestamptz") == "m:timestamptz;");
  CHECK(names("first(v) as text") == "m:text;m__at:bigint;");
  CHECK(names("count_distinct(v)") == "m:bigint;m__set:jsonb;");
  CHECK(names("approx_count_distinct(v)") == "m:bigint;m__hll:jsonb;");
  CHECK(names("top_k(v, 5)") == "m:jsonb;m__counts:jsonb;");
}

}  // namespace
