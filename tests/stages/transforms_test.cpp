// The expression-driven transforms (map, filter, flat_map, reduce), built through the registry
// from YAML options like the loader does, and fed batches whose acks are recorded: every input
// must be settled exactly once, with the right status, at the right time.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "stages/engine/registry.hpp"
#include "tests/support/fake_contexts.hpp"
#include "tests/support/test_context.hpp"

namespace etld {
namespace {

using test::configure_stage;
using test::make_events;
using test::RecordingAcks;
using test::TestStageContext;

struct Harness {
  explicit Harness(const std::string& type, const std::string& yaml, int instance = 0)
      : ctx(type, instance), transform(configure_stage(type, yaml)->make_transform(instance)) {
    transform->start(ctx);
  }

  // Runs one batch of JSON payloads (tokens continue across calls) and returns the outputs.
  Batch run(const std::vector<std::string>& values) {
    Batch in = make_events(values, acks, next_token);
    for (std::size_t i = 0; i < in.size(); ++i) {
      in[i].topic = "orders";
      in[i].partition = 1;
      in[i].offset = static_cast<std::int64_t>(next_token + i);
    }
    next_token += values.size();
    Batch out;
    transform->process(in, out);
    while (transform->held() > 0) transform->resume(out, transform->held());  // downstream takes all
    return settle_rejected(out);
  }

  Batch settle_rejected(Batch& out) {
    // Rejected events travel on marked with their reason; here they stop, as at a sink without a
    // dead-letter destination, so that the tests see them settled dead_lettered.
    Batch kept;
    for (auto& e : out) {
      if (e.rejected()) {
        CHECK(e.rejection.rfind("stage '" + ctx.stage_name() + "': ", 0) == 0);
        rejections.push_back(e.rejection);
        e.ack.settle(AckStatus::dead_lettered);
      } else {
        kept.push_back(std::move(e));
      }
    }
    return kept;
  }
  std::vector<std::string> rejections;

  Batch finish() {
    Batch out;
    transform->finish(out);
    return out;
  }

