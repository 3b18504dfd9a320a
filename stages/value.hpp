// A JSON-like value: what a stage reads and writes once an event's payload has been parsed.
// Plain data, no thread affinity; moved between strands with its event.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace etld {

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Object = std::vector<Member>;  // insertion order kept: output mirrors input

class Value {
 public:
  enum class Kind { null, boolean, integer, real, string, array, object };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(std::int64_t{i}) {}
  Value(std::int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_unique<Array>(std::move(a))) {}
  Value(Object o) : v_(std::make_unique<Object>(std::move(o))) {}
  Value(const Value& other);
  Value& operator=(const Value& other);
  Value(Value&&) noexcept = default;
  Value& operator=(Value&&) noexcept = default;

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::null; }
  bool is_number() const { return kind() == Kind::integer || kind() == Kind::real; }
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_double() const;  // integer or real
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return *std::get<std::unique_ptr<Array>>(v_); }
  Array& as_array() { return *std::get<std::unique_ptr<Array>>(v_); }
  const Object& as_object() const { return *std::get<std::unique_ptr<Object>>(v_); }
  Object& as_object() { return *std::get<std::unique_ptr<Object>>(v_); }

  // Object member lookup; nullptr when absent or when this is not an object.
  const Value* find(std::string_view name) const;
  Value* find(std::string_view name);
  // Sets (or adds) an object member; turns a null value into an object first.
  Value& set(std::string_view name, Value v);
  bool erase(std::string_view name);

  // Dotted path ("a.b.c"); "." is the value itself.
  const Value* at_path(std::string_view path) const;
  Value& set_path(std::string_view path, Value v);

  bool truthy() const;
  std::string to_json() const;
  void append_json(std::string& out) const;
  // The value as text for output: strings unquoted, everything else as JSON.
  std::string to_text() const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, std::unique_ptr<Array>,
               std::unique_ptr<Object>>
      v_;
};

const char* kind_name(Value::Kind k);

// Arrays and objects nested deeper than this are refused by parse_json: copying, comparing,
// printing and freeing a Value recurse once per level, so the depth of any record is bounded.
inline constexpr std::size_t kMaxJsonDepth = 1024;

// Parses one JSON document. Throws JsonError with a byte position on malformed input.
Value parse_json(std::string_view text);

struct JsonError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace etld
