// Writing into a record by field path, as map's `set`, `rename` and `remove` do: dotted segments,
// where an all-digit segment indexes an array (0-based) and names a member of an object. A path
// that would have to pass through a scalar, or index past an array's end, is a PathError (the
// event is dead-lettered with it) rather than a silent replacement of what was there.
#pragma once

#include <optional>
#include <stdexcept>
#include <string_view>

#include "stages/engine/value.hpp"

namespace etld {

struct PathError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Sets the value at `path` ("." is `root` itself). Missing members on the way are created as
// objects; an array element must exist (index < size) to be replaced or walked through.
void assign_path(Value& root, std::string_view path, Value v);

// Moves the value at `path` out of `root` and erases it (an array element is removed, the later
// ones shift down); nullopt when absent, including a path through a scalar or past an array's end.
std::optional<Value> take_path(Value& root, std::string_view path);

}  // namespace etld
