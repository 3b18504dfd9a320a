// The built-in functions: their table (names, arities) and what each computes. The string
// functions count and cut in code points, not bytes; number conversions refuse what does not fit
// a 64-bit integer rather than wrap.
#include "stages/expr/functions.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "stages/expr/eval.hpp"

namespace etld::expr_detail {

namespace {

constexpr std::array<FnSpec, 24> kFunctions{{
    {"if", Fn::if_, 3, 3},
    {"lower", Fn::lower, 1, 1},
    {"upper", Fn::upper, 1, 1},
    {"trim", Fn::trim, 1, 1},
    {"length", Fn::length, 1, 1},
    {"concat", Fn::concat, 0, -1},
    {"contains", Fn::contains, 2, 2},
    {"starts_with", Fn::starts_with, 2, 2},
    {"ends_with", Fn::ends_with, 2, 2},
    {"substr", Fn::substr, 2, 3},
    {"replace", Fn::replace, 3, 3},
    {"to_int", Fn::to_int, 1, 1},
    {"to_number", Fn::to_number, 1, 1},
    {"to_string", Fn::to_string, 1, 1},
    {"to_bool", Fn::to_bool, 1, 1},
    {"coalesce", Fn::coalesce, 1, -1},
    {"abs", Fn::abs, 1, 1},
    {"round", Fn::round, 1, 2},
    {"floor", Fn::floor, 1, 1},
    {"ceil", Fn::ceil, 1, 1},
    {"min", Fn::min, 2, -1},
    {"max", Fn::max, 2, -1},
    {"now_ms", Fn::now_ms, 0, 0},
    {"is_null", Fn::is_null, 1, 1},
}};

bool fits_int64(double d) { return d >= -9223372036854775808.0 && d < 9223372036854775808.0; }

std::int64_t checked_int(double d, const char* what) {
  if (!std::isfinite(d) || !fits_int64(d))
    throw ExprError(std::string(what) + ": " + Value(d).to_json() + " does not fit a 64-bit integer");
  return static_cast<std::int64_t>(d);
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// Byte offset of code point `cp` (clamped to the end).
std::size_t utf8_offset(std::string_view s, std::size_t cp) {
  std::size_t i = 0;
  while (i < s.size() && cp > 0) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    --cp;
  }
  return i;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Parses text as a JSON-style number: integer when it has no fraction or exponent.
bool parse_number(std::string_view text, Value& out) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.empty()) return false;
  std::string_view digits = text.front() == '+' ? text.substr(1) : text;
  std::int64_t i = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), i);
  if (res.ec == std::errc() && res.ptr == digits.data() + digits.size()) {
    out = Value(i);
    return true;
  }
  double d = 0;
  auto rd = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (rd.ec == std::errc() && rd.ptr == digits.data() + digits.size() && std::isfinite(d)) {
    out = Value(d);
    return true;
  }
  return false;
}

}  // namespace

const FnSpec* find_function(std::string_view name) {
  for (const auto& f : kFunctions)
    if (name == f.name) return &f;
  return nullptr;
}

const char* fn_name(Fn fn) {
  for (const auto& f : kFunctions)
    if (f.fn == fn) return f.name;
  return "?";
}

std::string function_names() {
  std::string known;
  for (const auto& f : kFunctions) {
    if (!known.empty()) known += ", ";
    known += f.name;
  }
  return known;
}

// Argument `i` of a call, checked to be of `kind`.
const Value& Evaluator::arg(const Node& n, std::size_t i, Value& scratch, Value::Kind kind) {
  const Value* v = ref(*n.args[i], scratch);
  if (v->kind() == kind || (kind == Value::Kind::real && v->is_number())) return *v;
  bad_arg(n, i, *v,
          kind == Value::Kind::real     ? "a number"
          : kind == Value::Kind::string ? "a string"
                                        : "an integer");
}

void Evaluator::bad_arg(const Node& n, std::size_t i, const Value& v, const char* expected) {
  std::string wanted = std::string(expected) + " as argument " + std::to_string(i + 1);
  if (v.is_null())
    throw ExprError(std::string(fn_name(n.fn)) + "(): " + what(*n.args[i], v) + " (expected " + wanted + ")");
  throw ExprError(std::string(fn_name(n.fn)) + "() expects " + wanted + ", got " + what(*n.args[i], v));
}

