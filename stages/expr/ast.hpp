// The tree an expression compiles to: what the parser builds, the evaluator walks and a call
// node names from the function table. Internal to stages/expr/ (includers use expr.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "stages/engine/value.hpp"
#include "stages/expr/expr.hpp"

namespace etld::expr_detail {

enum class Op : std::uint8_t {
  literal,
  field,
  root,
  meta,
  neg,
  not_,
  and_,
  or_,
  add,
  sub,
  mul,
  div,
  mod,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  in,
  not_in,
  array,
  call,
};

enum class Meta : std::uint8_t { key, topic, partition, offset, timestamp };

// The built-in functions; their names and arities are in functions.hpp.
enum class Fn : std::uint8_t {
  if_,
  lower,
  upper,
  trim,
  length,
  concat,
  contains,
  starts_with,
  ends_with,
  substr,
  replace,
  to_int,
  to_number,
  to_string,
  to_bool,
  coalesce,
  abs,
  round,
  floor,
  ceil,
  min,
  max,
  now_ms,
  is_null,
};

struct Segment {
  std::string name;
  std::int64_t index = -1;  // >= 0 when the segment is all digits: also indexes arrays
};

// What the lexer and the parser throw: the message names the column, as does the exception.
[[noreturn]] inline void syntax_error(std::string message, std::size_t column) {
  throw ExprSyntaxError(std::move(message) + " at column " + std::to_string(column), column);
}

}  // namespace etld::expr_detail

namespace etld {

struct Expr::Node {
  expr_detail::Op op = expr_detail::Op::literal;
  expr_detail::Meta meta = expr_detail::Meta::key;
  expr_detail::Fn fn = expr_detail::Fn::if_;
  std::size_t column = 0;
  std::size_t height = 1;                   // levels of the subtree, at most Expr::kMaxDepth
  Value literal;                            // Op::literal
  std::vector<expr_detail::Segment> path;   // Op::field
  std::string path_text;                    // Op::field: as written, for messages ("a.b")
  std::vector<std::unique_ptr<Node>> args;  // operands / function arguments / array items
};

}  // namespace etld

namespace etld::expr_detail {
using Node = Expr::Node;
}  // namespace etld::expr_detail
