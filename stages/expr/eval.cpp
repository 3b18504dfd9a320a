// The evaluator's operators: arithmetic (overflow is an error, never a wrap or an infinity),
// comparisons, membership, metadata, and the messages that name the operand at fault.
#include "stages/expr/eval.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "stages/expr/functions.hpp"

namespace etld::expr_detail {

namespace {

const char* op_text(Op op) {
  switch (op) {
    case Op::add: return "+";
    case Op::sub: return "-";
    case Op::mul: return "*";
    case Op::div: return "/";
    case Op::mod: return "%";
    case Op::lt: return "<";
    case Op::le: return "<=";
    case Op::gt: return ">";
    case Op::ge: return ">=";
    case Op::neg: return "unary -";
    default: return "?";
  }
}

}  // namespace

Value Evaluator::eval(const Node& n) {
  switch (n.op) {
    case Op::literal: return n.literal;
    case Op::field: {
      const Value* v = lookup(n);
      return v ? *v : Value();
    }
    case Op::root: return record();
    case Op::meta: return meta(n.meta);
    case Op::neg: return negate(n);
    case Op::not_: return Value(!truthy(*n.args[0]));
    case Op::and_: return Value(truthy(*n.args[0]) && truthy(*n.args[1]));
    case Op::or_: return Value(truthy(*n.args[0]) || truthy(*n.args[1]));
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::mod: return arith(n);
    case Op::eq:
    case Op::ne: {
      Value sa, sb;
      const Value* a = ref(*n.args[0], sa);
      const Value* b = ref(*n.args[1], sb);
      bool eq = *a == *b;
      return Value(n.op == Op::eq ? eq : !eq);
    }
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge: {
      Value sa, sb;
      const Value* a = ref(*n.args[0], sa);
      const Value* b = ref(*n.args[1], sb);
      int c = order(*a, *b, n, *n.args[0], *n.args[1]);
      switch (n.op) {
        case Op::lt: return Value(c < 0);
        case Op::le: return Value(c <= 0);
        case Op::gt: return Value(c > 0);
        default: return Value(c >= 0);
      }
    }
    case Op::in:
    case Op::not_in: {
      bool found = member(n);
      return Value(n.op == Op::in ? found : !found);
    }
    case Op::array: {
      Array items;
      items.reserve(n.args.size());
      for (const auto& a : n.args) items.push_back(eval(*a));
      return Value(std::move(items));
    }
    case Op::call: return call(n);
  }
  return Value();
}

Value Evaluator::meta(Meta m) const {
  switch (m) {
    case Meta::key: return event_.has_key ? Value(event_.key) : Value();
    case Meta::topic: return event_.topic.empty() ? Value() : Value(event_.topic.str());
    case Meta::partition: return Value(std::int64_t{event_.partition});
    case Meta::offset: return Value(event_.offset);
    case Meta::timestamp: return Value(event_.timestamp_ms);
  }
  return Value();
}

// "field 'a.b' is missing" / "field 'a.b' (string)" / "string" for messages.
std::string Evaluator::what(const Node& n, const Value& v) {
  if (n.op == Op::field) {
    if (v.is_null())
      return lookup(n) ? "field '" + n.path_text + "' is null" : "field '" + n.path_text + "' is missing";
    return "field '" + n.path_text + "' (" + kind_name(v.kind()) + ")";
  }
  if (n.op == Op::meta && v.is_null()) return n.meta == Meta::key ? "_key is missing" : "_topic is missing";
  return std::string(kind_name(v.kind())) + (v.is_null() ? "" : " " + abbreviated(v));
}

std::string Evaluator::abbreviated(const Value& v) {
  std::string s = v.to_json();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

void Evaluator::type_error(const Node& op, const Node& a, const Value& va, const Node* b, const Value* vb) {
  // A missing or null operand is the most common cause: say just that.
  std::string name = op.op == Op::call ? std::string(fn_name(op.fn)) + "()" : std::string(op_text(op.op));
  if (va.is_null()) throw ExprError(what(a, va) + ", cannot apply '" + name + "'");
  if (b && vb->is_null()) throw ExprError(what(*b, *vb) + ", cannot apply '" + name + "'");
  std::string msg = "cannot apply '" + name + "' to " + what(a, va);
  if (b) msg += " and " + what(*b, *vb);
  throw ExprError(msg);
}

Value Evaluator::negate(const Node& n) {
  Value s;
  const Value* v = ref(*n.args[0], s);
  if (v->kind() == Value::Kind::integer) {
    if (v->as_int() == std::numeric_limits<std::int64_t>::min())
      throw ExprError("integer overflow in unary -");
    return Value(-v->as_int());
  }
  if (v->kind() == Value::Kind::real) return Value(-v->as_double());
  type_error(n, *n.args[0], *v, nullptr, nullptr);
}

Value Evaluator::arith(const Node& n) {
  Value sa, sb;
  const Value* a = ref(*n.args[0], sa);
  const Value* b = ref(*n.args[1], sb);
  using K = Value::Kind;
  if (a->kind() == K::integer && b->kind() == K::integer) {
    std::int64_t x = a->as_int(), y = b->as_int(), r = 0;
    bool overflow = false;
    switch (n.op) {
      case Op::add: overflow = __builtin_add_overflow(x, y, &r); break;
      case Op::sub: overflow = __builtin_sub_overflow(x, y, &r); break;
      case Op::mul: overflow = __builtin_mul_overflow(x, y, &r); break;
      case Op::div:
      case Op::mod:
        if (y == 0) throw ExprError(n.op == Op::div ? "division by zero" : "modulo by zero");
        if (x == std::numeric_limits<std::int64_t>::min() && y == -1) {
          if (n.op == Op::mod) return Value(std::int64_t{0});
          overflow = true;
          break;
        }
        r = n.op == Op::div ? x / y : x % y;
        break;
      default: break;
    }
    if (overflow)
      throw ExprError("integer overflow in " + std::to_string(x) + " " + op_text(n.op) + " " +
                      std::to_string(y));
    return Value(r);
  }
  if (a->is_number() && b->is_number()) {
    double x = a->as_double(), y = b->as_double(), r = 0;
    switch (n.op) {
      case Op::add: r = x + y; break;
      case Op::sub: r = x - y; break;
      case Op::mul: r = x * y; break;
      case Op::div:
        if (y == 0) throw ExprError("division by zero");
        r = x / y;
        break;
      case Op::mod:
        if (y == 0) throw ExprError("modulo by zero");
        r = std::fmod(x, y);
        break;
      default: break;
    }
    // JSON has no infinity or NaN: an overflow is a data error, never a null in the output.
    if (!std::isfinite(r))
      throw ExprError("number overflow in " + Value(x).to_json() + " " + op_text(n.op) + " " +
                      Value(y).to_json());
    return Value(r);
  }
  if (n.op == Op::add && a->kind() == K::string && b->kind() == K::string) {
    std::string out;
    out.reserve(a->as_string().size() + b->as_string().size());
    out += a->as_string();
    out += b->as_string();
    return Value(std::move(out));
  }
  type_error(n, *n.args[0], *a, n.args[1].get(), b);
}

int Evaluator::order(const Value& a, const Value& b, const Node& op, const Node& na, const Node& nb) {
  using K = Value::Kind;
  if (a.kind() == K::integer && b.kind() == K::integer)
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
  if (a.is_number() && b.is_number()) {
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y;
  }
  if (a.kind() == K::string && b.kind() == K::string) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0;
  }
  if (a.kind() == K::boolean && b.kind() == K::boolean) return int(a.as_bool()) - int(b.as_bool());
  type_error(op, na, a, &nb, &b);
}

bool Evaluator::member(const Node& n) {
  Value sa, sb;
  const Value* a = ref(*n.args[0], sa);
  const Value* b = ref(*n.args[1], sb);
  switch (b->kind()) {
    case Value::Kind::array:
      for (const auto& item : b->as_array())
        if (*a == item) return true;
      return false;
    case Value::Kind::object:
      if (a->kind() != Value::Kind::string) break;
      return b->find(a->as_string()) != nullptr;
    case Value::Kind::string:
      if (a->kind() != Value::Kind::string) break;
      return b->as_string().find(a->as_string()) != std::string::npos;
    default: break;
  }
  throw ExprError("'in' needs a list, an object or a string on its right (with a string on its left), got " +
                  what(*n.args[0], *a) + " in " + what(*n.args[1], *b));
}
}  // namespace etld::expr_detail
