// One JSON value as the COPY encoder reads it, borrowed (never copied) from a Value or from the
// buffers of simdjson's On Demand parser: rows encoded straight from the payload skip building a
// Value tree per record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "stages/engine/value.hpp"

namespace etld::pg {

struct CopyField {
  Value::Kind kind = Value::Kind::null;
  bool b = false;
  std::int64_t i = 0;
  double d = 0;
  std::string_view s;           // string
  std::string_view text;        // real: its JSON text when `d` would not write it back (JsonNumber)
  const Value* tree = nullptr;  // array and object: only borrowed from a Value

  double number() const { return kind == Value::Kind::integer ? static_cast<double>(i) : d; }
  std::string json() const {
    switch (kind) {
      case Value::Kind::array:
      case Value::Kind::object: return tree->to_json();
      case Value::Kind::boolean: return Value(b).to_json();
      case Value::Kind::integer: return Value(i).to_json();
      case Value::Kind::real: return text.empty() ? Value(d).to_json() : std::string(text);
      case Value::Kind::string: return Value(std::string(s)).to_json();
      case Value::Kind::null: break;
    }
    return "null";
  }
};

}  // namespace etld::pg
