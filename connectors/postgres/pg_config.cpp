// The postgres sink's options: parsing and checking every option (mode, dead letters, delivery,
// the guard) into PostgresSinkConfig, and the option table `etld reference` prints, beside the
// code that reads each option so that the two cannot drift. The column mapping is
// pg_columns.cpp's, mode merge's derived columns pg_merge.cpp's, the SQL derived from the options
// pg_sql.cpp's.
#include "connectors/postgres/pg_config.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <set>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/dsn_check.hpp"
#include "connectors/postgres/pg_columns.hpp"
#include "connectors/postgres/pg_debezium.hpp"
#include "connectors/postgres/pg_merge.hpp"
#include "connectors/postgres/pg_routing.hpp"
#include "connectors/postgres/pg_sql.hpp"
#ifdef ETLD_WITH_KAFKA
#include "connectors/kafka/dead_letter_topic.hpp"
#endif

namespace etld::pg {

namespace {

struct TypeName {
  const char* name;
  PgType type;
};
constexpr TypeName kTypes[] = {
    {"smallint", PgType::smallint},
    {"integer", PgType::integer},
    {"bigint", PgType::bigint},
    {"real", PgType::real},
    {"double precision", PgType::double_precision},
    {"numeric", PgType::numeric},
    {"text", PgType::text},
    {"boolean", PgType::boolean},
    {"timestamptz", PgType::timestamptz},
    {"date", PgType::date},
    {"uuid", PgType::uuid},
    {"jsonb", PgType::jsonb},
    {"bytea", PgType::bytea},
};
// Accepted spellings besides the canonical ones.
constexpr TypeName kAliases[] = {
    {"int2", PgType::smallint},
    {"int", PgType::integer},
    {"int4", PgType::integer},
    {"int8", PgType::bigint},
    {"float4", PgType::real},
    {"float8", PgType::double_precision},
    {"double", PgType::double_precision},
    {"bool", PgType::boolean},
    {"decimal", PgType::numeric},
    {"timestamp with time zone", PgType::timestamptz},
};

// Checks that every key of `node` is one of `allowed`.

void require_map(const YAML::Node& node, const std::string& what, const std::string& example) {
  if (!node.IsMap()) throw ConfigError(node.Mark(), what + " must be a map", "write it like " + example);
}

// A key of a mapping option whose keys default one by one (batch, retry): as written, else from
// the option's default in option_specs(); `mark` is where a message about it points.
struct MapField {
  YAML::Node value;
  YAML::Mark mark;
};
MapField map_field(const Options& o, const std::string& option, const std::string& key) {
  if (o.has(option)) {
    const YAML::Node written = o.node(option);
    if (written.IsMap() && written[key].IsDefined()) return {written[key], written[key].Mark()};
  }
  const YAML::Node fallback = o.default_node(option);
  return {fallback[key], o.mark(option)};
}

// A mapping option as written; its default's text is the example of a message.
void check_map_option(const Options& o, const std::string& option, const std::vector<std::string>& keys) {
  if (!o.has(option)) return;
  std::string example;
  for (const auto& spec : option_specs())
    if (spec.name == option) example = spec.default_text;
  require_map(o.node(option), "option '" + option + "'", example);
  check_keys(o.node(option), keys, "'" + option + "'");
}

// What exactly_once needs of the sink itself: every write of a batch must join its transaction.
// What it needs of the stages upstream (one source that keeps its positions in our store, stages
// that keep each partition's records one to one and in order) the engine checks for every sink
// that offers an offset store (config/delivery_check.hpp).
void check_exactly_once(const PostgresSinkConfig& c, const StageConfig& stage) {
  const Options& o = stage.options;
  const YAML::Mark at = o.mark("delivery");
  if (c.on_poison == PoisonPolicy::pause_partition)
    throw ConfigError(at, "delivery: exactly_once does not support on_poison: pause_partition",
                      "use on_poison: dead_letter (dead letters commit with the rows) or stop");
  if (c.on_poison == PoisonPolicy::dead_letter && !c.dead_letter_topic.empty())
    throw ConfigError(o.mark("dead_letter"),
                      "delivery: exactly_once cannot send dead letters to a Kafka topic: they cannot join "
                      "the PostgreSQL transaction",
                      "use dead_letter: {table: ...} alone");
}

}  // namespace

std::string default_dead_letter_table(const std::string& table) {
  static const std::string suffix = "_dead_letters";
  std::size_t keep = std::min(table.size(), kMaxIdentifierBytes - suffix.size());
  while (keep > 0 && keep < table.size() && (static_cast<unsigned char>(table[keep]) & 0xc0) == 0x80) --keep;
  return table.substr(0, keep) + suffix;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

void check_keys(const YAML::Node& node, const std::vector<std::string>& allowed, const std::string& where) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string hint = did_you_mean(key, allowed);
    if (hint.empty()) hint = "known keys: " + join(allowed, ", ");
    throw ConfigError(it->first.Mark(), "unknown key '" + key + "' in " + where, hint);
  }
}

