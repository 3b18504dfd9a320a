// Expr itself: compiling is lexing and parsing, evaluating is one walk of the tree. The
// language's parts are the other files of stages/expr/ (docs/engine.md has the map).
#include "stages/expr/expr.hpp"

#include <string>

#include "stages/expr/eval.hpp"
#include "stages/expr/lexer.hpp"
#include "stages/expr/parser.hpp"

namespace etld {

using expr_detail::Evaluator;

Expr Expr::compile(std::string_view text) {
  Expr e;
  e.text_ = std::string(text);
  e.root_ = expr_detail::parse(expr_detail::lex(text), e.fields_);
  return e;
}

Value Expr::eval(Event& event) const {
  Evaluator ev(event);
  return ev.eval(*root_);
}

bool Expr::eval_bool(Event& event) const {
  Evaluator ev(event);
  return ev.truthy(*root_);
}

Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;
Expr::~Expr() = default;

}  // namespace etld