Value Evaluator::call(const Node& n) {
  using K = Value::Kind;
  Value s0, s1, s2;
  switch (n.fn) {
    case Fn::if_: return truthy(*n.args[0]) ? eval(*n.args[1]) : eval(*n.args[2]);
    case Fn::coalesce:
      for (const auto& a : n.args) {
        Value v = eval(*a);
        if (!v.is_null()) return v;
      }
      return Value();
    case Fn::is_null: return Value(ref(*n.args[0], s0)->is_null());
    case Fn::now_ms:
      return Value(static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count()));
    case Fn::lower:
    case Fn::upper: {
      std::string out = arg(n, 0, s0, K::string).as_string();
      for (auto& c : out) {
        if (n.fn == Fn::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (n.fn == Fn::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      return Value(std::move(out));
    }
    case Fn::trim: {
      std::string_view sv = arg(n, 0, s0, K::string).as_string();
      while (!sv.empty() && is_space(sv.front())) sv.remove_prefix(1);
      while (!sv.empty() && is_space(sv.back())) sv.remove_suffix(1);
      return Value(std::string(sv));
    }
    case Fn::length: {
      const Value* v = ref(*n.args[0], s0);
      switch (v->kind()) {
        case K::string: return Value(static_cast<std::int64_t>(utf8_length(v->as_string())));
        case K::array: return Value(static_cast<std::int64_t>(v->as_array().size()));
        case K::object: return Value(static_cast<std::int64_t>(v->as_object().size()));
        default: bad_arg(n, 0, *v, "a string, an array or an object");
      }
    }
    case Fn::concat: {
      std::string out;
      for (const auto& a : n.args) {
        Value s;
        const Value* v = ref(*a, s);
        if (v->kind() == K::string)
          out += v->as_string();
        else if (!v->is_null())
          v->append_json(out);
      }
      return Value(std::move(out));
    }
    case Fn::contains: {
      const Value* hay = ref(*n.args[0], s0);
      if (hay->kind() == K::array) {
        const Value* needle = ref(*n.args[1], s1);
        for (const auto& item : hay->as_array())
          if (item == *needle) return Value(true);
        return Value(false);
      }
      if (hay->kind() != K::string) bad_arg(n, 0, *hay, "a string or an array");
      const auto& sub = arg(n, 1, s1, K::string).as_string();
      return Value(hay->as_string().find(sub) != std::string::npos);
    }
    case Fn::starts_with:
    case Fn::ends_with: {
      std::string_view str = arg(n, 0, s0, K::string).as_string();
      std::string_view fix = arg(n, 1, s1, K::string).as_string();
      return Value(n.fn == Fn::starts_with ? str.starts_with(fix) : str.ends_with(fix));
    }
    case Fn::substr: {
      std::string_view str = arg(n, 0, s0, K::string).as_string();
      std::int64_t start = arg(n, 1, s1, K::integer).as_int();
      auto len_cp = static_cast<std::int64_t>(utf8_length(str));
      if (start < 0) start = std::max<std::int64_t>(0, len_cp + start);
      std::size_t b = utf8_offset(str, static_cast<std::size_t>(start));
      std::size_t e = str.size();
      if (n.args.size() == 3) {
        std::int64_t len = arg(n, 2, s2, K::integer).as_int();
        if (len < 0) throw ExprError("substr(): negative length " + std::to_string(len));
        e = b + utf8_offset(str.substr(b), static_cast<std::size_t>(len));
      }
      return Value(std::string(str.substr(b, e - b)));
    }
    case Fn::replace: {
      const std::string& str = arg(n, 0, s0, K::string).as_string();
      const std::string& from = arg(n, 1, s1, K::string).as_string();
      const std::string& to = arg(n, 2, s2, K::string).as_string();
      if (from.empty()) return Value(str);
      std::string out;
      std::size_t pos = 0;
      for (;;) {
        std::size_t hit = str.find(from, pos);
        if (hit == std::string::npos) break;
        out.append(str, pos, hit - pos);
        out += to;
        pos = hit + from.size();
      }
      out.append(str, pos);
      return Value(std::move(out));
    }
    case Fn::to_int: {
      const Value* v = ref(*n.args[0], s0);
      switch (v->kind()) {
        case K::null: return Value();
        case K::integer: return *v;
        case K::real: return Value(checked_int(std::trunc(v->as_double()), "to_int()"));
        case K::boolean: return Value(std::int64_t{v->as_bool() ? 1 : 0});
        case K::string: {
          Value num;
          if (!parse_number(v->as_string(), num))
            throw ExprError("to_int(): " + what(*n.args[0], *v) + " is not a number");
          if (num.kind() == K::integer) return num;
          return Value(checked_int(std::trunc(num.as_double()), "to_int()"));
        }
        default: bad_arg(n, 0, *v, "a number, a string or a boolean");
      }
    }
    case Fn::to_number: {
      const Value* v = ref(*n.args[0], s0);
      switch (v->kind()) {
        case K::null:
        case K::integer:
        case K::real: return *v;
        case K::boolean: return Value(std::int64_t{v->as_bool() ? 1 : 0});
        case K::string: {
          Value num;
          if (!parse_number(v->as_string(), num))
            throw ExprError("to_number(): " + what(*n.args[0], *v) + " is not a number");
          return num;
        }
        default: bad_arg(n, 0, *v, "a number, a string or a boolean");
      }
    }
    case Fn::to_string: {
      const Value* v = ref(*n.args[0], s0);
      if (v->is_null()) return Value();
      return Value(v->to_text());
    }
    case Fn::to_bool: {
      const Value* v = ref(*n.args[0], s0);
      switch (v->kind()) {
        case K::null:
        case K::boolean: return *v;
        case K::integer:
        case K::real: return Value(v->as_double() != 0);
        case K::string: {
          std::string t = v->as_string();
          for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (t == "true" || t == "1" || t == "yes" || t == "y" || t == "on" || t == "t") return Value(true);
          if (t == "false" || t == "0" || t == "no" || t == "n" || t == "off" || t == "f" || t.empty())
            return Value(false);
          throw ExprError("to_bool(): " + what(*n.args[0], *v) + " is not a boolean");
        }
        default: bad_arg(n, 0, *v, "a boolean, a number or a string");
      }
    }
    case Fn::abs: {
      const Value& v = arg(n, 0, s0, K::real);
      if (v.kind() == K::integer) {
        if (v.as_int() == std::numeric_limits<std::int64_t>::min())
          throw ExprError("integer overflow in abs()");
        return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
      }
      return Value(std::fabs(v.as_double()));
    }
    case Fn::round: {
      const Value& v = arg(n, 0, s0, K::real);
      if (n.args.size() == 1) {
        if (v.kind() == K::integer) return v;
        return Value(checked_int(std::round(v.as_double()), "round()"));
      }
      std::int64_t digits = arg(n, 1, s1, K::integer).as_int();
      if (digits < -18 || digits > 18) throw ExprError("round(): digits must be between -18 and 18");
      if (v.kind() == K::integer && digits >= 0) return v;
      double r;
      if (digits >= 0) {
        double p = std::pow(10.0, static_cast<double>(digits));
        r = std::round(v.as_double() * p) / p;
      } else {
        double q = std::pow(10.0, static_cast<double>(-digits));
        r = std::round(v.as_double() / q) * q;
      }
      if (v.kind() == K::integer) return Value(checked_int(r, "round()"));
      if (!std::isfinite(r)) throw ExprError("round(): number overflow rounding " + v.to_json());
      return Value(r);
    }
    case Fn::floor:
    case Fn::ceil: {
      const Value& v = arg(n, 0, s0, K::real);
      if (v.kind() == K::integer) return v;
      double d = n.fn == Fn::floor ? std::floor(v.as_double()) : std::ceil(v.as_double());
      return Value(checked_int(d, n.fn == Fn::floor ? "floor()" : "ceil()"));
    }
    case Fn::min:
    case Fn::max: {
      Value best;
      std::size_t best_i = 0;
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        Value v = eval(*n.args[i]);
        if (v.is_null()) continue;
        if (best.is_null()) {
          best = std::move(v);
          best_i = i;
          continue;
        }
        int c = order(v, best, n, *n.args[i], *n.args[best_i]);
        if (n.fn == Fn::min ? c < 0 : c > 0) {
          best = std::move(v);
          best_i = i;
        }
      }
      return best;
    }
  }
  return Value();
}
}  // namespace etld::expr_detail
