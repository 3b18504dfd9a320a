// libFuzzer target: the expression language (stages/expr/), compiled and evaluated.
// Input: the expression on the first line, the event's JSON record on the rest.
// Checks: compile() throws nothing but ExprSyntaxError, with a column inside the text; eval() and
// eval_bool() throw nothing but ExprError and JsonError (what map and filter catch: anything else
// would fail the stage instead of dead-lettering the record), and agree on truthiness.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "stages/engine/event.hpp"
#include "stages/engine/value.hpp"
#include "stages/expr/expr.hpp"

using namespace etld;

namespace {

Event make_event(std::string_view json) {
  Event e;
  e.value = std::string(json);
  e.key = "key-1";
  e.has_key = true;
  e.topic = "orders";
  e.partition = 3;
  e.offset = 42;
  e.timestamp_ms = 1'700'000'000'000;
  return e;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "expr_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  std::string_view text = in.substr(0, nl);
  std::string_view json = nl == std::string_view::npos ? std::string_view("{}") : in.substr(nl + 1);

  std::optional<Expr> expr;
  try {
    expr.emplace(Expr::compile(text));
  } catch (const ExprSyntaxError& e) {
    if (e.column > text.size()) fail("syntax error column beyond the expression's end");
    return 0;
  }
  (void)expr->fields();

  std::optional<bool> value_truthy, bool_result;
  Event a = make_event(json);
  try {
    Value v = expr->eval(a);
    value_truthy = v.truthy();
    (void)v.to_json();
  } catch (const ExprError&) {
  } catch (const JsonError&) {
  }
  Event b = make_event(json);
  try {
    bool_result = expr->eval_bool(b);
  } catch (const ExprError&) {
  } catch (const JsonError&) {
  }
  if (value_truthy && bool_result && *value_truthy != *bool_result)
    fail("eval(e).truthy() and eval_bool(e) disagree");
  return 0;
}