const char* type_name(PgType t) {
  for (const auto& n : kTypes)
    if (n.type == t) return n.name;
  return "?";
}

std::optional<PgType> parse_type(const std::string& name) {
  std::string lower;
  for (char ch : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  for (const auto& n : kTypes)
    if (lower == n.name) return n.type;
  for (const auto& n : kAliases)
    if (lower == n.name) return n.type;
  return std::nullopt;
}

std::vector<std::string> type_names() {
  std::vector<std::string> out;
  for (const auto& n : kTypes) out.emplace_back(n.name);
  return out;
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out.push_back('"');
    out.push_back(ch);
  }
  out.push_back('"');
  return out;
}

std::pair<std::string, std::string> split_table(const std::string& text, const YAML::Mark& mark) {
  auto dot = text.find('.');
  std::string schema, table = text;
  if (dot != std::string::npos) {
    schema = text.substr(0, dot);
    table = text.substr(dot + 1);
    if (table.find('.') != std::string::npos || schema.empty())
      throw ConfigError(mark, "invalid table name '" + text + "'", "write table or schema.table");
  }
  if (table.empty())
    throw ConfigError(mark, "invalid table name '" + text + "'", "write table or schema.table");
  if (text.find('"') != std::string::npos)
    throw ConfigError(mark, "invalid table name '" + text + "': write it without quotes",
                      "names are used exactly as written (case-sensitive)");
  return {schema, table};
}

