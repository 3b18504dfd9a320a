// The expression language of map/filter/flat_map/reduce: field paths, literals, arithmetic,
// comparisons, boolean logic and a few string and number functions. See docs/expressions.md.
// Compiled once per stage; evaluation is const and thread-safe.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "stages/engine/event.hpp"
#include "stages/engine/value.hpp"

namespace etld {

// A data error while evaluating (type mismatch, division by zero): the event is dead-lettered.
struct ExprError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A syntax error at compile time; `column` is 0-based within the expression text.
struct ExprSyntaxError : std::runtime_error {
  ExprSyntaxError(std::string message, std::size_t column)
      : std::runtime_error(std::move(message)), column(column) {}
  std::size_t column;
};

class Expr {
 public:
  // Most levels of nesting (parentheses, lists, calls, operators, the operands of a chain such
  // as `a + b + c`): evaluation recurses once per level, so hostile text cannot exhaust the stack.
  static constexpr std::size_t kMaxDepth = 256;

  struct Node;
  static Expr compile(std::string_view text);  // throws ExprSyntaxError
  // Evaluates against an event: bare names and dotted paths read event.record(); `_key`,
  // `_topic`, `_partition`, `_offset`, `_timestamp` read the event's metadata.
  Value eval(Event& event) const;  // throws ExprError (and JsonError from record())
  // eval(event).truthy() without copying a field's value: what filters use.
  bool eval_bool(Event& event) const;
  const std::string& text() const { return text_; }
  // The record paths the expression reads, as written ("a.b", "." for the whole record), each
  // once, in order of appearance; metadata (_key...) is not listed.
  const std::vector<std::string>& fields() const { return fields_; }

  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;
  ~Expr();

 private:
  Expr() = default;
  std::string text_;
  std::unique_ptr<Node> root_;
  std::vector<std::string> fields_;
};

}  // namespace etld
