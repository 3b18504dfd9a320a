// What a stage's output records hold, field by field, for a sink that derives its table from them
// and folds partial results into stored rows (the postgres sink's `mode: merge`): the window
// stage emits per-batch partial aggregates, and the table, merged in the same transaction as the
// source's offsets, is the aggregation's state (docs/windows.md, "Exact across crashes").
#pragma once

#include <string>
#include <vector>

namespace etld {

struct OutputColumn {
  std::string name;      // the record's top-level field, and the column's name
  std::string sql_type;  // as written in CREATE TABLE: "bigint", "numeric", "timestamptz", "text[]"
  bool key = false;      // part of the row's identity (window bounds, group-by fields)
  // How an incoming partial row folds into the stored one, as SQL over placeholders {old:NAME}
  // (the stored row's column NAME) and {new:NAME} (the incoming row's), NAME any column of this
  // output: "{old:views} + {new:views}". Empty for keys. Every column's expression sees the
  // stored row as it was before the update (PostgreSQL's ON CONFLICT DO UPDATE semantics).
  std::string merge_sql;
};

}  // namespace etld
