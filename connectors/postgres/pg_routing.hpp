// Many topics into many tables with one postgres sink
// (docs/connectors/postgres.md#many-topics-into-many-tables): `table:` as a template ("raw_{topic}",
// "replica.{source.table}") or `tables:`, a mapping of topic -> table (or -> {table, key, columns, ...}).
// Each table gets its own PostgresSinkConfig (its own SQL, staging table and dead-letter table), made once
// when a record first names it.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/schema/pipeline.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "stages/engine/event.hpp"

namespace etld::pg {

// One part of a table-name template: literal text, or a placeholder read from each record.
struct TemplatePart {
  enum class Kind { text, topic, source_table, source_schema } kind = Kind::text;
  std::string text;
};

struct Routing {
  // table: as a template, split at its one '.' outside placeholders: schema parts (none: the
  // search_path) and table parts.
  std::vector<TemplatePart> schema_parts, table_parts;
  std::string template_text;    // as written, for messages
  bool reads_envelope = false;  // {source.*}: the record is read to route it
  // tables: the parsed entries, by topic; each with the options it was parsed from (for
  // validate --against-db, located at the entry).
  struct Entry {
    StageConfig stage;
    std::shared_ptr<const PostgresSinkConfig> cfg;
  };
  std::map<std::string, Entry> by_topic;
  std::size_t max_tables = 1000;
  bool shared_dead_letters = false;  // dead_letter.table given: every table's letters go there
};

// Whether the stage routes (`tables:`, or a `table:` with a placeholder).
bool is_routed(const Options& o);
// Reads `table` as a template or `tables`, and `max_tables`; `base` is the stage's parsed config
// (with the unrouted records' dead-letter table), from which template tables are made. Throws
// ConfigError located at the culprit (an unknown placeholder, an entry's bad option).
std::shared_ptr<const Routing> parse_routing(const PostgresSinkConfig& base, const StageConfig& stage,
                                             const PipelineConfig& pipeline);

// The schema and table a routed stage's own config names (it holds the dead letters of records
// that no table takes): the template's fixed schema, if any, and the stage's name.
std::pair<std::string, std::string> unrouted_table(const Options& o, const std::string& stage_name);

// For validate --against-db: the config of the table the records of `topic` go to, as the router
// makes it (a `tables:` entry's, or the template's table for the topic); nullptr when none is
// known before records come (no entry for the topic, or a template naming tables by {source.*}).
std::shared_ptr<const PostgresSinkConfig> table_for_topic(const PostgresSinkConfig& base,
                                                          const std::string& topic);

// For the log: "of the template raw_{topic}" or "of 3 topics".
std::string describe_routing(const Routing& r);

// Per sink instance, on its strand: the table of each record, its config made on first use and
// kept (at most max_tables of them; the configs live as long as the router).
class TableRouter {
 public:
  explicit TableRouter(std::shared_ptr<const PostgresSinkConfig> base);
  // The table e's record goes to; nullptr when none: with `error` set, the record is a dead
  // letter with that reason; with `error` empty it is skipped (a Debezium tombstone).
  const PostgresSinkConfig* route(Event& e, std::string& error);

 private:
  const PostgresSinkConfig* from_template(Event& e, std::string& error);

  std::shared_ptr<const PostgresSinkConfig> base_;
  std::unordered_map<std::string, std::unique_ptr<const PostgresSinkConfig>> tables_;  // by schema.table
  SharedName last_topic_;  // {topic}-only templates: records come in runs of one topic
  const PostgresSinkConfig* last_ = nullptr;
};

}  // namespace etld::pg