std::string redact_dsn(const std::string& dsn) {
  if (dsn.empty()) return "(default connection)";
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return "(unparseable dsn)";
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string kw = o->keyword;
    if (!out.empty()) out += ' ';
    out += kw + "=" + (kw == "password" || kw == "sslpassword" ? std::string("***") : std::string(o->val));
  }
  PQconninfoFree(opts);
  return out;
}

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"dsn",
       OptionKind::string,
       "libpq connection string or URI (postgresql://user:pass@host:port/db); the password is never logged",
       true,
       "",
       {}},
      {"table",
       OptionKind::string,
       "target table, optionally schema-qualified (schema.table), case-sensitive; or a template of "
       "tables made on first use: {topic}, with mode debezium {source.table} and {source.schema} "
       "(\"raw_{topic}\", \"replica.{source.table}\"); table or tables is required",
       false,
       "",
       {}},
      {"tables",
       OptionKind::mapping,
       "topic -> table, or topic -> {table, key, columns, column_overrides, evolve, mode, guard, "
       "soft_delete, "
       "truncate, create_table, "
       "delete_on_tombstone} overriding the stage's options for that table; a record of another topic is a "
       "dead letter",
       false,
       "",
       {}},
      {"max_tables",
       OptionKind::integer,
       "with a table template: the most tables one sink instance writes; a record naming one more is a "
       "dead letter",
       false,
       "1000",
       {}},
      {"mode",
       OptionKind::choice,
       "insert (COPY), upsert (last value per key wins), insert_ignore (existing rows are kept), merge "
       "(columns, key and fold rules from the stage upstream, e.g. window with emit: updates: each partial "
       "row folds into its key's row) or debezium (Debezium change events: c/u/r upsert `after`, d "
       "deletes, t truncates with truncate: true; docs/cdc.md)",
       false,
       "insert",
       {"insert", "upsert", "insert_ignore", "merge", "debezium"}},
      {"key",
       OptionKind::string_list,
       "conflict target columns: required for upsert, insert_ignore and debezium, and for deletes on "
       "tombstones; merge derives it",
       false,
       "",
       {}},
      {"columns",
       OptionKind::any,  // a map or a list, checked by parse_columns_and_key
       "column -> {from: field path, \".\" or _topic/_partition/_offset/_timestamp/_key/_headers, type: ..., "
       "required: bool, default: value} (or a list of {name: column, ...}); debezium: paths read the row "
       "image, _op/_ts_ms/_source.FIELD the envelope; with mode merge only column: type, another type for a "
       "derived column (merge derives them). Without columns, each record's schema (format: avro, or "
       "Debezium's JSON schema wrapper) gives them: one per top-level field, named and typed after it",
       false,
       "",
       {}},
      {"column_overrides",
       OptionKind::mapping,
       "without columns: entries like those of columns (column -> {from, type, ...}): one named as a schema "
       "field replaces its column, others are added (e.g. _offset: {from: _offset, type: bigint}); "
       "field: skip leaves a field out",
       false,
       "",
       {}},
      {"evolve",
       OptionKind::choice,
       "without columns: add_columns adds a nullable column for a field the table lacks and widens a column "
       "where PostgreSQL can do it safely (an integer type to a wider one, real to double precision, a wider "
       "numeric; it drops NOT NULL for a field that may be null); none leaves the table as it is. A change "
       "it cannot make sends the records of that schema "
       "to the dead letters with the reason",
       false,
       "none",
       {"none", "add_columns"}},
      {"create_table",
       OptionKind::boolean,
       "CREATE TABLE IF NOT EXISTS from the mapping (primary key = key; merge: UNIQUE NULLS NOT DISTINCT "
       "key, PostgreSQL 15+)",
       false,
       "false",
       {}},
      {"batch",
       OptionKind::mapping,
       "{max_rows, max_wait}: a batch is written when either is reached. An instance writes one batch at a "
       "time, so each commit's round trip is on the path: below about 5,000 rows, add concurrency: 2 and "
       "partition_by: _partition for two connections (docs/performance.md)",
       false,
       "{max_rows: 10000, max_wait: 100ms}",
       {}},
      {"delete_on_tombstone",
       OptionKind::boolean,
       "a tombstone (null value) deletes the row of its Kafka key; default: true when key is set, or "
       "without columns when the key columns are known (key:, or an Avro key's fields)",
       false,
       "",
       {}},
      {"dead_letter",
       OptionKind::mapping,
       "{table, topic, brokers, librdkafka}: where rejected records go, a table (created if missing), a "
       "Kafka "
       "topic (brokers required; librdkafka: extra producer properties) or both; records are settled only "
       "once written to every one; default: {table: <table>_dead_letters}",
       false,
       "",
       {}},
      {"retry",
       OptionKind::mapping,
       "{initial_backoff, max_backoff}: reconnect backoff while PostgreSQL is down",
       false,
       "{initial_backoff: 100ms, max_backoff: 5s}",
       {}},
      {"delivery",
       OptionKind::choice,
       "at_least_once (Kafka offsets committed after the rows) or exactly_once (the rows and the next "
       "offsets "
       "of their partitions in one transaction, fenced per partition; see docs/delivery.md)",
       false,
       "at_least_once",
       {"at_least_once", "exactly_once"}},
      {"offsets_table",
       OptionKind::string,
       "exactly_once: the table of committed offsets and epochs per (consumer group, topic, partition), "
       "created if missing",
       false,
       "etld_offsets",
       {}},
      {"guard",
       OptionKind::string,
       "upsert: a mapped column holding a version (e.g. from: _offset); a row is replaced only by a newer "
       "version, so a replay never rolls it back; debezium: an envelope field (source.lsn, ts_ms, "
       "source.ts_ms) stored in the column mapped from it (from: _source.lsn): an older event neither "
       "replaces nor deletes the row",
       false,
       "",
       {}},
      {"soft_delete",
       OptionKind::string,
       "debezium: a mapped boolean column set true by a delete (the row is kept, its other columns "
       "unchanged but those mapped from the envelope) and false by an upsert",
       false,
       "",
       {}},
      {"truncate",
       OptionKind::boolean,
       "debezium: a change event with op t truncates the table; when false it is skipped (logged once per "
       "batch)",
       false,
       "false",
       {}},
      {"max_dead_letter_ratio",
       OptionKind::number,
       "the guard trips when more than this share of the last 1000 records (or of a batch of >= 100) "
       "would be dead-lettered; 1 disables it",
       false,
       "0.5",
       {}},
      {"on_dead_letter_ratio",
       OptionKind::choice,
       "what the tripped guard does: pause (hold the records' partitions at them, logged every 30s), stop "
       "(stop the pipeline) or alert (log and count, dead-letter them)",
       false,
       "pause",
       {"pause", "stop", "alert"}},
  };
  return specs;
}

