// The postgres sink's configuration, parsed and checked once per stage (PostgresSinkConfig), and
// the SQL text derived from it (pg_sql.hpp). Immutable after parsing; shared by every instance of
// the stage.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/schema/options.hpp"
#include "config/schema/pipeline.hpp"
#include "stages/engine/output_columns.hpp"
#include "stages/engine/record_schema.hpp"
#include "stages/sink/ratio_guard.hpp"

namespace etld::avro {
struct AvroNode;
}

namespace etld::pg {

// The column types a mapping can declare; values are converted and range-checked in C++.
enum class PgType {
  smallint,
  integer,
  bigint,
  real,
  double_precision,
  numeric,
  text,
  boolean,
  timestamptz,
  date,
  uuid,
  jsonb,
  bytea
};
const char* type_name(PgType t);  // as written in SQL: "double precision"
std::optional<PgType> parse_type(const std::string& name);
std::vector<std::string> type_names();

// Where a column's value comes from.
// envelope: a field of a Debezium change event's envelope (`from: _source.lsn`: path "source.lsn");
// soft_delete: mode debezium's soft-delete flag, true on delete and false on upsert.
enum class ColumnSource {
  field,
  whole,
  topic,
  partition,
  offset,
  timestamp,
  key,
  headers,
  envelope,
  soft_delete
};

struct ColumnSpec {
  std::string name;    // as written (case-sensitive: it is quoted in SQL)
  std::string quoted;  // "name"
  ColumnSource source = ColumnSource::field;
  std::string path;  // for ColumnSource::field: a dotted path into the record
  PgType type = PgType::text;
  bool required = false;
  std::optional<std::string> default_copy;  // the default, already encoded as COPY text
  bool is_key = false;
  YAML::Mark mark = YAML::Mark::null_mark();       // of the column's entry
  YAML::Mark type_mark = YAML::Mark::null_mark();  // of its type
  // As declared in CREATE TABLE when it is not type_name(type): a type derived from the stage
  // upstream (mode merge) that etld does not convert itself ("text[]"); values go as text.
  std::string declared_type;
  // Columns from the schema (schema_columns.hpp): the field's Avro schema node, for the checks
  // against the table and its DDL; null for a mapped or added column.
  const avro::AvroNode* field = nullptr;
};

enum class Mode { insert, upsert, insert_ignore, merge, debezium };

// What the dead-letter guard does when a batch trips max_dead_letter_ratio (docs/connectors/postgres.md).
using sink::GuardAction;

struct Routing;  // pg_routing.hpp

struct PostgresSinkConfig {
  std::string dsn;           // secret: never logged
  std::string dsn_redacted;  // safe to log: the password replaced by ***
  std::string schema;        // "" = search_path
  std::string table;
  std::string qualified;  // "schema"."table" or "table", quoted
  std::string display;    // schema.table as written
  // The options' defaults are their specs' (option_specs()), read by parse_config.
  Mode mode{};
  std::vector<std::string> key;
  std::vector<ColumnSpec> columns;
  bool create_table{};
  std::size_t max_rows{};
  std::chrono::milliseconds max_wait{};
  // The most events upstream sends before done() releases credit (max_demand per input): once
  // the sink holds that many, no more can come, so waiting for max_rows or max_wait is pointless.
  std::size_t credit_limit = 1000;
  bool delete_on_tombstone = false;  // effective: true only when a key is set
  bool dead_letter_table = true;     // dead letters go to the table dead_letter_qualified
  std::string dead_letter_display;   // schema.table as written
  std::string dead_letter_qualified;
  std::string dead_letter_topic;    // "" = no dead-letter topic
  std::string dead_letter_brokers;  // with dead_letter_topic
  // librdkafka properties for the dead-letter producer; values may be secrets: never logged.
  std::vector<std::pair<std::string, std::string>> dead_letter_librdkafka;
  std::chrono::milliseconds initial_backoff{};
  std::chrono::milliseconds max_backoff{};
  double max_dead_letter_ratio{};
  GuardAction on_dead_letter_ratio{};
  std::string pipeline = "etld";
  std::string stage;
  PoisonPolicy on_poison = PoisonPolicy::dead_letter;
  // Replay-safe upserts: a mapped column whose stored value must be older (smaller) than the
  // incoming one for an upsert to replace the row. "" = none.
  std::string guard;
  // mode debezium (pg_debezium.hpp, docs/cdc.md): the envelope field the guard column stores
  // ("source.lsn"), the soft-delete column ("" = deletes delete), whether op t truncates.
  std::string guard_field;
  std::string soft_delete;
  bool truncate = false;
  // delivery: exactly_once: the rows and the next offsets of their Kafka partitions commit in one
  // transaction, fenced by a per-partition epoch (see docs/delivery.md).
  bool exactly_once{};
  std::string offsets_display;
  std::string offsets_qualified;

