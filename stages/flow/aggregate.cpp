// The aggregate functions (aggregate.hpp). What each keeps, and how it is written:
//   count            an integer; result 0 when nothing was counted (never null, as in SQL)
//   sum              an ExactDecimal; result the exact number, null when no value was added
//   avg              exact sum and count (hidden __sum, __count); result the sum / count rounded
//                    half away from zero to kAverageScale decimals, trailing zeros removed
//   min, max         a value: numbers compared exactly, strings by bytes, false < true
//   first, last      a value and its event time (hidden __at); on equal times first keeps the
//                    value added (or merged) first and last takes the one added last
//   count_distinct   the set of the values' JSON texts (hidden __set, a sorted array); 1 and 1.0
//                    are different values; result the set's size, 0 when empty
//   approx_...       a HyperLogLog (hidden __hll, {"register": rank} for the non-zero ones)
//   top_k            a count per value's JSON text (hidden __counts, {"text": count}); result the
//                    k largest as [{"value": v, "count": n}], by count desc then text bytewise
// The same folds written in SQL for a table of partials: aggregate_sql.cpp.
#include "stages/flow/aggregate.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "stages/flow/exact_number.hpp"
#include "stages/flow/hll.hpp"

namespace etld::flow {
namespace {

[[noreturn]] void data_error(const AggregateSpec& spec, const std::string& what) {
  throw ExprError(spec.text + " for '" + spec.output + "': " + what);
}

// A record's value as an error quotes it: a number of a million digits is refused by its length,
// and the reason (logged, and stored with the dead letter) needs only its start.
std::string quoted(const Value& v) {
  constexpr std::size_t kShown = 100;
  std::string text = v.to_json();
  if (text.size() > kShown) text = text.substr(0, kShown) + "... (" + std::to_string(text.size()) + " bytes)";
  return text;
}

// Whether a value of kind `k` can be stored in a column of min/max/first/last's `sql_type`.
bool fits_column(const std::string& sql_type, const Value& v) {
  if (sql_type == "jsonb") return true;
  if (sql_type == "text" || sql_type == "timestamptz") return v.kind() == Value::Kind::string;
  if (sql_type == "numeric" || sql_type == "double precision") return v.is_number();
  if (sql_type == "bigint") return v.kind() == Value::Kind::integer;
  if (sql_type == "boolean") return v.kind() == Value::Kind::boolean;
  return false;
}

bool orderable(const Value& v) {
  if (v.is_number()) return v.kind() == Value::Kind::integer || v.to_json() != "null";
  return v.kind() == Value::Kind::string || v.kind() == Value::Kind::boolean;
}

// a < b for two orderable values of the same kind family (checked before).
int compare(const Value& a, const Value& b) {
  if (a.is_number()) return compare_numbers(a, b);
  if (a.kind() == Value::Kind::string) {
    int c = a.as_string().compare(b.as_string());  // char_traits<char>: bytes as unsigned
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
}

bool same_order_family(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return true;
  return a.kind() == b.kind();
}

}  // namespace

std::string hidden_field(const AggregateSpec& spec, std::string_view what) {
  return spec.output + "__" + std::string(what);
}

namespace {

// The state of each family of aggregates; an AggState holds the one of its kind.
struct Counted {  // count
  std::int64_t count = 0;
};
struct Summed {  // sum, avg
  std::int64_t count = 0;
  std::optional<ExactDecimal> sum;
};
struct Kept {  // min, max, first, last
  Value value;
  std::int64_t at = 0;  // first, last: the event time of `value`
};
// JSON texts, with the bytes they hold counted as they are added: memory_bytes() stays O(1).
constexpr std::size_t kNodeBytes = 64;  // a set or hash node's own overhead, roughly
struct Distinct {                       // count_distinct
  std::set<std::string> texts;
  std::size_t bytes = 0;
  void insert(std::string text) {
    std::size_t size = text.size();
    if (texts.insert(std::move(text)).second) bytes += kNodeBytes + size;
  }
};
struct Counts {  // top_k: JSON text -> count
  std::unordered_map<std::string, std::int64_t> by_text;
  std::size_t bytes = 0;
  void add(std::string text, std::int64_t n) {
    std::size_t size = text.size();
    auto [at, added] = by_text.try_emplace(std::move(text), 0);
    at->second += n;
    if (added) bytes += kNodeBytes + size;
  }
};

// Whether `v` at event time `at`, added after what `current` holds, takes its place (min, max,
// first, last). Equal values and first's equal times keep what was there; last's take the new.
bool replaces(AggKind kind, const Kept& current, const Value& v, std::int64_t at) {
  if (current.value.is_null()) return true;
  switch (kind) {
    case AggKind::min: return compare(v, current.value) < 0;
    case AggKind::max: return compare(v, current.value) > 0;
    case AggKind::first: return at < current.at;
    default: return at >= current.at;  // last
  }
}

std::size_t new_keys(const std::set<std::string>& mine, const std::set<std::string>& theirs) {
  std::size_t n = 0;
  for (const auto& t : theirs) n += mine.count(t) ? 0 : 1;
  return n;
}
std::size_t new_keys(const std::unordered_map<std::string, std::int64_t>& mine,
                     const std::unordered_map<std::string, std::int64_t>& theirs) {
  std::size_t n = 0;
  for (const auto& entry : theirs) n += mine.count(entry.first) ? 0 : 1;
  return n;
}

[[noreturn]] void too_many_distinct(const AggregateSpec& spec, const AggLimits& limits) {
  data_error(spec, "more than " + std::to_string(limits.max_distinct) + " distinct values");
}

std::string too_many_digits() {
  return " needs more than " + std::to_string(ExactDecimal::kMaxDigits) + " digits";
}

}  // namespace

struct AggState::Impl {
  std::variant<Counted, Summed, Kept, Distinct, Counts, HyperLogLog> state;
  template <class T>
  T& as() {
    return std::get<T>(state);
  }
  template <class T>
  const T& as() const {
    return std::get<T>(state);
  }
};

AggState::AggState(const AggregateSpec& spec) : impl_(std::make_unique<Impl>()) {
  switch (spec.kind) {
    case AggKind::count: break;
    case AggKind::sum:
    case AggKind::avg: impl_->state.emplace<Summed>(); break;
    case AggKind::min:
    case AggKind::max:
    case AggKind::first:
    case AggKind::last: impl_->state.emplace<Kept>(); break;
    case AggKind::count_distinct: impl_->state.emplace<Distinct>(); break;
    case AggKind::approx_count_distinct: impl_->state.emplace<HyperLogLog>(); break;
    case AggKind::top_k: impl_->state.emplace<Counts>(); break;
  }
}
AggState::AggState(AggState&&) noexcept = default;
AggState& AggState::operator=(AggState&&) noexcept = default;
AggState::~AggState() = default;

void AggState::check(const AggregateSpec& spec, const Value& v, const AggLimits& limits) const {
  if (v.is_null()) return;
  switch (spec.kind) {
    case AggKind::count:
    case AggKind::approx_count_distinct: break;
    case AggKind::sum:
    case AggKind::avg: {
      if (!v.is_number()) data_error(spec, std::string("expected a number, got ") + kind_name(v.kind()));
      auto d = ExactDecimal::of(v);
      if (!d && v.to_json() == "null") data_error(spec, "expected a finite number, got NaN or an infinity");
      if (!d)
        data_error(spec, quoted(v) + " cannot be summed exactly (more than " +
                             std::to_string(ExactDecimal::kMaxDigits) + " digits)");
      const auto& sum = impl_->as<Summed>().sum;
      if (sum && !ExactDecimal::add(*sum, *d))
        data_error(spec, "adding " + quoted(v) + " to " + sum->text() + too_many_digits());
      break;
    }
    case AggKind::min:
    case AggKind::max: {
      const Value& current = impl_->as<Kept>().value;
      if (!orderable(v) || (!current.is_null() && !same_order_family(v, current)))
        data_error(spec, std::string("cannot order ") + kind_name(v.kind()) +
                             (current.is_null() ? std::string()
                                                : std::string(" against ") + kind_name(current.kind())));
      [[fallthrough]];
    }
    case AggKind::first:
    case AggKind::last:
      if (!fits_column(spec.sql_type, v))
        data_error(spec, std::string(kind_name(v.kind())) + " " + v.to_json().substr(0, 100) +
                             " does not fit its column type " + spec.sql_type);
      break;
    case AggKind::count_distinct: {
      const auto& texts = impl_->as<Distinct>().texts;
      if (texts.size() >= limits.max_distinct && !texts.count(v.to_json())) too_many_distinct(spec, limits);
      break;
    }
    case AggKind::top_k: {
      const auto& by_text = impl_->as<Counts>().by_text;
      if (by_text.size() >= limits.max_distinct && !by_text.count(v.to_json()))
        too_many_distinct(spec, limits);
      break;
    }
  }
}

void AggState::add(const AggregateSpec& spec, Value v, std::int64_t event_time_ms) {
  if (v.is_null()) {
    if (spec.kind == AggKind::count && !spec.input) ++impl_->as<Counted>().count;
    return;
  }
  switch (spec.kind) {
    case AggKind::count: ++impl_->as<Counted>().count; break;
    case AggKind::sum:
    case AggKind::avg: {
      auto& s = impl_->as<Summed>();
      auto d = ExactDecimal::of(v);
      if (!d) data_error(spec, quoted(v) + " cannot be summed exactly");
      if (s.sum) d = ExactDecimal::add(*s.sum, *d);
      if (!d) data_error(spec, "adding " + quoted(v) + too_many_digits());
      s.sum = d;
      ++s.count;
      break;
    }
    case AggKind::min:
    case AggKind::max:
    case AggKind::first:
    case AggKind::last: {
      auto& s = impl_->as<Kept>();
      if (replaces(spec.kind, s, v, event_time_ms)) s.value = std::move(v), s.at = event_time_ms;
      break;
    }
    case AggKind::count_distinct: impl_->as<Distinct>().insert(v.to_json()); break;
    case AggKind::approx_count_distinct: impl_->as<HyperLogLog>().add(v.to_json()); break;
    case AggKind::top_k: impl_->as<Counts>().add(v.to_json(), 1); break;
  }
}

void AggState::merge(const AggregateSpec& spec, const AggState& other, const AggLimits& limits) {
  switch (spec.kind) {
    case AggKind::count: impl_->as<Counted>().count += other.impl_->as<Counted>().count; break;
    case AggKind::sum:
    case AggKind::avg: {
      auto& s = impl_->as<Summed>();
      const auto& o = other.impl_->as<Summed>();
      if (!o.sum) break;
      auto merged = s.sum ? ExactDecimal::add(*s.sum, *o.sum) : o.sum;
      if (!merged) data_error(spec, "adding " + o.sum->text() + " to " + s.sum->text() + too_many_digits());
      s.sum = merged;
      s.count += o.count;
      break;
    }
    case AggKind::min:
    case AggKind::max:
    case AggKind::first:
    case AggKind::last: {
      auto& s = impl_->as<Kept>();
      const auto& o = other.impl_->as<Kept>();
      if (o.value.is_null()) break;
      bool ordered = spec.kind == AggKind::min || spec.kind == AggKind::max;
      if (ordered && !s.value.is_null() && !same_order_family(o.value, s.value))
        data_error(spec, std::string("cannot order ") + kind_name(o.value.kind()) + " against " +
                             kind_name(s.value.kind()));
      if (replaces(spec.kind, s, o.value, o.at)) s.value = o.value, s.at = o.at;
      break;
    }
    case AggKind::count_distinct: {
      auto& s = impl_->as<Distinct>();
      const auto& o = other.impl_->as<Distinct>();
      if (s.texts.size() + new_keys(s.texts, o.texts) > limits.max_distinct) too_many_distinct(spec, limits);
      for (const auto& t : o.texts) s.insert(t);
      break;
    }
    case AggKind::approx_count_distinct:
      impl_->as<HyperLogLog>().merge(other.impl_->as<HyperLogLog>());
      break;
    case AggKind::top_k: {
      auto& s = impl_->as<Counts>();
      const auto& o = other.impl_->as<Counts>();
      if (s.by_text.size() + new_keys(s.by_text, o.by_text) > limits.max_distinct)
        too_many_distinct(spec, limits);
      for (const auto& [t, n] : o.by_text) s.add(t, n);
      break;
    }
  }
}

Value AggState::result(const AggregateSpec& spec) const {
  switch (spec.kind) {
    case AggKind::count: return Value(impl_->as<Counted>().count);
    case AggKind::sum: {
      const auto& s = impl_->as<Summed>();
      return s.sum ? s.sum->value() : Value();
    }
    case AggKind::avg: {
      const auto& s = impl_->as<Summed>();
      return s.sum && s.count > 0 ? Value::from_json_number(s.sum->divided_text(s.count)) : Value();
    }
    case AggKind::min:
    case AggKind::max:
    case AggKind::first:
    case AggKind::last: return impl_->as<Kept>().value;
    case AggKind::count_distinct: return Value(static_cast<std::int64_t>(impl_->as<Distinct>().texts.size()));
    case AggKind::approx_count_distinct:
      return Value(static_cast<std::int64_t>(impl_->as<HyperLogLog>().estimate()));
    case AggKind::top_k: {
      const auto& by_text = impl_->as<Counts>().by_text;
      if (by_text.empty()) return Value();
      std::vector<const std::pair<const std::string, std::int64_t>*> order;
      order.reserve(by_text.size());
      for (const auto& entry : by_text) order.push_back(&entry);
      auto first = [](const auto* a, const auto* b) {
        return a->second != b->second ? a->second > b->second : a->first < b->first;
      };
      std::size_t n = std::min(spec.k, order.size());
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), first);
      Array top;
      top.reserve(n);
      for (std::size_t i = 0; i < n; ++i)
        top.emplace_back(Object{{"value", parse_json(order[i]->first)}, {"count", Value(order[i]->second)}});
      return Value(std::move(top));
    }
  }
  return Value();
}

