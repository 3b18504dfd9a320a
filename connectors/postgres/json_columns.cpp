// Columns learnt from JSON records (json_columns.hpp).
#include "connectors/postgres/json_columns.hpp"

#include <algorithm>

#include "config/schema/printable.hpp"

namespace etld::pg {

namespace {

ColumnSpec column_for(const std::string& name, const Value& v) {
  ColumnSpec c;
  c.name = name;
  c.quoted = quote_ident(name);
  c.path = name;
  switch (v.kind()) {
    case Value::Kind::boolean: c.type = PgType::boolean; break;
    case Value::Kind::integer: c.type = PgType::bigint; break;
    case Value::Kind::real: c.type = PgType::numeric; break;  // every digit kept
    case Value::Kind::string: c.type = PgType::text; break;
    default: c.type = PgType::jsonb; break;
  }
  c.declared_type = type_name(c.type);
  return c;
}

}  // namespace

std::size_t JsonColumns::learn(const Value& record, std::string& error, std::size_t& needed) {
  needed = 0;
  if (record.kind() != Value::Kind::object) {
    error = std::string("the record is a JSON ") + kind_name(record.kind()) +
            ", not an object: it has no fields to map to columns; map it with 'columns:'";
    return 0;
  }
  const Object& fields = record.as_object();
  // Records of one producer list their fields in one order: compared in place, no lookup.
  std::size_t i = 0;
  while (i < fields.size() && i < columns_.size() && fields[i].first == columns_[i].name) ++i;
  needed = i;
  std::vector<std::size_t> fresh;
  for (; i < fields.size(); ++i) {
    const auto& [name, value] = fields[i];
    if (auto known = index_.find(name); known != index_.end()) {
      needed = std::max(needed, known->second + 1);
      continue;
    }
    if (value.is_null()) continue;
    if (name.empty() || name.size() > kMaxIdentifierBytes || name.find('\0') != std::string::npos) {
      error = "field '" + printable(name, 80) +
              "' cannot be a column name (1 to 63 bytes, no NUL): map the "
              "record's columns with 'columns:'";
      return 0;
    }
    bool repeated = false;  // a name twice in one record: the first counts
    for (std::size_t f : fresh) repeated = repeated || fields[f].first == name;
    if (!repeated) fresh.push_back(i);
  }
  if (columns_.size() + fresh.size() > kMaxColumns) {
    error = "the records bring more than " + std::to_string(kMaxColumns) +
            " fields, PostgreSQL's most columns per table";
    return 0;
  }
  for (std::size_t f : fresh) {
    index_.emplace(fields[f].first, columns_.size());
    columns_.push_back(column_for(fields[f].first, fields[f].second));
  }
  if (!fresh.empty()) needed = columns_.size();
  return fresh.size();
}

}  // namespace etld::pg