std::size_t batch_max_rows(const Options& o) {
  const MapField rows = map_field(o, "batch", "max_rows");
  std::int64_t n = scalar_int(rows.value);
  if (n < 1 || n > 10'000'000)
    throw ConfigError(rows.mark, "batch.max_rows must be between 1 and 10000000; got " + std::to_string(n));
  return static_cast<std::size_t>(n);
}

PostgresSinkConfig parse_config(const StageConfig& stage, const PipelineConfig& pipeline) {
  const Options& o = stage.options;
  PostgresSinkConfig c;
  c.stage = stage.name;
  c.pipeline = pipeline.name;
  c.on_poison = pipeline.on_poison;

  c.dsn = o.get_string("dsn");
  if (c.dsn.empty())
    throw ConfigError(o.mark("dsn"), "option 'dsn' is empty", "write a libpq connection string or URI");
  remember_dsn_secrets(c.dsn);
  if (auto problem = check_dsn(c.dsn))
    throw ConfigError(o.mark("dsn"), "option 'dsn': " + problem->message, problem->hint);
  c.dsn_redacted = redact_dsn(c.dsn);

  if (!o.has("table") && !o.has("tables"))
    throw ConfigError(o.mark("table"), "the postgres sink needs 'table' or 'tables'",
                      "write table: public.orders, table: \"{topic}\" or tables: {orders: public.orders}");
  // A routed stage's own table holds the dead letters of records that no table takes.
  const bool routed = is_routed(o);
  const std::string table_text = routed ? std::string() : o.get_string("table");
  auto [schema, table] = routed ? unrouted_table(o, stage.name) : split_table(table_text, o.mark("table"));
  c.schema = schema;
  c.table = table;
  c.qualified = (schema.empty() ? "" : quote_ident(schema) + ".") + quote_ident(table);
  c.display = routed ? (schema.empty() ? "" : schema + ".") + table : table_text;
  // With `tables`, each entry has its own columns and key, parsed with it (pg_routing.cpp).
  const bool one_shape = !o.has("tables");

  const std::string mode = o.get_string("mode");
  c.mode = mode == "upsert"          ? Mode::upsert
           : mode == "insert_ignore" ? Mode::insert_ignore
           : mode == "merge"         ? Mode::merge
           : mode == "debezium"      ? Mode::debezium
                                     : Mode::insert;
  c.create_table = o.get_bool("create_table");
  if (c.mode == Mode::merge)
    configure_merge(c, stage, pipeline);
  else if (one_shape)
    parse_columns_and_key(c, o, mode);

  c.credit_limit = std::max<std::size_t>(1, stage.max_demand) * std::max<std::size_t>(1, stage.inputs.size());

  check_map_option(o, "batch", {"max_rows", "max_wait"});
  c.max_rows = batch_max_rows(o);
  const MapField max_wait = map_field(o, "batch", "max_wait");
  c.max_wait = parse_duration(max_wait.value);
  if (c.max_wait.count() < 0) throw ConfigError(max_wait.mark, "batch.max_wait must not be negative");

  // delete_on_tombstone
  if (o.has("delete_on_tombstone")) {
    c.delete_on_tombstone = o.get_bool("delete_on_tombstone");
    if (c.delete_on_tombstone && c.key.empty() && one_shape && !c.schema_columns)  // or an Avro key's
      throw ConfigError(o.mark("delete_on_tombstone"),
                        "delete_on_tombstone needs 'key': which columns identify a row", "add key: [id]");
  } else {
    // Partials are never tombstones. Columns from the schema: the key may be the Avro key's, known
    // at run time (a tombstone without key columns is skipped then, schema_tables.cpp).
    c.delete_on_tombstone = (!c.key.empty() || c.schema_columns) && c.mode != Mode::merge;
  }
  if (c.mode == Mode::debezium) {
    if (one_shape) configure_debezium(c, o);
  } else {
    for (const char* option : {"soft_delete", "truncate"})
      if (o.has(option))
        throw ConfigError(o.mark(option),
                          std::string("option '") + option + "' applies to mode debezium only",
                          "set mode: debezium, or remove " + std::string(option));
  }

  // dead_letter. PostgreSQL cuts identifiers at 63 bytes: the default name keeps its suffix by
  // shortening the table's part (a 63-byte table's "<table>_dead_letters" cut back to 63 bytes
  // was the table itself).
  std::string dl_schema = c.schema, dl_table = default_dead_letter_table(c.table);
  if (o.has("dead_letter")) {
    YAML::Node d = o.node("dead_letter");
    require_map(d, "option 'dead_letter'", "{table: orders_dead_letters}");
    check_keys(d, {"table", "topic", "brokers", "librdkafka"}, "'dead_letter'");
    const bool has_table = d["table"].IsDefined() && !d["table"].IsNull();
    const bool has_topic = d["topic"].IsDefined() && !d["topic"].IsNull();
    if (!has_table && !has_topic)
      throw ConfigError(
          o.mark("dead_letter"), "option 'dead_letter' needs 'table', 'topic' or both",
          "write dead_letter: {table: orders_dead_letters} or {topic: orders-dlq, brokers: host:9092}");
    c.dead_letter_table = has_table;
    if (has_table) {
      std::string text = scalar_string(d["table"]);
      std::tie(dl_schema, dl_table) = split_table(text, d["table"].Mark());
      if (dl_schema == c.schema && dl_table == c.table)
        throw ConfigError(d["table"].Mark(), "the dead-letter table cannot be the target table");
      if (dl_table.size() > kMaxIdentifierBytes)
        throw ConfigError(d["table"].Mark(),
                          "dead_letter.table '" + dl_table + "' is longer than PostgreSQL's 63 bytes",
                          "PostgreSQL would cut it; choose a shorter name");
    }
    if (has_topic) {
      const YAML::Node t = d["topic"];
#ifndef ETLD_WITH_KAFKA
      throw ConfigError(t.Mark(), "dead_letter.topic needs the kafka connector, left out of this build",
                        "build etld with -DETLD_WITH_KAFKA=ON, or use dead_letter: {table: ...}");
#endif
      if (!t.IsScalar()) throw ConfigError(t.Mark(), "dead_letter.topic must be a topic name");
      c.dead_letter_topic = scalar_string(t);
      if (c.dead_letter_topic.empty() || c.dead_letter_topic.size() > 249 || c.dead_letter_topic == "." ||
          c.dead_letter_topic == ".." ||
          c.dead_letter_topic.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
        throw ConfigError(t.Mark(), "invalid dead_letter.topic '" + c.dead_letter_topic + "'",
                          "Kafka topic names are 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-'");
      const YAML::Node b = d["brokers"];
      if (!b.IsDefined() || b.IsNull())
        throw ConfigError(t.Mark(), "dead_letter.topic needs 'brokers'",
                          "add brokers: ${KAFKA_BROKERS} (host:port, comma-separated)");
      if (!b.IsScalar() || scalar_string(b).empty())
        throw ConfigError(b.Mark(), "dead_letter.brokers must be host:port[,host:port...]");
      c.dead_letter_brokers = scalar_string(b);
      const YAML::Node k = d["librdkafka"];
      if (k.IsDefined() && !k.IsNull()) {
        require_map(k, "dead_letter.librdkafka", "{security.protocol: SASL_SSL}");
        for (auto it = k.begin(); it != k.end(); ++it) {
          const std::string name = it->first.Scalar();
          if (name == "bootstrap.servers" || name == "metadata.broker.list" || name == "enable.idempotence" ||
              name == "acks" || name == "request.required.acks")
            throw ConfigError(it->first.Mark(), "dead_letter.librdkafka cannot set '" + name + "'",
                              "etld sets it: brokers come from dead_letter.brokers; idempotence and acks=all "
                              "keep dead letters durable");
          if (!it->second.IsScalar())
            throw ConfigError(it->second.Mark(), "dead_letter.librdkafka." + name + " must be a scalar");
          std::string value = scalar_string(it->second);
          if (is_secret_setting(name)) remember_secret(value);
#ifdef ETLD_WITH_KAFKA
          if (std::string why = kafka::check_librdkafka_property(name, value); !why.empty())
            throw ConfigError(it->second.Mark(), "dead_letter.librdkafka." + name + ": " + why);
#endif
          c.dead_letter_librdkafka.emplace_back(name, std::move(value));
        }
      }
    } else if (d["brokers"].IsDefined() || d["librdkafka"].IsDefined()) {
      const YAML::Node b = d["brokers"].IsDefined() ? d["brokers"] : d["librdkafka"];
      throw ConfigError(b.Mark(), "dead_letter.brokers and dead_letter.librdkafka need dead_letter.topic",
                        "add topic: <name>");
    }
  }
  if (c.dead_letter_table && dl_schema == c.schema && dl_table == c.table)
    throw ConfigError(o.mark(o.has("dead_letter") ? "dead_letter" : "table"),
                      "the dead-letter table would be the target table '" + c.table + "'",
                      "set dead_letter: {table: <another name>}");
  c.dead_letter_qualified = (dl_schema.empty() ? "" : quote_ident(dl_schema) + ".") + quote_ident(dl_table);
  c.dead_letter_display = (dl_schema.empty() ? "" : dl_schema + ".") + dl_table;

  check_map_option(o, "retry", {"initial_backoff", "max_backoff"});
  const MapField initial_backoff = map_field(o, "retry", "initial_backoff");
  const MapField max_backoff = map_field(o, "retry", "max_backoff");
  c.initial_backoff = parse_duration(initial_backoff.value);
  c.max_backoff = parse_duration(max_backoff.value);
  if (c.initial_backoff.count() <= 0)
    throw ConfigError(initial_backoff.mark, "retry.initial_backoff must be positive");
  if (c.max_backoff < c.initial_backoff)
    throw ConfigError(max_backoff.mark, "retry.max_backoff must be at least retry.initial_backoff");

  c.max_dead_letter_ratio = o.get_number("max_dead_letter_ratio");
  if (!(c.max_dead_letter_ratio > 0 && c.max_dead_letter_ratio <= 1))
    throw ConfigError(o.mark("max_dead_letter_ratio"), "max_dead_letter_ratio must be in (0, 1]",
                      "1 disables the guard");

  const std::string action = o.get_string("on_dead_letter_ratio");
  c.on_dead_letter_ratio = action == "stop"    ? GuardAction::stop
                           : action == "alert" ? GuardAction::alert
                                               : GuardAction::pause;

  if (o.has("guard") && c.mode != Mode::debezium && one_shape) {  // debezium's: configure_debezium
    c.guard = o.get_string("guard");
    if (c.mode != Mode::upsert)
      throw ConfigError(o.mark("guard"), "option 'guard' applies to mode upsert only",
                        "set mode: upsert, or remove guard");
    auto it = std::find_if(c.columns.begin(), c.columns.end(),
                           [&](const ColumnSpec& col) { return col.name == c.guard; });
    if (it == c.columns.end() && !c.schema_columns) {
      std::vector<std::string> names;
      for (const auto& col : c.columns) names.push_back(col.name);
      std::string hint = did_you_mean(c.guard, names);
      throw ConfigError(o.mark("guard"), "guard column '" + c.guard + "' is not in 'columns'",
                        hint.empty() ? "map it, e.g. version: {from: _offset, type: bigint}" : hint);
    }
    if (it != c.columns.end() && it->is_key)
      throw ConfigError(o.mark("guard"), "guard column '" + c.guard + "' is a key column");
  }
  if (c.schema_columns) {  // each record's schema gives the columns, these go on top
    c.column_overrides = std::move(c.columns);
    c.columns.clear();
  }

  c.exactly_once = o.get_string("delivery") == "exactly_once";
  if (o.has("offsets_table") && !c.exactly_once)
    throw ConfigError(o.mark("offsets_table"), "option 'offsets_table' needs delivery: exactly_once");
  if (c.exactly_once) {
    check_exactly_once(c, stage);
    const std::string text = o.get_string("offsets_table");
    auto [os, ot] = split_table(text, o.mark("offsets_table"));
    c.offsets_qualified = (os.empty() ? "" : quote_ident(os) + ".") + quote_ident(ot);
    c.offsets_display = text;
  }

  derive_sql(c);
  if (c.mode == Mode::merge) derive_merge_sql(c);
  if (c.mode == Mode::debezium) derive_debezium_sql(c);
  if (routed) c.routing = parse_routing(c, stage, pipeline);
  return c;
}

}  // namespace etld::pg