void AggState::write_partial(const AggregateSpec& spec, Value& record) const {
  record.set(spec.output, result(spec));
  switch (spec.kind) {
    case AggKind::avg: {
      const auto& s = impl_->as<Summed>();
      record.set(hidden_field(spec, "sum"), s.sum ? s.sum->value() : Value());
      record.set(hidden_field(spec, "count"), Value(s.count));
      break;
    }
    case AggKind::first:
    case AggKind::last: {
      const auto& s = impl_->as<Kept>();
      record.set(hidden_field(spec, "at"), s.value.is_null() ? Value() : Value(s.at));
      break;
    }
    case AggKind::count_distinct: {
      const auto& texts = impl_->as<Distinct>().texts;
      Array set;
      set.reserve(texts.size());
      for (const auto& t : texts) set.emplace_back(t);
      record.set(hidden_field(spec, "set"), Value(std::move(set)));
      break;
    }
    case AggKind::approx_count_distinct: {
      Object registers;
      for (const auto& [index, rank] : impl_->as<HyperLogLog>().registers())
        registers.emplace_back(std::to_string(index), Value(static_cast<std::int64_t>(rank)));
      record.set(hidden_field(spec, "hll"), Value(std::move(registers)));
      break;
    }
    case AggKind::top_k: {
      const auto& by_text = impl_->as<Counts>().by_text;
      std::map<std::string_view, std::int64_t> sorted(by_text.begin(), by_text.end());
      Object counts;
      counts.reserve(sorted.size());
      for (const auto& [t, n] : sorted) counts.emplace_back(std::string(t), Value(n));
      record.set(hidden_field(spec, "counts"), Value(std::move(counts)));
      break;
    }
    default: break;
  }
}

