#include "connectors/postgres/pg_sql.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace etld::pg {

namespace {

std::string sql_join(const std::vector<std::string>& v, const std::string& sep) {
  return fmt::format("{}", fmt::join(v, sep));
}

}  // namespace

void derive_sql(PostgresSinkConfig& c) {
  std::vector<std::string> cols, keys, updates;
  for (const auto& col : c.columns) {
    cols.push_back(col.quoted);
    if (!col.is_key) updates.push_back(col.quoted + " = EXCLUDED." + col.quoted);
  }
  for (const auto& k : c.key) keys.push_back(quote_ident(k));
  const std::string col_list = sql_join(cols, ", ");
  const std::string key_list = sql_join(keys, ", ");
  c.copy_target_sql = "COPY " + c.qualified + " (" + col_list + ") FROM STDIN";
  c.uses_stage = c.mode != Mode::insert || c.delete_on_tombstone;
  c.create_stage_sql = "CREATE TEMP TABLE IF NOT EXISTS " + c.stage_table +
                       " ON COMMIT DELETE ROWS AS SELECT 0::bigint AS _etld_seq, "
                       "false AS _etld_del, " +
                       col_list + " FROM " + c.qualified + " WITH NO DATA";
  c.copy_stage_sql = "COPY pg_temp." + c.stage_table + " (_etld_seq, _etld_del, " + col_list + ") FROM STDIN";
  c.clear_stage_sql = "DELETE FROM pg_temp." + c.stage_table;
  if (!keys.empty()) {
    std::vector<std::string> match_t, match_s;
    for (const auto& k : keys) {
      match_t.push_back("t." + k + " = d." + k);
      match_s.push_back("d." + k + " = s." + k);
    }
    c.delete_sql = "DELETE FROM " + c.qualified + " t USING (SELECT DISTINCT " + key_list + " FROM pg_temp." +
                   c.stage_table + " WHERE _etld_del) d WHERE " + sql_join(match_t, " AND ");
    // Per key, the last upsert (upsert) or the first (insert_ignore) wins; with deletes in the
    // batch, only operations after the key's last delete count (the delete ran first).
    auto upsert = [&](bool after_delete) {
      std::string sql = "INSERT INTO " + c.qualified + " AS t (" + col_list + ") SELECT " + col_list +
                        " FROM (SELECT DISTINCT ON (" + key_list + ") * FROM pg_temp." + c.stage_table +
                        " s WHERE NOT _etld_del";
      if (after_delete)
        sql += " AND s._etld_seq > COALESCE((SELECT max(d._etld_seq) FROM pg_temp." + c.stage_table +
               " d WHERE "
               "d._etld_del AND " +
               sql_join(match_s, " AND ") + "), -1)";
      // With a guard, the newest version of a key in the batch wins whatever the arrival order.
      const std::string guard_order = c.guard.empty() ? "" : quote_ident(c.guard) + " DESC NULLS LAST, ";
      sql += " ORDER BY " + key_list + ", " + guard_order + "_etld_seq " +
             (c.mode == Mode::upsert ? "DESC" : "ASC") + ") x";
      sql += " ON CONFLICT (" + key_list + ") DO ";
      sql += c.mode == Mode::upsert && !updates.empty() ? "UPDATE SET " + sql_join(updates, ", ") : "NOTHING";
      if (c.mode == Mode::upsert && !updates.empty() && !c.guard.empty()) {
        // A replayed (older or equal) version never replaces a newer row.
        const std::string g = quote_ident(c.guard);
        sql += " WHERE t." + g + " IS NULL OR t." + g + " < EXCLUDED." + g;
      }
      return sql;
    };
    c.upsert_sql = upsert(false);
    c.upsert_after_delete_sql = upsert(true);
  }
  if (c.create_table) {
    std::vector<std::string> defs;
    for (const auto& col : c.columns)
      defs.push_back(col.quoted + " " +
                     (col.declared_type.empty() ? type_name(col.type) : col.declared_type) +
                     (col.required && !col.is_key ? " NOT NULL" : ""));
    if (!keys.empty()) defs.push_back("PRIMARY KEY (" + key_list + ")");
    c.create_table_sql = "CREATE TABLE IF NOT EXISTS " + c.qualified + " (" + sql_join(defs, ", ") + ")";
  }
  c.create_dead_letter_sql =
      "CREATE TABLE IF NOT EXISTS " + c.dead_letter_qualified +
      " (id bigserial PRIMARY KEY, pipeline text, stage text, topic text, \"partition\" integer, "
      "\"offset\" bigint, key bytea, value bytea, headers jsonb, error text, sqlstate text, "
      "failed_at timestamptz NOT NULL DEFAULT now())";
  c.insert_dead_letter_sql =
      "INSERT INTO " + c.dead_letter_qualified +
      " (pipeline, stage, topic, \"partition\", \"offset\", key, value, headers, error, sqlstate)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
  c.lock_key = "etld:" + c.display;
  if (c.exactly_once) {
    const std::string t = c.offsets_qualified;
    // Shared by every sink (and process) using the table, whatever their target tables.
    c.offsets_lock_key = "etld:" + c.offsets_display;
    const std::string row = " WHERE consumer_group = $1 AND topic = $2 AND \"partition\" = $3";
    c.create_offsets_sql =
        "CREATE TABLE IF NOT EXISTS " + t +
        " (consumer_group text NOT NULL, topic text NOT NULL, \"partition\" integer NOT NULL, "
        "next_offset bigint, epoch bigint NOT NULL DEFAULT 0, "
        "updated_at timestamptz NOT NULL DEFAULT now(), "
        "PRIMARY KEY (consumer_group, topic, \"partition\"))";
    c.claim_offset_sql =
        "INSERT INTO " + t +
        " AS o (consumer_group, topic, \"partition\", next_offset, epoch) VALUES ($1, $2, $3, NULL, 1) "
        "ON CONFLICT (consumer_group, topic, \"partition\") DO UPDATE SET epoch = o.epoch + 1, "
        "updated_at = now() RETURNING epoch, next_offset";
    // Every partition of a batch in one statement: one round trip per transaction, not one per
    // partition.
    c.advance_offsets_sql =
        "UPDATE " + t +
        " AS o SET next_offset = v.next_offset, updated_at = now() FROM unnest($2::text[], $3::integer[], "
        "$4::bigint[], $5::bigint[], $6::bigint[]) AS v(topic, \"partition\", epoch, next_offset, expected) "
        "WHERE o.consumer_group = $1 AND o.topic = v.topic AND o.\"partition\" = v.\"partition\" AND "
        "o.epoch = v.epoch AND o.next_offset IS NOT DISTINCT FROM v.expected RETURNING o.topic, "
        "o.\"partition\"";
    c.read_offset_sql = "SELECT epoch, next_offset FROM " + t + row;
  }
}

}  // namespace etld::pg