  std::shared_ptr<RecordingAcks> acks = std::make_shared<RecordingAcks>();
  std::uint64_t next_token = 0;
  TestStageContext ctx;
  std::unique_ptr<Transform> transform;
};

std::string record_of(Event& e) { return e.record().to_json(); }

std::string config_error(const std::string& type, const std::string& yaml, int* line = nullptr) {
  try {
    configure_stage(type, yaml);
  } catch (const ConfigError& e) {
    if (line) *line = e.mark().line;
    return e.what();
  }
  return "<no error>";
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

void settle_outputs(Batch& out, AckStatus status = AckStatus::done) {
  for (auto& e : out) e.ack.settle(status);
}

TEST_CASE("the transforms are registered with their options") {
  for (const char* name : {"map", "filter", "flat_map", "reduce"}) {
    const StageType* type = find_stage_type(name);
    REQUIRE(type);
    CHECK(type->role == Role::transform);
    CHECK(!type->summary.empty());
    CHECK(!type->options.empty());
  }
}

// ---- map ----------------------------------------------------------------------------------------

TEST_CASE("map: set evaluates in order, later expressions see earlier results") {
  Harness h("map", R"y(
set:
  total: "price * qty"
  with_tax: "total * 2"
  name: "upper(name)"
  meta.source: "_topic"
)y");
  auto out = h.run({R"({"price": 3, "qty": 4, "name": "ab"})", R"({"price": 1.5, "qty": 2, "name": "c"})"});
  REQUIRE(out.size() == 2);
  CHECK(record_of(out[0]) ==
        R"({"price":3,"qty":4,"name":"AB","total":12,"with_tax":24,"meta":{"source":"orders"}})");
  CHECK(record_of(out[1]) ==
        R"({"price":1.5,"qty":2,"name":"C","total":3.0,"with_tax":6.0,"meta":{"source":"orders"}})");
  // Outputs keep their acks: nothing is settled until downstream settles.
  CHECK(h.acks->total() == 0);
  CHECK(out[0].ack.token() == 0);
  CHECK(out[1].ack.token() == 1);
  settle_outputs(out);
  CHECK(h.acks->exactly_once(2, AckStatus::done));
}

TEST_CASE("map: rename then remove, after set") {
  Harness h("map", R"(
set: {copy: "a"}
rename: {a: b, "n.x": "moved", missing: other}
remove: [drop, "n.y", nothing]
)");
  auto out = h.run({R"({"a": 1, "drop": true, "n": {"x": 1, "y": 2, "z": 3}})"});
  REQUIRE(out.size() == 1);
  CHECK(record_of(out[0]) == R"({"n":{"z":3},"copy":1,"b":1,"moved":1})");
  settle_outputs(out);
  CHECK(h.acks->exactly_once(1, AckStatus::done));
}

TEST_CASE("map: '.' replaces the whole record") {
  Harness h("map", R"(set: {".": "obj"})");
  auto out = h.run({R"({"obj": {"k": 1}, "other": 2})"});
  REQUIRE(out.size() == 1);
  CHECK(record_of(out[0]) == R"({"k":1})");
}

TEST_CASE("map: bad data is dead-lettered with a logged reason, good data passes") {
  Harness h("map", R"(set: {cents: "amount * 100"})");
  auto out = h.run({R"({"amount": 2})", R"({"amount": "x"})", "not json", R"({"other": 1})",
                    R"({"amount": [1]})", R"({"amount": 5})"});
  REQUIRE(out.size() == 2);
  CHECK(record_of(out[0]) == R"({"amount":2,"cents":200})");
  CHECK(record_of(out[1]) == R"({"amount":5,"cents":500})");
  for (std::uint64_t t : {1, 2, 3, 4}) CHECK(h.acks->settled_once(t, AckStatus::dead_lettered));
  CHECK(h.acks->total() == 4);
  REQUIRE(h.rejections.size() == 4);
  CHECK(contains(h.rejections[1], "map: invalid JSON"));
  settle_outputs(out);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(5, AckStatus::done));
  CHECK(h.acks->total() == 6);

  const auto& logs = h.ctx.logged();
  REQUIRE(logs.size() == 4);
  CHECK(contains(logs[0], "orders[1]@1"));
  CHECK(contains(logs[0], "set 'cents'"));
  CHECK(contains(logs[0], "cannot apply '*' to field 'amount' (string)"));
  CHECK(contains(logs[1], "invalid JSON"));
  CHECK(contains(logs[2], "field 'amount' is missing"));
  CHECK(contains(logs[3], "field 'amount' (array)"));
}

TEST_CASE("map: a record that is not an object cannot take fields") {
  Harness h("map", R"(set: {k: "1"})");
  auto out = h.run({"[1, 2]", "{}", "\"s\""});
  REQUIRE(out.size() == 1);
  CHECK(h.acks->settled_once(0, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(2, AckStatus::dead_lettered));
  REQUIRE(h.ctx.logged().size() == 2);
  CHECK(contains(h.ctx.logged()[0], "set 'k': the record is an array and 'k' is not an index"));
  CHECK(contains(h.ctx.logged()[1], "set 'k': the record (string) is not an object or array"));
}

TEST_CASE("map: an all-digit path segment indexes an array in set, rename and remove") {
  const std::string items = R"({"items": [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]})";
  {
    Harness h("map", R"(set: {"items.0.sku": "'Z'", "items.2": "1"})");
    auto out = h.run({items});
    REQUIRE(out.size() == 1);
    CHECK(record_of(out[0]) == R"({"items":[{"sku":"Z"},{"sku":"B"},1]})");
  }
  {
    Harness h("map", R"(remove: ["items.0", "items.5", "items.x"])");
    auto out = h.run({items});
    REQUIRE(out.size() == 1);
    CHECK(record_of(out[0]) == R"({"items":[{"sku":"B"},{"sku":"C"}]})");
  }
  {
    Harness h("map", R"(rename: {"items.1": second, "items.0.sku": "first_sku"})");
    auto out = h.run({items});
    REQUIRE(out.size() == 1);
    CHECK(record_of(out[0]) == R"({"items":[{},{"sku":"C"}],"second":{"sku":"B"},"first_sku":"A"})");
  }
  {
    // On an object, the same segment names a member.
    Harness h("map", R"(set: {"m.0": "'x'"})");
    auto out = h.run({R"({"m": {"0": "a", "1": "b"}})", "{}"});
    REQUIRE(out.size() == 2);
    CHECK(record_of(out[0]) == R"({"m":{"0":"x","1":"b"}})");
    CHECK(record_of(out[1]) == R"({"m":{"0":"x"}})");
  }
}

TEST_CASE("map: a path through a scalar or past an array's end dead-letters, replacing nothing") {
  Harness h("map", R"(set: {"n.x": "1"})");
  auto out = h.run({R"({"n": 5})", R"({"n": "s"})", R"({"n": null})", R"({"n": [1]})"});
  REQUIRE(out.size() == 1);
  CHECK(record_of(out[0]) == R"({"n":{"x":1}})");  // null is as good as missing
  REQUIRE(h.rejections.size() == 3);
  CHECK(contains(h.rejections[0],
                 "map: set 'n.x': 'n' (integer) is not an object or array: it has no field 'x'"));
  CHECK(contains(h.rejections[1], "'n' (string) is not an object or array"));
  CHECK(contains(h.rejections[2], "'n' is an array and 'x' is not an index"));

  Harness past("map", R"(set: {"items.2.sku": "'Z'"})");
  CHECK(past.run({R"({"items": [{"sku": "A"}, {"sku": "B"}]})"}).empty());
  REQUIRE(past.rejections.size() == 1);
  CHECK(contains(past.rejections[0], "index 2 is past the end of 'items' (2 elements)"));

  Harness rename("map", R"(rename: {a: "n.x"})");
  CHECK(rename.run({R"({"a": 1, "n": 5})"}).empty());
  REQUIRE(rename.rejections.size() == 1);
  CHECK(contains(rename.rejections[0], "map: rename 'a' -> 'n.x': 'n' (integer) is not an object or array"));
}

TEST_CASE("map: rejections are logged rate-limited, then summarised") {
  Harness h("map", R"(set: {y: "x + 1"})");
  std::vector<std::string> bad(20, R"({"x": "s"})");
  auto out = h.run(bad);
  CHECK(out.empty());
  CHECK(h.acks->exactly_once(20, AckStatus::dead_lettered));
  CHECK(h.ctx.logged().size() == 5);
  CHECK(h.finish().empty());
  REQUIRE(h.ctx.logged().size() == 6);
  CHECK(contains(h.ctx.logged()[5], "15 more"));
  CHECK(contains(h.ctx.logged()[5], "20 in total"));
}

TEST_CASE("map: configuration errors are located and name the column") {
  int line = -1;
  auto msg = config_error("map", "set:\n  total: \"price * (qty\"\n", &line);
  CHECK(line == 1);
  CHECK(contains(msg, "set 'total'"));
  CHECK(contains(msg, "at column 12"));
  CHECK(contains(msg, "price * (qty"));
  CHECK(contains(config_error("map", "{}"), "at least one of"));
  CHECK(contains(config_error("map", "set: {a: \"lower(\"}"), "expected an expression"));
  CHECK(contains(config_error("map", "set: {a: \"nope(1)\"}"), "unknown function 'nope'"));
  CHECK(contains(config_error("map", "remove: ['.']"), "does not name a field"));
}

TEST_CASE("an error in a hostile, deeply nested expression is located and stays short") {
  std::string deep(30000, '(');
  auto msg = config_error("filter", "where: \"" + deep + "1\"");
  CHECK(contains(msg, "nested deeper than 256 levels at column 256 of ...\"((("));
  CHECK(msg.size() < 300);
  // A short expression is quoted whole.
  CHECK(contains(config_error("filter", "where: \"(1\""), "of \"(1\""));
}

TEST_CASE("map and reduce report every bad expression of the stage at once") {
  try {
    configure_stage("map", "set:\n  a: \"1 +\"\n  ok: \"2\"\n  b: \"(\"\n  c: \"nope()\"\n");
    FAIL("configure accepted bad expressions");
  } catch (const ConfigErrors& e) {
    REQUIRE(e.all().size() == 3);
    CHECK(e.all()[0].mark().line == 1);
    CHECK(contains(e.all()[0].what(), "set 'a'"));
    CHECK(e.all()[1].mark().line == 3);
    CHECK(contains(e.all()[1].what(), "set 'b'"));
    CHECK(e.all()[2].mark().line == 4);
    CHECK(contains(e.all()[2].what(), "unknown function 'nope'"));
  }
  try {
    configure_stage("reduce",
                    "group_by: [\"a b\"]\naggregates:\n  x: \"median(v)\"\n  y: \"sum(+)\"\n  n: count\n");
    FAIL("configure accepted bad aggregates");
  } catch (const ConfigErrors& e) {
    REQUIRE(e.all().size() == 3);
    CHECK(contains(e.all()[0].what(), "group_by"));
    CHECK(contains(e.all()[1].what(), "unknown aggregate 'median'"));
    CHECK(contains(e.all()[2].what(), "aggregates 'y'"));
  }
}

// ---- filter -------------------------------------------------------------------------------------

TEST_CASE("filter: keeps truthy, settles dropped done and bad dead_lettered") {
  Harness h("filter", R"(where: "status == 'paid' and amount > 10")");
  auto out = h.run({R"({"status": "paid", "amount": 20})", R"({"status": "new", "amount": 20})",
                    R"({"status": "paid", "amount": 5})", R"({"status": "paid", "amount": "x"})", "{bad",
                    R"({"status": "paid", "amount": 11.5})", R"({"status": "new"})"});
  REQUIRE(out.size() == 2);
  CHECK(out[0].ack.token() == 0);
  CHECK(out[1].ack.token() == 5);
  CHECK(record_of(out[1]) == R"({"status":"paid","amount":11.5})");
  CHECK(h.acks->settled_once(1, AckStatus::done));
  CHECK(h.acks->settled_once(2, AckStatus::done));
  CHECK(h.acks->settled_once(6, AckStatus::done));  // short-circuit: amount never read
  CHECK(h.acks->settled_once(3, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(4, AckStatus::dead_lettered));
  CHECK(h.acks->total() == 5);
  settle_outputs(out);
  CHECK(h.acks->total() == 7);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(5, AckStatus::done));
}

TEST_CASE("filter: metadata and membership") {
  Harness h("filter", R"(where: "_offset % 2 == 0 && kind in ['a', 'b']")");
  auto out = h.run(
      {R"({"kind": "a"})", R"({"kind": "a"})", R"({"kind": "c"})", R"({"kind": "b"})", R"({"kind": "b"})"});
  REQUIRE(out.size() == 2);
  CHECK(out[0].offset == 0);
  CHECK(out[1].offset == 4);
}

TEST_CASE("filter: configuration errors") {
  CHECK(contains(config_error("filter", "{}"), "where"));
  int line = -1;
  auto msg = config_error("filter", "# comment\nwhere: \"a ==\"\n", &line);
  CHECK(line == 1);
  CHECK(contains(msg, "where: invalid expression"));
  CHECK(contains(msg, "at column 4"));
}

// ---- flat_map -----------------------------------------------------------------------------------

TEST_CASE("flat_map: one output per element; the input settles after all of them") {
  Harness h("flat_map", R"({explode: "items", as: "line"})");
  auto out = h.run({R"({"id": 1, "items": [10, {"sku": "b"}, "c"]})"});
  REQUIRE(out.size() == 3);
  // The exploded field is not copied into the outputs; each output's payload is its own record.
  CHECK(record_of(out[0]) == R"({"id":1,"line":10})");
  CHECK(record_of(out[1]) == R"({"id":1,"line":{"sku":"b"}})");
  CHECK(record_of(out[2]) == R"({"id":1,"line":"c"})");
  CHECK(out[1].value == R"({"id":1,"line":{"sku":"b"}})");
  for (auto& e : out) {
    CHECK(e.topic == "orders");
    CHECK(e.offset == 0);
    CHECK(e.ack.pending());
  }
  out[2].ack.settle(AckStatus::done);
  out[0].ack.settle(AckStatus::done);
  CHECK(h.acks->total() == 0);
  out[1].ack.settle(AckStatus::done);
  CHECK(h.acks->exactly_once(1, AckStatus::done));
}

TEST_CASE("flat_map: the worst child status reaches the parent") {
  Harness h("flat_map", R"(explode: "xs")");
  auto out = h.run({R"({"xs": [1, 2]})"});
  REQUIRE(out.size() == 2);
  CHECK(record_of(out[1]) == R"({"item":2})");  // default `as`
  out[0].ack.settle(AckStatus::dead_lettered);
  out[1].ack.settle(AckStatus::done);
  CHECK(h.acks->exactly_once(1, AckStatus::dead_lettered));
}

TEST_CASE("flat_map: empty and null settle done; non-arrays and bad JSON dead-letter") {
  Harness h("flat_map", R"(explode: "xs")");
  auto out = h.run({R"({"xs": []})", R"({})", R"({"xs": null})", R"({"xs": 5})", "nope", R"({"xs": ["a"]})"});
  REQUIRE(out.size() == 1);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->settled_once(1, AckStatus::done));
  CHECK(h.acks->settled_once(2, AckStatus::done));
  CHECK(h.acks->settled_once(3, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(4, AckStatus::dead_lettered));
  CHECK(h.acks->total() == 5);
  REQUIRE(h.ctx.logged().size() == 2);
  CHECK(contains(h.ctx.logged()[0], "gave integer, not an array"));
  settle_outputs(out);
  CHECK(h.acks->settled_once(5, AckStatus::done));
}

TEST_CASE("flat_map: an expression can build the array") {
  Harness h("flat_map", R"({explode: "[a, b, a + b]", as: "v"})");
  auto out = h.run({R"({"a": 1, "b": 2})"});
  REQUIRE(out.size() == 3);
  CHECK(out[2].record().find("v")->as_int() == 3);
  CHECK(record_of(out[0]) == R"({"a":1,"b":2,"v":1})");  // an expression leaves the record whole
  settle_outputs(out);
  CHECK(h.acks->exactly_once(1, AckStatus::done));
}

TEST_CASE("flat_map: an explode of metadata on a payload that is not JSON dead-letters") {
  Harness h("flat_map", R"(explode: "[_offset]")");
  auto out = h.run({"not json"});
  CHECK(out.empty());
  CHECK(h.acks->exactly_once(1, AckStatus::dead_lettered));
}

TEST_CASE("flat_map: outputs go out only as downstream asks, never more than asked") {
  Harness h("flat_map", R"({explode: "order.lines", as: "line"})");
  Batch in = make_events(
      {R"({"id": 7, "order": {"lines": [1, 2, 3, 4, 5, 6, 7], "n": 7}})", R"({"order": {"lines": [8]}})"},
      h.acks, h.next_token);
  Batch out;
  h.transform->process(in, out);
  CHECK(out.empty());
  CHECK(h.transform->held() == 8);
  h.transform->resume(out, 3);
  REQUIRE(out.size() == 3);
  CHECK(h.transform->held() == 5);
  CHECK(record_of(out[2]) == R"({"id":7,"order":{"n":7},"line":3})");
  h.transform->resume(out, 0);
  CHECK(out.size() == 3);
  h.transform->resume(out, 4);
  REQUIRE(out.size() == 7);
  CHECK(h.transform->held() == 1);
  h.transform->resume(out, 100);
  REQUIRE(out.size() == 8);
  CHECK(h.transform->held() == 0);
  CHECK(record_of(out[7]) == R"({"order":{},"line":8})");
  settle_outputs(out);
  CHECK(h.acks->exactly_once(2, AckStatus::done));
}

TEST_CASE("flat_map: past max_outputs, the input goes once to the dead letters with the reason") {
  Harness h("flat_map", R"({explode: "xs", max_outputs: 3})");
  const std::string payload = R"({"k": "a", "xs": [1, 2, 3, 4, 5]})";
  Batch in = make_events({payload}, h.acks, h.next_token);
  in[0].topic = "orders";
  in[0].partition = 2;
  in[0].offset = 41;
  Batch out;
  h.transform->process(in, out);
  CHECK(h.transform->held() == 4);
  h.transform->resume(out, 3);
  REQUIRE(out.size() == 3);
  CHECK(h.transform->held() == 1);  // the dead letter waits for demand too
  h.transform->resume(out, 1);
  REQUIRE(out.size() == 4);
  CHECK(h.transform->held() == 0);
  CHECK(record_of(out[2]) == R"({"k":"a","item":3})");
  REQUIRE(out[3].rejected());
  CHECK(contains(out[3].rejection,
                 "gave 5 elements, more than max_outputs (3): elements 3 to 4 were not emitted"));
  CHECK(out[3].value == payload);  // the whole input, with the elements not emitted
  CHECK(out[3].offset == 41);
  CHECK(out[3].partition == 2);
  for (auto& e : out) e.ack.settle(e.rejected() ? AckStatus::dead_lettered : AckStatus::done);
  CHECK(h.acks->exactly_once(1, AckStatus::dead_lettered));
}

TEST_CASE("flat_map: configuration errors") {
  CHECK(
      contains(config_error("flat_map", "{explode: xs, max_outputs: 0}"), "max_outputs: must be at least 1"));
  CHECK(contains(config_error("flat_map", "{}"), "explode"));
  CHECK(contains(config_error("flat_map", "explode: \"(xs\""), "at column 3"));
}

// ---- reduce -------------------------------------------------------------------------------------

TEST_CASE("reduce: per-group aggregates emitted at finish, in first-seen order") {
  Harness h("reduce", R"y(
group_by: [region]
aggregates:
  n: count
  total: "sum(amount)"
  lo: "min(amount)"
  hi: "max(amount)"
  mean: "avg(amount)"
  named: "count(name)"
)y",
            2);
  auto out = h.run({R"({"region": "eu", "amount": 10, "name": "x"})", R"({"region": "us", "amount": 1.5})",
                    R"({"region": "eu", "amount": 20})"});
  CHECK(out.empty());
  // Merged inputs stay unsettled: their aggregate exists only in memory.
  CHECK(h.acks->total() == 0);
  out = h.run({R"({"region": "eu", "amount": "bad"})", R"({"amount": 4})", R"({"region": "eu"})", "{"});
  CHECK(out.empty());
  // Rejected inputs settle right away, through the dead-letter path.
  CHECK(h.acks->settled_once(3, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(6, AckStatus::dead_lettered));
  CHECK(h.acks->total() == 2);

  out = h.finish();
  REQUIRE(out.size() == 3);
  CHECK(record_of(out[0]) ==
        R"({"region":"eu","n":3,"total":30,"lo":10,"hi":20,"mean":15,"named":1,"partition":2})");
  CHECK(record_of(out[1]) ==
        R"({"region":"us","n":1,"total":1.5,"lo":1.5,"hi":1.5,"mean":1.5,"named":0,"partition":2})");
  CHECK(record_of(out[2]) ==
        R"({"region":null,"n":1,"total":4,"lo":4,"hi":4,"mean":4,"named":0,"partition":2})");
  // Each result carries the acks of its group's inputs: they settle when it does, not before.
  CHECK(h.acks->total() == 2);
  out[1].ack.settle(AckStatus::done);  // us: input 1
  CHECK(h.acks->settled_once(1, AckStatus::done));
  CHECK(h.acks->total() == 3);
  out[0].ack.settle(AckStatus::dead_lettered);  // eu: inputs 0, 2, 5 (the result was dead-lettered)
  CHECK(h.acks->settled_once(0, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(2, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(5, AckStatus::dead_lettered));
  CHECK(h.acks->total() == 6);
  out[2].ack.settle(AckStatus::done);  // null region: input 4
  CHECK(h.acks->settled_once(4, AckStatus::done));
  CHECK(h.acks->total() == 7);
  // Accumulators are emptied by finish.
  CHECK(h.finish().empty());
}

TEST_CASE("reduce: a result lost downstream, or the reduce itself, settles its inputs failed") {
  Harness h("reduce", R"({group_by: [k], aggregates: {n: count}})");
  h.run({R"({"k": 1})", R"({"k": 2})", R"({"k": 1})"});
  auto out = h.finish();
  REQUIRE(out.size() == 2);
  CHECK(h.acks->total() == 0);
  out.erase(out.begin());  // a result dropped unsettled (a bug downstream) must not read as done
  CHECK(h.acks->settled_once(0, AckStatus::failed));
  CHECK(h.acks->settled_once(2, AckStatus::failed));
  CHECK(h.acks->total() == 2);
  settle_outputs(out);
  CHECK(h.acks->settled_once(1, AckStatus::done));

  // A reduce that goes (a restart) before end of input: its merged inputs were never written.
  Harness gone("reduce", R"({group_by: [k], aggregates: {n: count}})");
  gone.run({R"({"k": 1})", R"({"k": 2})"});
  CHECK(gone.acks->total() == 0);
  gone.transform.reset();
  CHECK(gone.acks->exactly_once(2, AckStatus::failed));
}

TEST_CASE("reduce: without group_by there is one group; nested group paths and metadata") {
  Harness total("reduce", R"y(aggregates: {events: count, sum: "sum(v)", top: "max(name)"})y");
  total.run({R"({"v": 1, "name": "b"})", R"({"v": 2.5, "name": "c"})", R"({"v": null, "name": "a"})"});
  auto out = total.finish();
  REQUIRE(out.size() == 1);
  CHECK(record_of(out[0]) == R"({"events":3,"sum":3.5,"top":"c","partition":0})");

  Harness nested("reduce", R"({group_by: [customer.id, _topic], aggregates: {n: count}})");
  nested.run({R"({"customer": {"id": 7}})", R"({"customer": {"id": 8}})", R"({"customer": {"id": 7}})"});
  out = nested.finish();
  REQUIRE(out.size() == 2);
  CHECK(record_of(out[0]) == R"({"customer":{"id":7},"_topic":"orders","n":2,"partition":0})");
  CHECK(record_of(out[1]) == R"({"customer":{"id":8},"_topic":"orders","n":1,"partition":0})");
}

TEST_CASE("reduce: an event merges entirely or not at all") {
  Harness h("reduce", R"y(aggregates: {n: count, lo: "min(v)", s: "sum(w)"})y");
  h.run({R"({"v": 3, "w": 1})", R"({"v": "text", "w": 100})", R"({"v": 1, "w": "x"})"});
  CHECK(h.acks->settled_once(1, AckStatus::dead_lettered));
  CHECK(h.acks->settled_once(2, AckStatus::dead_lettered));
  auto out = h.finish();
  REQUIRE(out.size() == 1);
  CHECK(record_of(out[0]) == R"({"n":1,"lo":3,"s":1,"partition":0})");
  CHECK(h.acks->total() == 2);
  settle_outputs(out);
  CHECK(h.acks->settled_once(0, AckStatus::done));
  CHECK(h.acks->total() == 3);
}

TEST_CASE("reduce: integer sums past 64 bits keep every digit; empty sums are null") {
  Harness h("reduce", R"y(aggregates: {s: "sum(v)", e: "sum(missing)", a: "avg(missing)"})y");
  h.run({R"({"v": 9223372036854775807})", R"({"v": 1})"});
  auto out = h.finish();
  REQUIRE(out.size() == 1);
  CHECK(out[0].record().find("s")->to_json() == "9223372036854775808");
  CHECK(out[0].record().find("e")->is_null());
  CHECK(out[0].record().find("a")->is_null());
}

TEST_CASE("reduce: sums are exact; a number past 76 digits dead-letters the event, keeping the sum") {
  Harness h("reduce", R"y(aggregates: {s: "sum(v)", a: "avg(v)", n: count, d: "count_distinct(v)"})y");
  auto out = h.run({R"({"v": 0.1})", R"({"v": 0.2})", R"({"v": 1e308})", R"({"v": 9223372036854775807})",
                    R"({"v": 9223372036854775807})"});
  CHECK(out.empty());
  REQUIRE(h.rejections.size() == 1);
  INFO(h.rejections[0]);
  CHECK(contains(h.rejections[0], "sum(v) for 's': 1e308 cannot be summed exactly"));
  auto result = h.finish();
  REQUIRE(result.size() == 1);
  CHECK(record_of(result[0]) ==
        R"({"s":18446744073709551614.3,"a":4611686018427387903.575,"n":4,"d":3,"partition":0})");
}

TEST_CASE("reduce: no input, no output") {
  Harness h("reduce", R"(aggregates: {n: count})");
  CHECK(h.finish().empty());
}

TEST_CASE("reduce: configuration errors") {
  CHECK(contains(config_error("reduce", "{}"), "aggregates"));
  CHECK(contains(config_error("reduce", "aggregates: {x: \"median(v)\"}"), "unknown aggregate 'median'"));
  CHECK(contains(config_error("reduce", "aggregates: {x: \"sum v\"}"), "unknown aggregate"));
  CHECK(contains(config_error("reduce", "aggregates: {x: \"sum()\"}"), "needs an expression"));
  int line = -1;
  auto msg = config_error("reduce", "aggregates:\n  x: \"sum(a +)\"\n", &line);
  CHECK(line == 1);
  CHECK(contains(msg, "aggregates 'x'"));
  CHECK(contains(msg, "at column 7 of \"sum(a +)\""));
  CHECK(contains(config_error("reduce", "{group_by: [\"a b\"], aggregates: {n: count}}"), "group_by"));
}

}  // namespace
}  // namespace etld
