// From tokens to the tree of an expression. Internal to stages/expr/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "stages/expr/ast.hpp"
#include "stages/expr/lexer.hpp"

namespace etld::expr_detail {

// The tree of the expression `tokens` spell, each node at most Expr::kMaxDepth levels high;
// `fields` gets each record path it reads, once, in order of appearance. Throws ExprSyntaxError.
std::unique_ptr<Expr::Node> parse(std::vector<Token> tokens, std::vector<std::string>& fields);

}  // namespace etld::expr_detail
