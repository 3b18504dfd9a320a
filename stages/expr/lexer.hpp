// Tokens of an expression: numbers, strings, field paths, operators, brackets. Internal to
// stages/expr/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stages/expr/ast.hpp"

namespace etld::expr_detail {

enum class Tok : std::uint8_t {
  end,
  integer,
  real,
  string,
  path,
  root,
  op,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma
};

struct Token {
  Tok kind = Tok::end;
  std::size_t column = 0;
  std::string text;  // op spelling, string contents, or the path as written
  std::int64_t int_value = 0;
  double real_value = 0;
  std::vector<Segment> segments;  // Tok::path
  bool quoted = false;            // Tok::path: some segment was backquoted
};

// The tokens of `text`, the last one Tok::end; throws ExprSyntaxError at the first bad character.
std::vector<Token> lex(std::string_view text);

}  // namespace etld::expr_detail
