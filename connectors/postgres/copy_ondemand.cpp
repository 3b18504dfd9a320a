// The postgres sink's fields from a JSON payload with simdjson's On Demand parser. On Demand reads
// forward only, so the record is walked once, field by field, and each field a column needs is
// kept (scalars only, borrowed from the parser's buffers) for the encoder to take in column order.
// What the Value path (parse_json, then Value::at_path) would write is the reference: the first of
// two fields of one name counts, a path into a value that is not an object finds nothing, a null
// is absent, numbers keep their text, and every value is read so that an invalid one anywhere
// refuses the record as parse_json does.
#include "connectors/postgres/copy_ondemand.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace etld::pg {

namespace {

namespace od = simdjson::ondemand;

// Names are short: compared in line, where a call to memcmp per comparison cost more than the bytes.
bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Which columns read which fields: the columns' dotted paths as a tree, so that a record's field
// is matched without comparing it with every column.
struct PathNode {
  struct Member {
    std::string name;
    std::vector<std::uint32_t> columns;  // the columns whose path ends here
    std::unique_ptr<PathNode> below;     // the members of this one's object that paths go on to
    std::uint32_t id = 0;                // its mark in Reader::seen_
  };
  std::vector<Member> members;  // in the order of the first column that reads each

  // The member named `name`. `next` is tried first and moved past the match: records mostly list
  // their fields in the columns' order, which then costs one comparison per field.
  const Member* find(std::string_view name, std::size_t& next) const {
    const std::size_t n = members.size();
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t at = next + k < n ? next + k : next + k - n;
      if (same_name(members[at].name, name)) {
        next = at + 1 < n ? at + 1 : 0;
        return &members[at];
      }
    }
    return nullptr;
  }
};

// The path tree of one config, and what it was built from: a config is not mutated once a sink
// runs, but tests reuse one after changing it, and a freed config's address is reused.
struct FieldPlan {
  const PostgresSinkConfig* cfg = nullptr;
  std::vector<std::pair<ColumnSource, std::string>> built_from;
  PathNode root;
  std::uint32_t member_count = 0;
  bool whole = false;  // a column takes the whole record: the Value path writes its JSON

  bool built_for(const PostgresSinkConfig& c) const {
    if (cfg != &c || built_from.size() != c.columns.size()) return false;
    for (std::size_t i = 0; i < built_from.size(); ++i)
      if (built_from[i].first != c.columns[i].source || built_from[i].second != c.columns[i].path)
        return false;
    return true;
  }

  void build(const PostgresSinkConfig& c) {
    cfg = &c;
    built_from.clear();
    root.members.clear();
    member_count = 0;
    whole = false;
    for (std::uint32_t i = 0; i < c.columns.size(); ++i) {
      const ColumnSpec& col = c.columns[i];
      built_from.emplace_back(col.source, col.path);
      // Value::at_path reads "." as the record itself.
      if (col.source == ColumnSource::whole || (col.source == ColumnSource::field && col.path == ".")) {
        whole = true;
      } else if (col.source == ColumnSource::field) {
        add(i, col.path);
      }
    }
  }

 private:
  void add(std::uint32_t column, std::string_view path) {
    PathNode* node = &root;
    for (;;) {
      auto dot = path.find('.');
      std::string_view name = path.substr(0, dot);
      PathNode::Member* m = nullptr;
      for (auto& existing : node->members)
        if (existing.name == name) m = &existing;
      if (!m) {
        m = &node->members.emplace_back();
        m->name = name;
        m->id = member_count++;
      }
      if (dot == std::string_view::npos) {
        m->columns.push_back(column);
        return;
      }
      if (!m->below) m->below = std::make_unique<PathNode>();
      node = m->below.get();
      path.remove_prefix(dot + 1);
    }
  }
};

std::string_view trim_blanks(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r'))
    raw.remove_suffix(1);
  return raw;
}

// A number as Value::from_json_number reads it: an integer when it is an int64 ("-0" is not), else
// a real with its text (its double only where a column needs it: json_number_double).
bool number_field(std::string_view raw, CopyField& f) {
  if (!is_json_number(raw)) return false;
  const char* end = raw.data() + raw.size();
  if (auto [p, ec] = std::from_chars(raw.data(), end, f.i);
      ec == std::errc() && p == end && (f.i != 0 || raw.front() != '-')) {
    f.kind = Value::Kind::integer;
    return true;
  }
  f.kind = Value::Kind::real;
  f.text = raw;
  return true;
}

// A string's bytes. Without an escape they are the payload's own, taken in place: the parser's
// first stage has checked the whole payload's UTF-8 and control characters, and unescaping, which
// this build's parser does a byte at a time, would only copy them.
bool read_string(od::value& v, std::string_view& s) {
  std::string_view raw = v.raw_json_token();  // the opening quote to the next token
  const char* body = raw.data() + 1;
  const auto* quote = static_cast<const char*>(std::memchr(body, '"', raw.size() - 1));
  if (quote && !std::memchr(body, '\\', static_cast<std::size_t>(quote - body))) {
    s = std::string_view(body, static_cast<std::size_t>(quote - body));
    return true;
  }
  return !v.get_string().get(s);
}

// A scalar of type `type` into `f` (kind null for null); false where parse_json would refuse it.
bool read_scalar(od::value& v, od::json_type type, CopyField& f) {
  switch (type) {
    case od::json_type::string: f.kind = Value::Kind::string; return read_string(v, f.s);
    case od::json_type::number: return number_field(trim_blanks(v.raw_json_token()), f);
    case od::json_type::boolean: f.kind = Value::Kind::boolean; return !v.get_bool().get(f.b);
    case od::json_type::null: {
      bool null = false;
      return !v.is_null().get(null) && null;
    }
    default: return false;
  }
}

