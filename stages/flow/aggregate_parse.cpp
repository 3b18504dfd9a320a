// parse_aggregate (aggregate.hpp): "sum(amount)", "top_k(product, 3)", "last(price) as numeric".
#include <algorithm>
#include <string_view>

#include "config/schema/diagnostics.hpp"
#include "stages/builtin/reject.hpp"
#include "stages/flow/aggregate.hpp"

namespace etld::flow {
namespace {

constexpr const char* kAggregateForms =
    "count, count(expr), sum(expr), min(expr), max(expr), avg(expr), first(expr), last(expr), "
    "count_distinct(expr), approx_count_distinct(expr) or top_k(expr, k); min, max, first and last "
    "may end with ' as TYPE' (jsonb, text, numeric, bigint, double precision, boolean, timestamptz)";

constexpr std::size_t kMaxTopK = 10000;

struct KindName {
  std::string_view name;
  AggKind kind;
};
constexpr KindName kKinds[] = {{"count", AggKind::count},
                               {"sum", AggKind::sum},
                               {"min", AggKind::min},
                               {"max", AggKind::max},
                               {"avg", AggKind::avg},
                               {"first", AggKind::first},
                               {"last", AggKind::last},
                               {"count_distinct", AggKind::count_distinct},
                               {"approx_count_distinct", AggKind::approx_count_distinct},
                               {"top_k", AggKind::top_k}};

constexpr std::string_view kColumnTypes[] = {"jsonb",   "text",       "numeric", "bigint", "double precision",
                                             "boolean", "timestamptz"};

bool value_typed(AggKind k) {
  return k == AggKind::min || k == AggKind::max || k == AggKind::first || k == AggKind::last;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls visit(i, c, depth) for each character c at i >= from of `t` outside quoted strings and
// `backquoted` path segments, with the nesting depth of () and [] after it; returns the first i
// where visit returns true, or npos.
template <class Visit>
std::size_t scan_unquoted(std::string_view t, std::size_t from, Visit visit) {
  int depth = 0;
  char quote = 0;
  for (std::size_t i = from; i < t.size(); ++i) {
    char c = t[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`')
      quote = c;
    else if (c == '(' || c == '[')
      ++depth;
    else if (c == ')' || c == ']')
      --depth;
    if (visit(i, c, depth)) return i;
  }
  return std::string_view::npos;
}

// The position of the parenthesis closing the one at `open`; npos if none.
std::size_t closing_paren(std::string_view t, std::size_t open) {
  return scan_unquoted(t, open, [](std::size_t, char c, int depth) { return c == ')' && depth == 0; });
}

// The last comma of `t` outside parentheses, brackets and strings; npos if none.
std::size_t last_top_level_comma(std::string_view t) {
  std::size_t found = std::string_view::npos;
  scan_unquoted(t, 0, [&](std::size_t i, char c, int depth) {
    if (c == ',' && depth == 0) found = i;
    return false;
  });
  return found;
}

// `s` for an error message, cut short: a hostile 60,000-character option stays one readable line.
std::string shown(std::string_view s) {
  constexpr std::size_t kShown = 60;
  return s.size() <= kShown ? std::string(s) : std::string(s.substr(0, kShown)) + "...";
}

}  // namespace

AggregateSpec parse_aggregate(const std::string& output, const std::string& text, const YAML::Mark& mark) {
  AggregateSpec spec;
  spec.output = output;
  spec.text = text;
  std::string option = "aggregates '" + output + "'";
  std::string_view t = trim(text);
  if (t == "count" || t == "count()") return spec;
  auto open = t.find('(');
  std::string_view name = trim(t.substr(0, open));
  const KindName* kind = nullptr;
  for (const auto& k : kKinds)
    if (k.name == name) kind = &k;
  if (!kind)
    throw ConfigError(mark, option + ": unknown aggregate '" + shown(name.empty() ? t : name) +
                                "'; expected " + kAggregateForms);
  std::string form = kind->kind == AggKind::top_k ? "(expression, k)" : "(expression)";
  std::size_t close = open == std::string_view::npos ? open : closing_paren(t, open);
  if (close == std::string_view::npos)
    throw ConfigError(mark, option + ": expected " + std::string(name) + form);
  spec.kind = kind->kind;
  spec.sql_type = "jsonb";
  std::string_view rest = trim(t.substr(close + 1));
  if (!rest.empty()) {
    if (rest.substr(0, 3) != "as " || !value_typed(spec.kind))
      throw ConfigError(mark, option + ": unexpected '" + shown(rest) + "' after " + std::string(name) +
                                  form + (value_typed(spec.kind) ? "; expected ' as TYPE'" : ""));
    std::string_view type = trim(rest.substr(3));
    if (std::find(std::begin(kColumnTypes), std::end(kColumnTypes), type) == std::end(kColumnTypes))
      throw ConfigError(mark, option + ": unknown type '" + shown(type) +
                                  "' after 'as'; expected jsonb, text, numeric, bigint, double precision, "
                                  "boolean or timestamptz");
    spec.sql_type = std::string(type);
  }
  std::size_t base = static_cast<std::size_t>(t.data() - text.data());
  std::size_t inner_begin = base + open + 1;
  std::string inner = text.substr(inner_begin, base + close - inner_begin);
  if (spec.kind == AggKind::top_k) {
    auto comma = last_top_level_comma(inner);
    std::string_view k_text =
        comma == std::string::npos ? std::string_view() : trim(std::string_view(inner).substr(comma + 1));
    std::size_t k = 0;
    bool ok = !k_text.empty() && k_text.size() <= 6 &&
              std::all_of(k_text.begin(), k_text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (ok) k = std::stoul(std::string(k_text));
    if (!ok || k == 0 || k > kMaxTopK)
      throw ConfigError(
          mark,
          option + ": top_k needs (expression, k) with k an integer from 1 to " + std::to_string(kMaxTopK) +
              (comma == std::string::npos ? std::string(", got no k") : ", got '" + shown(k_text) + "'"));
    spec.k = k;
    inner.resize(comma);
  }
  if (trim(inner).empty())
    throw ConfigError(mark, option + ": " + std::string(name) + "() needs an expression");
  spec.input = compile_expr_option(inner, option, mark, text, inner_begin);
  return spec;
}

}  // namespace etld::flow
