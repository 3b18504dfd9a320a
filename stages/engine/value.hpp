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
// A number that is not exactly a 64-bit integer and whose JSON text the nearest double would not
// write back the same ("1.10", "12345678901234567.89", "1e400", 2^64): kept as that text, so that
// a record written out again, or a numeric/jsonb column, keeps every digit. Arithmetic and
// comparisons use `approx`.
struct JsonNumber {
  double approx;
  std::string text;
};
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

  // A number read from JSON text: an integer when it is one that fits 64 bits, else a real that
  // keeps `text` (which must be a valid JSON number) when its double would not write it back.
  static Value from_json_number(std::string_view text);

  Kind kind() const {
    auto i = v_.index();
    return i == exact_index ? Kind::real : static_cast<Kind>(i);
  }
  bool is_null() const { return kind() == Kind::null; }
  bool is_number() const { return kind() == Kind::integer || kind() == Kind::real; }
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_double() const;  // integer or real
  // The JSON text of a real read from JSON that its double would not write back; null otherwise.
  const std::string* number_text() const;
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
  // Alternatives in Kind's order, then the rare exact number (behind a pointer: the common
  // values stay as small as they were).
  std::variant<std::monostate, bool, std::int64_t, double, std::string, std::unique_ptr<Array>,
               std::unique_ptr<Object>, std::unique_ptr<JsonNumber>>
      v_;
  static constexpr std::size_t exact_index = 7;
};

const char* kind_name(Value::Kind k);

// Whether `s` is exactly one number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s);

// Arrays and objects nested deeper than this are refused by parse_json: copying, comparing,
// printing and freeing a Value recurse once per level, so the depth of any record is bounded.
inline constexpr std::size_t kMaxJsonDepth = 1024;

// Parses one JSON document. Throws JsonError on malformed input. Every valid JSON number is
// accepted, whatever its size (RFC 8259 sets no limit), and keeps its text (see JsonNumber).
Value parse_json(std::string_view text);

struct JsonError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace etld