// A field's name, unescaped only when it holds an escape (the bytes are UTF-8 already: the
// parser's first stage checks the whole payload).
bool key_of(od::field& field, std::string_view& key) {
  const char* raw = field.key().raw();
  const char* p = raw;
  while (*p != '"' && *p != '\\') ++p;
  if (*p == '"') {
    key = std::string_view(raw, static_cast<std::size_t>(p - raw));
    return true;
  }
  return !field.unescaped_key().get(key);
}

class Reader {
 public:
  Reader() {
    // As parse_json's parser: the depth bound is checked here (kMaxJsonDepth), below the parser's.
    if (parser_.allocate(4096, kMaxJsonDepth + 8) != simdjson::SUCCESS) throw std::bad_alloc();
  }

  const CopyField* read(const PostgresSinkConfig& cfg, std::string_view payload) {
    const FieldPlan& plan = plan_for(cfg);
    if (plan.whole) return nullptr;
    ++record_;
    values_.resize(cfg.columns.size());
    for (auto& v : values_) v.kind = Value::Kind::null;
    if (seen_.size() < plan.member_count) seen_.resize(plan.member_count);
    // A padded copy in a buffer reused from record to record: the payload has no padding.
    if (padded_.size() < payload.size() + simdjson::SIMDJSON_PADDING)
      padded_.resize(payload.size() + simdjson::SIMDJSON_PADDING);
    std::copy(payload.begin(), payload.end(), padded_.begin());
    od::document doc;
    od::json_type type{};
    od::object obj;
    if (parser_.iterate(padded_.data(), payload.size(), padded_.size()).get(doc) || doc.type().get(type) ||
        type != od::json_type::object || doc.get_object().get(obj) || !object(obj, plan.root, 1))
      return nullptr;
    // The parser stops where the object ends: a location after it is trailing content.
    const char* rest = nullptr;
    if (!doc.current_location().get(rest)) return nullptr;
    return values_.data();
  }

 private:
  const FieldPlan& plan_for(const PostgresSinkConfig& cfg) {
    for (const auto& p : plans_)
      if (p.built_for(cfg)) return p;
    FieldPlan& p = plans_[next_plan_++ % plans_.size()];
    p.build(cfg);
    return p;
  }

  // The members of an object at `depth` (the record is 1), as from_ondemand counts it.
  bool object(od::object& obj, const PathNode& node, std::size_t depth) {
    std::size_t next = 0;
    for (auto result : obj) {
      // The field in place: copying it out of its result stalled a load on every field.
      if (result.error()) return false;
      od::field& field = result.value_unsafe();
      std::string_view key;
      if (!key_of(field, key)) return false;
      const PathNode::Member* m = node.find(key, next);
      if (!m || seen_[m->id] == record_) {  // the first field of a name counts, as in Value::find
        if (!skip(field.value(), depth + 1)) return false;
        continue;
      }
      seen_[m->id] = record_;
      if (!member(field.value(), *m, depth + 1)) return false;
    }
    return true;
  }

  bool member(od::value& v, const PathNode::Member& m, std::size_t depth) {
    if (depth > kMaxJsonDepth) return false;
    od::json_type type{};
    if (v.type().get(type)) return false;
    if (type == od::json_type::object || type == od::json_type::array) {
      if (!m.columns.empty()) return false;  // a column takes it whole: its JSON text is the Value path's
      if (type == od::json_type::array) return skip(v, depth);
      od::object obj;
      return !v.get_object().get(obj) && object(obj, *m.below, depth);
    }
    // Straight into the first column's value: a copy of a value just built stalls on its stores.
    CopyField scratch;
    CopyField& f = m.columns.empty() ? scratch : values_[m.columns.front()];
    if (!read_scalar(v, type, f)) return false;
    for (std::size_t k = 1; k < m.columns.size(); ++k) values_[m.columns[k]] = f;
    return true;
  }

  // Reads a value no column takes, for its validity only.
  bool skip(od::value& v, std::size_t depth) {
    if (depth > kMaxJsonDepth) return false;
    od::json_type type{};
    if (v.type().get(type)) return false;
    if (type == od::json_type::object) {
      od::object obj;
      if (v.get_object().get(obj)) return false;
      for (auto result : obj) {
        std::string_view key;
        if (result.error() || !key_of(result.value_unsafe(), key) ||
            !skip(result.value_unsafe().value(), depth + 1))
          return false;
      }
      return true;
    }
    if (type == od::json_type::array) {
      od::array items;
      if (v.get_array().get(items)) return false;
      for (auto result : items)
        if (result.error() || !skip(result.value_unsafe(), depth + 1)) return false;
      return true;
    }
    CopyField f;
    return read_scalar(v, type, f);
  }

  od::parser parser_;
  std::string padded_;
  std::vector<CopyField> values_;
  std::vector<std::uint64_t> seen_;  // per member: the record in which it was last seen
  std::uint64_t record_ = 0;
  std::array<FieldPlan, 4> plans_;  // a routed sink alternates between a few tables' configs
  std::size_t next_plan_ = 0;
};

}  // namespace

double json_number_double(std::string_view text) {
  double d = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), d).ec == std::errc::result_out_of_range) {
    auto e = text.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
    d = tiny ? 0.0 : HUGE_VAL;
    if (!text.empty() && text.front() == '-') d = -d;
  }
  return d;
}

const CopyField* read_fields_ondemand(const PostgresSinkConfig& cfg, std::string_view payload) {
  thread_local Reader reader;
  return reader.read(cfg, payload);
}

}  // namespace etld::pg
