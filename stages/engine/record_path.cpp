#include "stages/engine/record_path.hpp"

#include <charconv>
#include <string>
#include <utility>

namespace etld {
namespace {

// The array index an all-digit segment names; nullopt for any other segment.
std::optional<std::size_t> index_of(std::string_view segment) {
  if (segment.empty()) return std::nullopt;
  for (char c : segment)
    if (c < '0' || c > '9') return std::nullopt;
  std::size_t index = 0;
  auto res = std::from_chars(segment.data(), segment.data() + segment.size(), index);
  if (res.ec != std::errc()) return SIZE_MAX;  // too large for any array: out of range below
  return index;
}

// The element or member `segment` of `container`; nullptr when there is none.
Value* child(Value& container, std::string_view segment) {
  if (container.kind() == Value::Kind::object) return container.find(segment);
  if (container.kind() == Value::Kind::array) {
    auto index = index_of(segment);
    auto& items = container.as_array();
    return index && *index < items.size() ? &items[*index] : nullptr;
  }
  return nullptr;
}

// What the segments of `path` before `rest` name, for messages: "'a.b'", or "the record".
std::string container_name(std::string_view path, std::string_view rest) {
  std::string_view done = path.substr(0, path.size() - rest.size());
  if (!done.empty() && done.back() == '.') done.remove_suffix(1);
  return done.empty() ? std::string("the record") : "'" + std::string(done) + "'";
}

}  // namespace

void assign_path(Value& root, std::string_view path, Value v) {
  if (path == ".") {
    root = std::move(v);
    return;
  }
  Value* cur = &root;
  std::string_view rest = path;
  for (;;) {
    auto dot = rest.find('.');
    std::string_view segment = rest.substr(0, dot);
    if (cur->is_null()) *cur = Object{};  // a missing container is created as an object
    Value* next = nullptr;
    if (cur->kind() == Value::Kind::object) {
      next = cur->find(segment);
      if (!next) next = &cur->set(segment, Value());
    } else if (cur->kind() == Value::Kind::array) {
      auto index = index_of(segment);
      auto size = cur->as_array().size();
      if (!index)
        throw PathError(container_name(path, rest) + " is an array and '" + std::string(segment) +
                        "' is not an index");
      if (*index >= size)
        throw PathError("index " + std::string(segment) + " is past the end of " +
                        container_name(path, rest) + " (" + std::to_string(size) + " elements)");
      next = &cur->as_array()[*index];
    } else {
      throw PathError(container_name(path, rest) + " (" + kind_name(cur->kind()) +
                      ") is not an object or array: it has no field '" + std::string(segment) + "'");
    }
    if (dot == std::string_view::npos) {
      *next = std::move(v);
      return;
    }
    cur = next;
    rest.remove_prefix(dot + 1);
  }
}

std::optional<Value> take_path(Value& root, std::string_view path) {
  if (path == ".") return std::exchange(root, Value());
  Value* parent = &root;
  auto last_dot = path.rfind('.');
  std::string_view leaf = last_dot == std::string_view::npos ? path : path.substr(last_dot + 1);
  if (last_dot != std::string_view::npos) {
    std::string_view rest = path.substr(0, last_dot);
    for (;;) {
      auto dot = rest.find('.');
      parent = child(*parent, rest.substr(0, dot));
      if (!parent) return std::nullopt;
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
  }
  Value* v = child(*parent, leaf);
  if (!v) return std::nullopt;
  Value out = std::move(*v);
  if (parent->kind() == Value::Kind::object) {
    parent->erase(leaf);
  } else {
    auto& items = parent->as_array();
    items.erase(items.begin() + (v - items.data()));
  }
  return out;
}

}  // namespace etld