namespace {

const Value& field(const Value& record, const std::string& name) {
  static const Value null;
  const Value* v = record.find(name);
  return v ? *v : null;
}

std::int64_t count_field(const AggregateSpec& spec, const Value& record, const std::string& name) {
  const Value& v = field(record, name);
  if (v.is_null()) return 0;
  if (v.kind() != Value::Kind::integer || v.as_int() < 0)
    data_error(spec, "partial field '" + name + "' is not a count: " + v.to_json().substr(0, 200));
  return v.as_int();
}

}  // namespace

AggState AggState::read_partial(const AggregateSpec& spec, const Value& record) {
  AggState state(spec);
  Impl& s = *state.impl_;
  auto bad = [&](const std::string& name, const Value& v) {
    data_error(
        spec, "partial field '" + name + "' is not a " + spec.text + " state: " + v.to_json().substr(0, 200));
  };
  switch (spec.kind) {
    case AggKind::count: s.as<Counted>().count = count_field(spec, record, spec.output); break;
    case AggKind::sum:
    case AggKind::avg: {
      auto& summed = s.as<Summed>();
      std::string name = spec.kind == AggKind::sum ? spec.output : hidden_field(spec, "sum");
      const Value& v = field(record, name);
      if (!v.is_null()) {
        summed.sum = v.is_number() ? ExactDecimal::of(v) : std::nullopt;
        if (!summed.sum) bad(name, v);
      }
      if (spec.kind == AggKind::avg) summed.count = count_field(spec, record, hidden_field(spec, "count"));
      break;
    }
    case AggKind::min:
    case AggKind::max:
    case AggKind::first:
    case AggKind::last: {
      auto& kept = s.as<Kept>();
      kept.value = field(record, spec.output);
      if (kept.value.is_null()) break;
      if ((spec.kind == AggKind::min || spec.kind == AggKind::max) && !orderable(kept.value))
        bad(spec.output, kept.value);
      if (spec.kind == AggKind::first || spec.kind == AggKind::last) {
        const Value& at = field(record, hidden_field(spec, "at"));
        if (at.kind() != Value::Kind::integer) bad(hidden_field(spec, "at"), at);
        kept.at = at.as_int();
      }
      break;
    }
    case AggKind::count_distinct: {
      const Value& set = field(record, hidden_field(spec, "set"));
      if (set.is_null()) break;
      if (set.kind() != Value::Kind::array) bad(hidden_field(spec, "set"), set);
      for (const auto& t : set.as_array()) {
        if (t.kind() != Value::Kind::string) bad(hidden_field(spec, "set"), set);
        s.as<Distinct>().insert(t.as_string());
      }
      break;
    }
    case AggKind::approx_count_distinct: {
      const Value& regs = field(record, hidden_field(spec, "hll"));
      if (regs.is_null()) break;
      if (regs.kind() != Value::Kind::object) bad(hidden_field(spec, "hll"), regs);
      for (const auto& [index, rank] : regs.as_object()) {
        std::size_t i = 0;
        auto [p, ec] = std::from_chars(index.data(), index.data() + index.size(), i);
        bool ok = ec == std::errc() && p == index.data() + index.size() && i < HyperLogLog::kRegisters &&
                  rank.kind() == Value::Kind::integer && rank.as_int() >= 1 &&
                  rank.as_int() <= HyperLogLog::kMaxRank;
        if (!ok) bad(hidden_field(spec, "hll"), regs);
        s.as<HyperLogLog>().raise(i, static_cast<std::uint8_t>(rank.as_int()));
      }
      break;
    }
    case AggKind::top_k: {
      const Value& counts = field(record, hidden_field(spec, "counts"));
      if (counts.is_null()) break;
      if (counts.kind() != Value::Kind::object) bad(hidden_field(spec, "counts"), counts);
      for (const auto& [t, n] : counts.as_object()) {
        bool ok = n.kind() == Value::Kind::integer && n.as_int() > 0;
        try {
          parse_json(t);
        } catch (const JsonError&) {
          ok = false;
        }
        if (!ok) bad(hidden_field(spec, "counts"), counts);
        s.as<Counts>().add(t, n.as_int());
      }
      break;
    }
  }
  return state;
}

std::size_t AggState::memory_bytes() const {
  std::size_t bytes = sizeof(Impl);
  if (const auto* kept = std::get_if<Kept>(&impl_->state)) {
    if (kept->value.kind() == Value::Kind::string)
      bytes += kept->value.as_string().capacity();
    else if (kept->value.kind() == Value::Kind::array || kept->value.kind() == Value::Kind::object)
      bytes += kept->value.to_json().size();
  } else if (const auto* distinct = std::get_if<Distinct>(&impl_->state)) {
    bytes += distinct->bytes;
  } else if (const auto* counts = std::get_if<Counts>(&impl_->state)) {
    bytes += counts->bytes;
  } else if (const auto* hll = std::get_if<HyperLogLog>(&impl_->state)) {
    bytes += hll->memory_bytes();
  }
  return bytes;
}

}  // namespace etld::flow