  // Columns from the schema (schema_columns.hpp): no `columns:` was given; the column_overrides
  // (`skip` entries in skipped_fields) and evolve: add_columns. A table's config made for one row
  // schema (config_for_schema) has its columns and keeps the schema they point into alive.
  bool schema_columns = false;
  std::vector<ColumnSpec> column_overrides;
  std::vector<std::string> skipped_fields;
  bool evolve = false;
  std::shared_ptr<const RecordSchema> row_schema;
  bool deletes_only = false;  // made for tombstones: the key columns alone; it never changes the table

  // Many tables (pg_routing.hpp): set on a routed stage's own config, whose table only holds the
  // dead letters of records no table takes; each table's config (routing null) is made from it.
  std::shared_ptr<const Routing> routing;

  // Derived SQL.
  std::string stage_table = "etld_stage";  // the per-connection staging table (one per table)
  bool uses_stage = false;                 // upsert modes, or keyed deletes: a per-connection staging table
  std::string copy_target_sql;
  std::string create_stage_sql;
  std::string copy_stage_sql;
  std::string delete_sql;               // deletes target rows matching the staged deletes
  std::string clear_stage_sql;          // empties the staging table inside a transaction
  std::string upsert_sql;               // staged rows -> target (no deletes in the batch)
  std::string upsert_after_delete_sql;  // the same, only rows after their key's last delete
  std::string soft_delete_sql;          // mode debezium with soft_delete: after the upserts
  std::string truncate_sql;             // mode debezium with truncate: true
  // mode merge (pg_merge.hpp): the upstream stage's columns with their fold rules; how many
  // rounds the staged rows need (the most rows of one key); $1 = round: its rows folded in.
  std::vector<OutputColumn> merge_columns;
  std::string merge_rounds_sql;
  std::string merge_round_sql;
  std::string create_table_sql;  // "" unless create_table
  std::string create_dead_letter_sql;
  std::string insert_dead_letter_sql;  // $1..$11
  std::string lock_key;                // for pg_advisory_xact_lock around DDL
  std::string offsets_lock_key;        // pg_advisory_xact_lock around the offsets table's DDL
  std::string create_offsets_sql;
  std::string claim_offset_sql;  // $1 group, $2 topic, $3 partition -> epoch, next_offset
  // $1 group; arrays $2 topics, $3 partitions, $4 epochs, $5 next offsets, $6 expected previous
  // ones; returns the (topic, partition) rows it advanced.
  std::string advance_offsets_sql;
  std::string read_offset_sql;  // $1..$3 -> epoch, next_offset
};

const std::vector<OptionSpec>& option_specs();

// batch.max_rows as written, else its default; throws ConfigError when out of range.
std::size_t batch_max_rows(const Options& options);

// Parses and checks every option; throws ConfigError located at the culprit node.
PostgresSinkConfig parse_config(const StageConfig& stage, const PipelineConfig& pipeline);

// PostgreSQL's longest identifier (NAMEDATALEN - 1): it cuts longer names silently.
inline constexpr std::size_t kMaxIdentifierBytes = 63;

// "<table>_dead_letters", the table's part cut (at a UTF-8 boundary) so that the whole fits 63 bytes.
std::string default_dead_letter_table(const std::string& table);

// "name" with embedded quotes doubled.
std::string quote_ident(const std::string& name);
// Splits "schema.table" (at most one dot); throws ConfigError at mark when malformed.
std::pair<std::string, std::string> split_table(const std::string& text, const YAML::Mark& mark);
// The DSN with its password replaced by ***; "" -> "(default connection)".
std::string redact_dsn(const std::string& dsn);

}  // namespace etld::pg
