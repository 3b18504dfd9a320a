#include "stages/value.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace etld {

static_assert(kMaxJsonDepth == simdjson::DEFAULT_MAX_DEPTH, "parse_json relies on simdjson's depth bound");

Value::Value(const Value& other) { *this = other; }

Value& Value::operator=(const Value& other) {
  if (this == &other) return *this;
  switch (other.kind()) {
    case Kind::array: v_ = std::make_unique<Array>(other.as_array()); break;
    case Kind::object: v_ = std::make_unique<Object>(other.as_object()); break;
    case Kind::null: v_ = std::monostate{}; break;
    case Kind::boolean: v_ = other.as_bool(); break;
    case Kind::integer: v_ = other.as_int(); break;
    case Kind::real: v_ = std::get<double>(other.v_); break;
    case Kind::string: v_ = other.as_string(); break;
  }
  return *this;
}

double Value::as_double() const {
  if (kind() == Kind::integer) return static_cast<double>(as_int());
  return std::get<double>(v_);
}

const Value* Value::find(std::string_view name) const {
  if (kind() != Kind::object) return nullptr;
  for (const auto& [k, v] : as_object())
    if (k == name) return &v;
  return nullptr;
}

Value* Value::find(std::string_view name) {
  return const_cast<Value*>(static_cast<const Value*>(this)->find(name));
}

Value& Value::set(std::string_view name, Value v) {
  if (kind() != Kind::object) *this = Object{};
  if (Value* existing = find(name)) return *existing = std::move(v);
  return as_object().emplace_back(std::string(name), std::move(v)).second;
}

bool Value::erase(std::string_view name) {
  if (kind() != Kind::object) return false;
  auto& members = as_object();
  for (auto it = members.begin(); it != members.end(); ++it)
    if (it->first == name) {
      members.erase(it);
      return true;
    }
  return false;
}

const Value* Value::at_path(std::string_view path) const {
  if (path == ".") return this;
  const Value* cur = this;
  while (cur) {
    auto dot = path.find('.');
    cur = cur->find(path.substr(0, dot));
    if (dot == std::string_view::npos) return cur;
    path.remove_prefix(dot + 1);
  }
  return nullptr;
}

Value& Value::set_path(std::string_view path, Value v) {
  if (path == ".") return *this = std::move(v);
  Value* cur = this;
  for (;;) {
    auto dot = path.find('.');
    if (dot == std::string_view::npos) return cur->set(path, std::move(v));
    auto head = path.substr(0, dot);
    Value* next = cur->find(head);
    if (!next || next->kind() != Kind::object) next = &cur->set(head, Object{});
    cur = next;
    path.remove_prefix(dot + 1);
  }
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::null: return false;
    case Kind::boolean: return as_bool();
    case Kind::integer: return as_int() != 0;
    case Kind::real: return std::get<double>(v_) != 0.0;
    case Kind::string: return !as_string().empty();
    case Kind::array: return !as_array().empty();
    case Kind::object: return !as_object().empty();
  }
  return false;
}

static void append_escaped(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

static void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON has no NaN/Infinity
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
  out += text;
  // Keep a real recognisable as one after a round trip ("2" would come back as an integer).
  if (text.find_first_of(".eEn") == std::string_view::npos) out += ".0";
}

void Value::append_json(std::string& out) const {
  switch (kind()) {
    case Kind::null: out += "null"; break;
    case Kind::boolean: out += as_bool() ? "true" : "false"; break;
    case Kind::integer: {
      char buf[24];
      auto res = std::to_chars(buf, buf + sizeof buf, as_int());
      out.append(buf, res.ptr);
      break;
    }
    case Kind::real: append_double(out, std::get<double>(v_)); break;
    case Kind::string: append_escaped(out, as_string()); break;
    case Kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : as_array()) {
        if (!first) out.push_back(',');
        first = false;
        v.append_json(out);
      }
      out.push_back(']');
      break;
    }
    case Kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : as_object()) {
        if (!first) out.push_back(',');
        first = false;
        append_escaped(out, k);
        out.push_back(':');
        v.append_json(out);
      }
      out.push_back('}');
      break;
    }
  }
}

std::string Value::to_json() const {
  std::string out;
  append_json(out);
  return out;
}

std::string Value::to_text() const { return kind() == Kind::string ? as_string() : to_json(); }

// Objects are equal when they hold the same members, whatever their order: JSON objects are
// unordered, and `{"x":1,"y":2} == {"y":2,"x":1}` must hold for `==` and `in`.
static bool same_members(const Object& a, const Object& b) {
  if (a.size() != b.size()) return false;
  // The common case, members in the same order, without sorting.
  bool in_order = true;
  for (std::size_t i = 0; i < a.size() && in_order; ++i) {
    if (a[i].first != b[i].first)
      in_order = false;
    else if (!(a[i].second == b[i].second))
      return false;
  }
  if (in_order) return true;
  auto by_name = [](const Object& o) {
    std::vector<const Member*> sorted;
    sorted.reserve(o.size());
    for (const auto& m : o) sorted.push_back(&m);
    std::stable_sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) { return x->first < y->first; });
    return sorted;
  };
  auto sa = by_name(a), sb = by_name(b);
  for (std::size_t i = 0; i < sa.size(); ++i)
    if (sa[i]->first != sb[i]->first || !(sa[i]->second == sb[i]->second)) return false;
  return true;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Value::Kind::integer && b.kind() == Value::Kind::integer) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::null: return true;
    case Value::Kind::boolean: return a.as_bool() == b.as_bool();
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::array: return a.as_array() == b.as_array();
    case Value::Kind::object: return same_members(a.as_object(), b.as_object());
    default: return false;
  }
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::null: return "null";
    case Value::Kind::boolean: return "boolean";
    case Value::Kind::integer: return "integer";
    case Value::Kind::real: return "number";
    case Value::Kind::string: return "string";
    case Value::Kind::array: return "array";
    case Value::Kind::object: return "object";
  }
  return "?";
}

static Value from_simdjson(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::OBJECT: {
      Object o;
      simdjson::dom::object fields = e.get_object().value_unsafe();
      o.reserve(fields.size());  // one allocation instead of one per doubling
      for (auto field : fields) o.emplace_back(std::string(field.key), from_simdjson(field.value));
      return Value(std::move(o));
    }
    case T::ARRAY: {
      Array a;
      for (auto item : e.get_array()) a.push_back(from_simdjson(item));
      return Value(std::move(a));
    }
    case T::STRING: return Value(std::string(e.get_string().value_unsafe()));
    case T::INT64: return Value(e.get_int64().value_unsafe());
    case T::UINT64: return Value(static_cast<double>(e.get_uint64().value_unsafe()));
    case T::DOUBLE: return Value(e.get_double().value_unsafe());
    case T::BOOL: return Value(e.get_bool().value_unsafe());
    case T::NULL_VALUE: return Value();
  }
  return Value();
}

Value parse_json(std::string_view text) {
  // One parser per thread: simdjson reuses its buffers, so steady-state parsing allocates only
  // the Value tree itself. parse(ptr, len) copies the text into the parser's own padded buffer,
  // kept from call to call (a padded_string here was one allocation per record).
  thread_local simdjson::dom::parser parser;
  auto result = parser.parse(text.data(), text.size());
  if (result.error() == simdjson::DEPTH_ERROR)  // the parser's default bound, kept: see kMaxJsonDepth
    throw JsonError("invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (result.error())
    throw JsonError(std::string("invalid JSON: ") + simdjson::error_message(result.error()));
  return from_simdjson(result.value_unsafe());
}

}  // namespace etld
