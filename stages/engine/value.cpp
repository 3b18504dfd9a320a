#include "stages/engine/value.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <new>

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
    case Kind::real:
      if (other.v_.index() == exact_index) {
        v_ = std::make_unique<JsonNumber>(*std::get<exact_index>(other.v_));
      } else {
        v_ = std::get<double>(other.v_);
      }
      break;
    case Kind::string: v_ = other.as_string(); break;
  }
  return *this;
}

double Value::as_double() const {
  if (kind() == Kind::integer) return static_cast<double>(as_int());
  if (v_.index() == exact_index) return std::get<exact_index>(v_)->approx;
  return std::get<double>(v_);
}

const std::string* Value::number_text() const {
  return v_.index() == exact_index ? &std::get<exact_index>(v_)->text : nullptr;
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
    case Kind::real: return as_double() != 0.0;
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
    case Kind::real:
      if (const std::string* text = number_text()) {
        out += *text;
      } else {
        append_double(out, std::get<double>(v_));
      }
      break;
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

bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// Whether append_double writes `d` back as exactly `text`.
static bool writes_back(double d, std::string_view text) {
  if (!std::isfinite(d)) return false;
  char buf[40];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view shortest(buf, static_cast<std::size_t>(res.ptr - buf));
  if (shortest.find_first_of(".eEn") != std::string_view::npos) return shortest == text;
  return text.size() == shortest.size() + 2 && text.substr(0, shortest.size()) == shortest &&
         text.substr(shortest.size()) == ".0";
}

Value Value::from_json_number(std::string_view text) {
  const char* end = text.data() + text.size();
  std::int64_t i = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, i);
      ec == std::errc() && p == end && (i != 0 || text[0] != '-'))
    return Value(i);  // "-0" is not the integer 0: it stays as written
  double d = 0;
  if (std::from_chars(text.data(), end, d).ec == std::errc::result_out_of_range) {
    // Beyond double's range ("1e400", 400 digits) or below it ("1e-400"): the text stays exact.
    auto e = text.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
    d = tiny ? 0.0 : HUGE_VAL;
    if (text.front() == '-') d = -d;
  }
  if (writes_back(d, text)) return Value(d);
  Value v;
  v.v_ = std::make_unique<JsonNumber>(JsonNumber{d, std::string(text)});
  return v;
}

namespace {

namespace od = simdjson::ondemand;

void check(simdjson::error_code err) {
  if (err == simdjson::DEPTH_ERROR)  // the parser's default bound, kept: see kMaxJsonDepth
    throw JsonError("invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (err) throw JsonError(std::string("invalid JSON: ") + simdjson::error_message(err));
}

// The raw token of a number runs up to the next token: the blanks after it are part of it.
Value number_from_token(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r'))
    raw.remove_suffix(1);
  if (!is_json_number(raw)) check(simdjson::NUMBER_ERROR);
  return Value::from_json_number(raw);
}

std::string_view raw_token(od::value& v) { return v.raw_json_token(); }
std::string_view raw_token(od::document& doc) {
  std::string_view raw;
  check(doc.raw_json_token().get(raw));
  return raw;
}

// `V` is an ondemand document (the root) or value: both read the same way. Every value is
// visited, so that simdjson's On Demand parser checks all of the document, as the DOM would.
// On Demand reports nesting past its bound only once it gets there; `depth` stops the recursion
// here first, so that hostile nesting cannot exhaust the stack.
template <class V>
Value from_ondemand(V& v, std::size_t depth = 1) {
  if (depth > kMaxJsonDepth) check(simdjson::DEPTH_ERROR);
  od::json_type type{};
  check(v.type().get(type));
  switch (type) {
    case od::json_type::object: {
      od::object fields;
      check(v.get_object().get(fields));
      Object o;
      for (auto result : fields) {
        od::field field;
        check(std::move(result).get(field));
        std::string_view key;
        check(field.unescaped_key().get(key));
        std::string name(key);
        o.emplace_back(std::move(name), from_ondemand(field.value(), depth + 1));
      }
      return Value(std::move(o));
    }
    case od::json_type::array: {
      od::array items;
      check(v.get_array().get(items));
      Array a;
      for (auto result : items) {
        od::value item;
        check(std::move(result).get(item));
        a.push_back(from_ondemand(item, depth + 1));
      }
      return Value(std::move(a));
    }
    case od::json_type::string: {
      std::string_view s;
      check(v.get_string().get(s));
      return Value(std::string(s));
    }
    case od::json_type::number: {
      return number_from_token(raw_token(v));
    }
    case od::json_type::boolean: {
      bool b = false;
      check(v.get_bool().get(b));
      return Value(b);
    }
    case od::json_type::null: {
      bool null = false;
      check(v.is_null().get(null));
      if (!null) check(simdjson::N_ATOM_ERROR);
      return Value();
    }
  }
  check(simdjson::TAPE_ERROR);
  return Value();
}

// A document that is a single scalar. The On Demand parser would not notice what follows it
// ("1 2"): a number must be all of the text, anything else is left to the DOM parser.
Value root_scalar(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  if (is_json_number(text)) return Value::from_json_number(text);
  thread_local simdjson::dom::parser dom;
  simdjson::dom::element e;
  check(dom.parse(text.data(), text.size()).get(e));
  if (e.is_string()) return Value(std::string(e.get_string().value_unsafe()));
  if (e.is_bool()) return Value(e.get_bool().value_unsafe());
  if (e.is_null()) return Value();
  check(simdjson::NUMBER_ERROR);  // a number is_json_number refused
  return Value();
}

}  // namespace

Value parse_json(std::string_view text) {
  // simdjson's On Demand parser: unlike its DOM, it gives each number's text, so that numbers
  // beyond 64 bits or double's range are read, and every number keeps its digits. One parser and
  // one padded copy of the text per thread, reused: steady-state parsing allocates only the Value
  // tree itself.
  // from_ondemand enforces kMaxJsonDepth itself; the parser's own bound sits a little above it,
  // so that simdjson never meets a depth past its bookkeeping (an assertion in its development
  // checks) before from_ondemand has refused the record.
  thread_local od::parser parser = [] {
    od::parser p;
    if (p.allocate(4096, kMaxJsonDepth + 8) != simdjson::SUCCESS) throw std::bad_alloc();
    return p;
  }();
  thread_local std::string padded;
  if (padded.size() < text.size() + simdjson::SIMDJSON_PADDING)
    padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  std::copy(text.begin(), text.end(), padded.begin());
  od::document doc;
  check(parser.iterate(padded.data(), text.size(), padded.size()).get(doc));
  od::json_type type{};
  check(doc.type().get(type));
  if (type != od::json_type::object && type != od::json_type::array) return root_scalar(text);
  Value v = from_ondemand(doc);
  // Anything after the value is an error (the On Demand parser stops where the value ends).
  const char* rest = nullptr;
  if (!doc.current_location().get(rest)) check(simdjson::TRAILING_CONTENT);
  return v;
}

}  // namespace etld
