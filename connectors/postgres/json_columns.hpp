// Columns from JSON records (docs/connectors/postgres.md#columns-from-the-schema): a postgres sink
// without `columns:` fed records that carry no schema (JSON) learns the columns of each table from
// the records themselves: every top-level field with a value is a column of that name, typed by
// the first value it had (an integer bigint, another number numeric, a string text, true/false
// boolean, an object or array jsonb); a null brings no column. The set only grows: a record with a
// field not seen before makes the next layout (the columns learnt so far), and a record writes
// the first layout that holds all its fields (NULL for those of them it lacks), so that a layout
// the table refuses holds back only the records that need it.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/postgres/pg_config.hpp"
#include "stages/engine/value.hpp"

namespace etld::pg {

class JsonColumns {
 public:
  // PostgreSQL's most columns per table.
  static constexpr std::size_t kMaxColumns = 1600;

  // Adds the columns of `record`'s fields not known yet. Returns how many were added; sets `error`
  // (and adds none) when the record is not an object or a new field cannot be a column.
  // `needed`: how many of the columns (in order) the record's fields reach, the new ones included.
  std::size_t learn(const Value& record, std::string& error, std::size_t& needed);
  const std::vector<ColumnSpec>& columns() const { return columns_; }

 private:
  std::vector<ColumnSpec> columns_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace etld::pg
