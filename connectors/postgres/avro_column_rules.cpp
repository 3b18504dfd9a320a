#include "connectors/postgres/avro_column_rules.hpp"

#include <algorithm>
#include <initializer_list>
#include <vector>

namespace etld::pg {

namespace {

using avro::AvroNode;
using avro::AvroType;
using avro::Logical;

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

const char* logical_name(Logical l) {
  switch (l) {
    case Logical::decimal: return "decimal";
    case Logical::date: return "date";
    case Logical::time_millis: return "time-millis";
    case Logical::time_micros: return "time-micros";
    case Logical::timestamp_millis: return "timestamp-millis";
    case Logical::timestamp_micros: return "timestamp-micros";
    case Logical::local_timestamp_millis: return "local-timestamp-millis";
    case Logical::local_timestamp_micros: return "local-timestamp-micros";
    case Logical::uuid: return "uuid";
    case Logical::none: break;
  }
  return "";
}

bool is_timestamp(Logical l) {
  return l == Logical::timestamp_millis || l == Logical::timestamp_micros ||
         l == Logical::local_timestamp_millis || l == Logical::local_timestamp_micros;
}

// The most decimal digits an integer column's values have in every case (smallint: 32767).
int integer_digits(const std::string& typname) { return typname == "int2" ? 4 : typname == "int4" ? 9 : 18; }

// A value that is not null, of one type (a union's branch).
std::optional<std::string> value_problem(const AvroNode& f, const ColumnType& c) {
  const AvroType t = f.type;
  const Logical l = f.logical;
  const bool raw_bytes = (t == AvroType::bytes || t == AvroType::fixed) && l == Logical::none;
  const bool plain_string = t == AvroType::string && l == Logical::none;
  const std::string& pg = c.typname;
  const std::string cannot = c.display + " cannot hold it";

  if (one_of(pg, {"text", "varchar", "bpchar", "name", "citext"})) {
    if (raw_bytes)
      return "raw bytes are not text: " + c.display + " refuses bytes that are not UTF-8; use bytea";
    return std::nullopt;  // every other value has a text form
  }
  if (pg == "bytea") {
    if (raw_bytes || plain_string) return std::nullopt;
    return "bytea takes Avro bytes, fixed or string";
  }
  if (pg == "json" || pg == "jsonb") {
    if (raw_bytes) return "raw bytes are not JSON text";
    return std::nullopt;
  }
  if (one_of(pg, {"int2", "int4", "int8"})) {
    const int digits = integer_digits(pg);
    if (l == Logical::none && (t == AvroType::int_ || t == AvroType::long_)) {
      const int bits = t == AvroType::int_ ? 32 : 64;
      const int column_bits = pg == "int2" ? 16 : pg == "int4" ? 32 : 64;
      if (bits > column_bits) return "its values may exceed the range of " + c.display;
      return std::nullopt;
    }
    if (l == Logical::decimal) {
      if (f.scale > 0)
        return "it has " + std::to_string(f.scale) + " decimal place(s), which " + c.display + " cannot hold";
      if (f.precision > digits)
        return "its " + std::to_string(f.precision) + " digits may exceed the range of " + c.display;
      return std::nullopt;
    }
    if (plain_string)
      return "a string is not a number: " + c.display + " refuses every value that is not one";
    return cannot;
  }
  if (pg == "numeric") {
    const bool constrained = c.precision > 0;
    const int int_digits = constrained ? c.precision - std::max(c.scale, 0) : 0;
    if (l == Logical::none && (t == AvroType::int_ || t == AvroType::long_)) {
      const int needs = t == AvroType::int_ ? 10 : 19;
      if (constrained && needs > int_digits)
        return "its values may have " + std::to_string(needs) + " digits, " + c.display + " holds " +
               std::to_string(int_digits) + " before the decimal point";
      return std::nullopt;
    }
    if (l == Logical::none && (t == AvroType::float_ || t == AvroType::double_)) return std::nullopt;
    if (l == Logical::decimal) {
      if (!constrained) return std::nullopt;
      if (f.scale > std::max(c.scale, 0))
        return "it has " + std::to_string(f.scale) + " decimal place(s), " + c.display + " keeps " +
               std::to_string(std::max(c.scale, 0)) + ": PostgreSQL would round them away";
      if (f.precision - f.scale > int_digits)
        return "it has up to " + std::to_string(f.precision - f.scale) +
               " digits before the decimal point, " + c.display + " holds " + std::to_string(int_digits);
      return std::nullopt;
    }
    if (plain_string)
      return "a string is not a number: " + c.display + " refuses every value that is not one";
    return cannot;
  }
  if (pg == "float4" || pg == "float8") {
    if (l == Logical::none &&
        (t == AvroType::int_ || t == AvroType::long_ || t == AvroType::float_ || t == AvroType::double_))
      return std::nullopt;
    if (l == Logical::decimal) return "a float column rounds a decimal's digits; use numeric to keep them";
    if (plain_string)
      return "a string is not a number: " + c.display + " refuses every value that is not one";
    return cannot;
  }
  if (pg == "bool") {
    if (t == AvroType::boolean) return std::nullopt;
    return cannot;
  }
  if (pg == "date") {
    if (l == Logical::date || plain_string) return std::nullopt;
    if (is_timestamp(l)) return "a date column loses the time of day; use timestamptz";
    return cannot;
  }
  if (pg == "timestamptz" || pg == "timestamp") {
    if (is_timestamp(l) || l == Logical::date || plain_string) return std::nullopt;
    if (l == Logical::none && (t == AvroType::int_ || t == AvroType::long_))
      return "a number is not a time: give the field a timestamp logical type, or use bigint";
    return cannot;
  }
  if (pg == "time" || pg == "timetz") {
    if (l == Logical::time_millis || l == Logical::time_micros || plain_string) return std::nullopt;
    return cannot;
  }
  if (pg == "uuid") {
    if (l == Logical::uuid || plain_string) return std::nullopt;
    return cannot;
  }
  return std::nullopt;  // other types (enums, arrays, ranges, ...) parse text: PostgreSQL judges each value
}

}  // namespace

std::string avro_type_text(const AvroNode& n) {
  if (n.logical == Logical::decimal)
    return "decimal(" + std::to_string(n.precision) + "," + std::to_string(n.scale) + ")";
  if (n.logical != Logical::none) return logical_name(n.logical);
  switch (n.type) {
    case AvroType::null: return "null";
    case AvroType::boolean: return "boolean";
    case AvroType::int_: return "int";
    case AvroType::long_: return "long";
    case AvroType::float_: return "float";
    case AvroType::double_: return "double";
    case AvroType::bytes: return "bytes";
    case AvroType::string: return "string";
    case AvroType::record: return "record " + n.name;
    case AvroType::enum_: return "enum " + n.name;
    case AvroType::array: return "array";
    case AvroType::map: return "map";
    case AvroType::fixed: return "fixed(" + std::to_string(n.fixed_size) + ")";
    case AvroType::union_: {
      std::string out = "[";
      for (std::size_t i = 0; i < n.branches.size(); ++i)
        out += (i ? ", " : "") + avro_type_text(*n.branches[i]);
      return out + "]";
    }
  }
  return "?";
}

std::optional<std::string> avro_column_problem(const AvroNode& field, const ColumnType& column,
                                               bool null_default, bool nullable_path) {
  bool nullable = nullable_path || field.type == AvroType::null;
  std::vector<const AvroNode*> values;
  if (field.type == AvroType::union_) {
    for (const AvroNode* b : field.branches) {
      if (b->type == AvroType::null)
        nullable = true;
      else
        values.push_back(b);
    }
  } else if (!nullable) {
    values.push_back(&field);
  }
  if (nullable && column.not_null && !null_default)
    return "the field may be null and the column is NOT NULL: etld writes NULL for it (a column DEFAULT "
           "fills only columns that are not mapped)";
  for (const AvroNode* v : values)
    if (auto problem = value_problem(*v, column))
      return values.size() > 1 ? "its branch " + avro_type_text(*v) + ": " + *problem : *problem;
  return std::nullopt;
}

}  // namespace etld::pg
