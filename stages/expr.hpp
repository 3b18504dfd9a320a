// Moved to stages/expr/expr.hpp (issue 12). Kept only so that files other work is changing at the
// same time (stages/pipeline.cpp, config/loader.cpp, stages/builtin/reduce.cpp) build unchanged;
// remove it once nothing includes it.
#pragma once

#include "stages/expr/expr.hpp"
