// output_columns (aggregate.hpp): each aggregate's columns and the SQL that folds an incoming
// partial row into a stored one, the same fold as AggState::merge (aggregate.cpp), so that a
// table merging partials holds what etld would compute from all the inputs at once
// (tests/connectors/postgres_aggregate_merge_test.cpp). A NULL (a partial without a value) never
// wipes a stored value; every hidden state is jsonb.
#include "stages/flow/aggregate.hpp"
#include "stages/flow/exact_number.hpp"
#include "stages/flow/hll.hpp"

namespace etld::flow {
namespace {

std::string old_col(const std::string& name) { return "{old:" + name + "}"; }
std::string new_col(const std::string& name) { return "{new:" + name + "}"; }

std::string coalesce_sum(const std::string& o, const std::string& n) {
  return "COALESCE(" + o + " + " + n + ", " + o + ", " + n + ")";
}

// min/max over the column type: jsonb strings compared by bytes like etld does (jsonb's own
// order would use the database's collation), text with COLLATE "C" for the same reason.
std::string extreme_sql(const AggregateSpec& spec) {
  bool min = spec.kind == AggKind::min;
  std::string o = old_col(spec.output), n = new_col(spec.output);
  if (spec.sql_type == "jsonb") {
    auto as_text = [](const std::string& x) { return "(jsonb_build_array(" + x + ") ->> 0) COLLATE \"C\""; };
    return "CASE WHEN " + n + " IS NULL THEN " + o + " WHEN " + o + " IS NULL THEN " + n +
           " WHEN jsonb_typeof(" + o + ") = 'string' AND jsonb_typeof(" + n + ") = 'string' THEN CASE WHEN " +
           as_text(n) + (min ? " < " : " > ") + as_text(o) + " THEN " + n + " ELSE " + o + " END ELSE " +
           (min ? "LEAST(" : "GREATEST(") + o + ", " + n + ") END";
  }
  std::string collate = spec.sql_type == "text" ? " COLLATE \"C\"" : "";
  return std::string(min ? "LEAST(" : "GREATEST(") + o + collate + ", " + n + collate + ")";
}

std::string jsonb_or_empty(const std::string& x, const char* empty) {
  return "COALESCE(" + x + ", '" + empty + "'::jsonb)";
}

// The rows (k text, v text) of the stored and the incoming jsonb objects `name`.
std::string both_objects(const std::string& name) {
  return "(SELECT * FROM jsonb_each_text(" + jsonb_or_empty(old_col(name), "{}") +
         ") UNION ALL SELECT * FROM jsonb_each_text(" + jsonb_or_empty(new_col(name), "{}") + ")) AS s(k, v)";
}

}  // namespace

std::vector<OutputColumn> output_columns(const AggregateSpec& spec) {
  const std::string& out = spec.output;
  std::string o = old_col(out), n = new_col(out);
  switch (spec.kind) {
    case AggKind::count: return {{out, "bigint", false, "COALESCE(" + o + ", 0) + COALESCE(" + n + ", 0)"}};
    case AggKind::sum: return {{out, "numeric", false, coalesce_sum(o, n)}};
    case AggKind::min:
    case AggKind::max: return {{out, spec.sql_type, false, extreme_sql(spec)}};
    case AggKind::avg: {
      std::string sum = hidden_field(spec, "sum"), count = hidden_field(spec, "count");
      std::string merged_sum = coalesce_sum(old_col(sum), new_col(sum));
      std::string merged_count = "COALESCE(" + old_col(count) + ", 0) + COALESCE(" + new_col(count) + ", 0)";
      return {{out, "numeric", false, average_sql(merged_sum, merged_count)},
              {sum, "numeric", false, merged_sum},
              {count, "bigint", false, merged_count}};
    }
    case AggKind::first:
    case AggKind::last: {
      std::string at = hidden_field(spec, "at");
      std::string takes_new = "(" + new_col(at) + (spec.kind == AggKind::first ? " < " : " >= ") +
                              old_col(at) + " OR " + old_col(at) + " IS NULL)";
      return {{out, spec.sql_type, false, "CASE WHEN " + takes_new + " THEN " + n + " ELSE " + o + " END"},
              {at, "bigint", false,
               "CASE WHEN " + takes_new + " THEN " + new_col(at) + " ELSE " + old_col(at) + " END"}};
    }
    case AggKind::count_distinct: {
      std::string set = hidden_field(spec, "set");
      // The elements are the values' JSON texts: compared and ordered as text by bytes, like etld.
      std::string elements = "jsonb_array_elements_text(" + jsonb_or_empty(old_col(set), "[]") + " || " +
                             jsonb_or_empty(new_col(set), "[]") + ") AS x";
      return {{out, "bigint", false, "(SELECT count(DISTINCT x) FROM " + elements + ")"},
              {set, "jsonb", false,
               "(SELECT COALESCE(jsonb_agg(x ORDER BY x COLLATE \"C\"), '[]'::jsonb) FROM (SELECT DISTINCT x "
               "FROM " +
                   elements + ") AS d)"}};
    }
    case AggKind::approx_count_distinct: {
      std::string hll = hidden_field(spec, "hll");
      std::string merged =
          "(SELECT COALESCE(jsonb_object_agg(k, r), '{}'::jsonb) FROM (SELECT k, max(v::int) AS r FROM " +
          both_objects(hll) + " GROUP BY k) AS t)";
      return {{out, "bigint", false, HyperLogLog::estimate_sql(merged)}, {hll, "jsonb", false, merged}};
    }
    case AggKind::top_k: {
      std::string counts = hidden_field(spec, "counts");
      std::string summed = "SELECT k, sum(v::bigint) AS n FROM " + both_objects(counts) + " GROUP BY k";
      return {{out, "jsonb", false,
               "(SELECT jsonb_agg(jsonb_build_object('value', k::jsonb, 'count', n) ORDER BY n DESC, k "
               "COLLATE \"C\") "
               "FROM (" +
                   summed + " ORDER BY n DESC, k COLLATE \"C\" LIMIT " + std::to_string(spec.k) + ") AS t)"},
              {counts, "jsonb", false,
               "(SELECT COALESCE(jsonb_object_agg(k, n), '{}'::jsonb) FROM (" + summed + ") AS t)"}};
    }
  }
  return {};
}

}  // namespace etld::flow
