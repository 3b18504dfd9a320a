// The built-in functions' names and arities, which the parser checks calls against. What each
// function computes is Evaluator::call (functions.cpp). Internal to stages/expr/.
#pragma once

#include <string>
#include <string_view>

#include "stages/expr/ast.hpp"

namespace etld::expr_detail {

struct FnSpec {
  const char* name;
  Fn fn;
  int min_args;
  int max_args;  // -1: any number
};

const FnSpec* find_function(std::string_view name);  // nullptr: no such function
const char* fn_name(Fn fn);
std::string function_names();  // "if, lower, ...": for the message about an unknown function

}  // namespace etld::expr_detail
