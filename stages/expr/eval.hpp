// The tree-walking evaluator of one expression against one event. Operators are eval.cpp, the
// built-in functions functions.cpp; reading fields is here, inline, as it is the hot path.
// Internal to stages/expr/. One Evaluator per evaluation: it caches the event's record.
#pragma once

#include <cstddef>
#include <string>

#include "stages/engine/event.hpp"
#include "stages/engine/value.hpp"
#include "stages/expr/ast.hpp"

namespace etld::expr_detail {

inline const Value kNull;

class Evaluator {
 public:
  explicit Evaluator(Event& event) : event_(event) {}

  // The value of `n`: a pointer into the record or the tree when no computation is needed,
  // else `scratch` holding the computed value.
  const Value* ref(const Node& n, Value& scratch) {
    switch (n.op) {
      case Op::literal: return &n.literal;
      case Op::field: {
        const Value* v = lookup(n);
        return v ? v : &kNull;
      }
      case Op::root: return &record();
      default: scratch = eval(n); return &scratch;
    }
  }

  Value eval(const Node& n);

  bool truthy(const Node& n) {
    Value s;
    return ref(n, s)->truthy();
  }

 private:
  const Value& record() {
    if (!record_) record_ = &event_.record();
    return *record_;
  }

  const Value* lookup(const Node& n) {
    const Value* cur = &record();
    for (const auto& seg : n.path) {
      if (cur->kind() == Value::Kind::object) {
        cur = cur->find(seg.name);
      } else if (seg.index >= 0 && cur->kind() == Value::Kind::array) {
        const auto& arr = cur->as_array();
        cur = static_cast<std::size_t>(seg.index) < arr.size() ? &arr[static_cast<std::size_t>(seg.index)]
                                                               : nullptr;
      } else {
        return nullptr;
      }
      if (!cur) return nullptr;
    }
    return cur;
  }

  Value meta(Meta m) const;
  // The operand `n` with value `v`, as a message names it.
  std::string what(const Node& n, const Value& v);
  static std::string abbreviated(const Value& v);
  [[noreturn]] void type_error(const Node& op, const Node& a, const Value& va, const Node* b,
                               const Value* vb);
  Value negate(const Node& n);
  Value arith(const Node& n);
  int order(const Value& a, const Value& b, const Node& op, const Node& na, const Node& nb);
  bool member(const Node& n);

  // functions.cpp
  const Value& arg(const Node& n, std::size_t i, Value& scratch, Value::Kind kind);
  [[noreturn]] void bad_arg(const Node& n, std::size_t i, const Value& v, const char* expected);
  Value call(const Node& n);

  Event& event_;
  const Value* record_ = nullptr;
};

}  // namespace etld::expr_detail
