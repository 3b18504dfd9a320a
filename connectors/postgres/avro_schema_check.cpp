#include "connectors/postgres/avro_schema_check.hpp"

#ifdef ETLD_WITH_AVRO

#include <map>
#include <memory>
#include <optional>

#include "config/schema/secrets.hpp"
#include "connectors/avro/registry_settings.hpp"
#include "connectors/avro/subject_lookup.hpp"
#include "connectors/postgres/avro_column_rules.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/pg_routing.hpp"
#include "connectors/postgres/schema_columns_check.hpp"
#include "connectors/postgres/schema_fit.hpp"
#include "stages/engine/registry.hpp"
#include "stages/engine/upstream.hpp"

namespace etld::pg {

namespace {

using avro::AvroNode;
using avro::AvroType;

std::string warning_at(const PipelineConfig& pipeline, const YAML::Mark& mark, const std::string& text) {
  std::string at = pipeline.file;
  if (mark.line >= 0) at += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  return redact_secrets(at + ": warning: " + text);
}

std::string join(const std::vector<std::string>& v, const std::string& separator = ", ") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? separator : "") + v[i];
  return out;
}

// Whether a column reading `path` reads what a map writing `changed` changes.
bool overlaps(const std::string& path, const std::string& changed) {
  auto under = [](const std::string& a, const std::string& b) {
    return a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '.';
  };
  return changed == "." || path == changed || under(path, changed) || under(changed, path);
}

// The tables' columns, read once each on one connection; none when the catalog cannot be read
// (check_live says why).
class Catalog {
 public:
  explicit Catalog(std::string dsn) : dsn_(std::move(dsn)) {}
  // nullptr when the catalog cannot be read; empty when the table does not exist.
  const TableColumns* columns(const std::string& qualified) {
    if (failed_) return nullptr;
    if (auto it = tables_.find(qualified); it != tables_.end()) return &it->second;
    try {
      if (!conn_) conn_ = std::make_unique<PgConnection>(dsn_);
      return &tables_.emplace(qualified, read_table_columns(*conn_, qualified)).first->second;
    } catch (const PgError&) {
      failed_ = true;
      return nullptr;
    }
  }

 private:
  std::string dsn_;
  std::unique_ptr<PgConnection> conn_;
  std::map<std::string, TableColumns> tables_;
  bool failed_ = false;
};

// The values a mapping's type converts to, as a column of that type: the sink converts each value
// to it before PostgreSQL sees it (a long mapped as integer is range-checked as one).
ColumnType mapped_type(PgType t) {
  static const std::map<PgType, const char*> typnames = {{PgType::smallint, "int2"},
                                                         {PgType::integer, "int4"},
                                                         {PgType::bigint, "int8"},
                                                         {PgType::real, "float4"},
                                                         {PgType::double_precision, "float8"},
                                                         {PgType::numeric, "numeric"},
                                                         {PgType::text, "text"},
                                                         {PgType::boolean, "bool"},
                                                         {PgType::timestamptz, "timestamptz"},
                                                         {PgType::date, "date"},
                                                         {PgType::uuid, "uuid"},
                                                         {PgType::jsonb, "jsonb"},
                                                         {PgType::bytea, "bytea"}};
  ColumnType c;
  c.typname = typnames.at(t);
  c.display = type_name(t);
  return c;
}

// A nullable union's one other branch, else the node itself.
const AvroNode* non_null(const AvroNode* n, bool& nullable) {
  if (n->type != AvroType::union_) return n;
  const AvroNode* only = nullptr;
  int others = 0;
  for (const AvroNode* b : n->branches) {
    if (b->type == AvroType::null)
      nullable = true;
    else if (++others == 1)
      only = b;
  }
  return others == 1 ? only : n;
}

struct Found {
  const AvroNode* node = nullptr;  // null: the schema has no such field
  bool nullable_path = false;
  std::string missing;  // why not: "record shop.Order has no field 'qty' (its fields: ...)"
  std::string segment;  // the name that is not there
  std::vector<std::string> siblings;
};

// The field at the dotted `path` in `record`, through nullable records, maps and arrays.
Found find_field(const AvroNode& record, const std::string& path) {
  Found f;
  const AvroNode* at = &record;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = path.find('.', start);
    const std::string segment =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const AvroNode* inner = non_null(at, f.nullable_path);
    const AvroNode* next = nullptr;
    if (inner->type == AvroType::record) {
      for (const auto& [name, type] : inner->fields)
        if (name == segment) next = type;
      if (!next) {
        f.segment = segment;
        for (const auto& field : inner->fields) f.siblings.push_back(field.first);
        f.missing = "record " + inner->name + " has no field '" + segment +
                    "' (its fields: " + join(f.siblings) + ")";
        return f;
      }
    } else if (inner->type == AvroType::map || inner->type == AvroType::array) {
      next = inner->items;
      f.nullable_path = true;  // a key or an index that is not there
    } else {
      f.missing = "'" + path.substr(0, start ? start - 1 : 0) + "' is Avro " + avro_type_text(*inner) +
                  ", which has no field '" + segment + "'";
      return f;
    }
    if (dot == std::string::npos) {
      f.node = next;
      return f;
    }
    at = next;
    start = dot + 1;
  }
}

// The kafka sources with format: avro upstream of the sink, and the map stages between.
struct Upstream {
  std::vector<const StageConfig*> avro_sources;
  std::vector<const StageConfig*> maps;
  const StageConfig* reshaper = nullptr;  // a transform that is neither map nor filter
};

Upstream upstream(const StageConfig& stage, const PipelineConfig& pipeline) {
  Upstream u;
  for (const StageConfig* s : upstream_of(stage, pipeline)) {
    const StageType* type = find_stage_type(s->type);
    if (type && type->role == Role::source) {
      if (s->type == "kafka" && s->options.get_string("format") == "avro") u.avro_sources.push_back(s);
    } else if (s->type == "map") {
      u.maps.push_back(s);
    } else if (s->type != "filter" && !u.reshaper) {
      u.reshaper = s;
    }
  }
  return u;
}

// The latest schema of a topic as a column mapped from a field reads it.
struct TopicSchema {
  const std::string& topic;
  const std::string& named;  // "subject orders-value version 3"
  const AvroNode& root;      // what `from: _source...` reads (mode debezium: the envelope)
  const AvroNode& row;       // what `from: field` reads (mode debezium: the `after` record)
};

// A column mapped from a field (in columns:, or a column_overrides entry reading another field
// than its name): the field in the schema, and both the table's column and the mapping's type
// able to hold it. `columns`: the table's (null: no catalog).
void check_mapped_column(const ColumnSpec& col, const PostgresSinkConfig& table, const TableColumns* columns,
                         const TopicSchema& s, std::vector<ConfigError>& errors) {
  const bool envelope = col.source == ColumnSource::envelope;
  if (col.source != ColumnSource::field && !envelope) return;
  const Found f = find_field(envelope ? s.root : s.row, col.path);
  if (!f.node) {
    const std::string hint = did_you_mean(f.segment, f.siblings);
    errors.emplace_back(col.mark,
                        "column '" + col.name + "' reads field '" + col.path +
                            "', which the Avro schema of topic '" + s.topic + "' (" + s.named +
                            ") does not have: " + f.missing,
                        hint.empty() ? "map a field the schema has, or remove the column" : hint);
    return;
  }
  const ColumnType* pg = nullptr;  // null: not in the table (check_live reports it) or no catalog
  if (columns)
    if (auto it = columns->find(col.name); it != columns->end()) pg = &it->second.type;
  const std::string field = "field '" + col.path + "' of topic '" + s.topic + "', Avro " +
                            avro_type_text(*f.node) + " (" + s.named + "): ";
  if (auto problem = pg ? avro_column_problem(*f.node, *pg, col.default_copy.has_value(), f.nullable_path)
                        : std::nullopt) {
    errors.emplace_back(col.mark,
                        "column '" + col.name + "' of table " + table.display + " is " + pg->display +
                            ", which cannot hold " + field + *problem,
                        "change the column's type (ALTER TABLE " + table.display + " ALTER COLUMN " +
                            quote_ident(col.name) + " TYPE ...), or map another field");
    return;
  }
  // A type taken as written from the stage upstream (mode merge) is not converted by etld.
  if (!col.declared_type.empty()) return;
  if (auto problem = avro_column_problem(*f.node, mapped_type(col.type), true))
    errors.emplace_back(col.type_mark,
                        "column '" + col.name + "' is mapped as " + type_name(col.type) +
                            ", which cannot hold " + field + *problem,
                        pg ? "map it with the column's type, " + pg->display
                           : std::string("map it with a type that holds the field"));
}

// The table a topic's records go to: the stage's, a `tables:` entry's or the template's (null
// when the template names tables from the records), and where validate locates its problems.
struct TopicTable {
  std::shared_ptr<const PostgresSinkConfig> routed;  // owns `table` when routed
  const PostgresSinkConfig* table = nullptr;
  YAML::Mark mark;
  bool from_template = false;
};

TopicTable table_of_topic(const PostgresSinkConfig& cfg, const StageConfig& stage, const std::string& topic) {
  TopicTable out;
  out.mark = stage.options.mark(stage.options.has("tables") ? "tables" : "table");
  if (!cfg.routing) {
    out.table = &cfg;
    return out;
  }
  out.routed = table_for_topic(cfg, topic);
  out.table = out.routed.get();
  out.from_template = cfg.routing->by_topic.empty();
  if (auto it = cfg.routing->by_topic.find(topic); it != cfg.routing->by_topic.end())
    out.mark = it->second.stage.options.mark("table");
  return out;
}

// The fields of the topic's Avro key schema (subject "<topic>-key"): the key of a table whose
// columns come from the schema and that names none, as the sink takes it from each record's key.
// Empty when the table names its key, the source's keys are not Avro or the registry has none.
std::vector<std::string> key_fields(const PostgresSinkConfig& t, const Options& source,
                                    const avro::RegistrySettings& registry, const std::string& topic) {
  std::vector<std::string> out;
  if (!t.key.empty() || source.get_string("key_format") != "avro") return out;
  const avro::SubjectSchema key = avro::fetch_latest_schema(registry, topic + "-key");
  if (key.outcome != avro::SubjectSchema::Outcome::found) return out;
  bool nullable = false;
  const AvroNode* record = non_null(&key.schema->root(), nullable);
  if (record->type == AvroType::record)
    for (const auto& field : record->fields) out.push_back(field.first);
  return out;
}

}  // namespace

void check_against_avro_schemas(const PostgresSinkConfig& cfg, const StageConfig& stage,
                                const PipelineConfig& pipeline, std::vector<ConfigError>& errors,
                                std::vector<std::string>& warnings) {
  const Upstream up = upstream(stage, pipeline);
  if (up.avro_sources.empty()) return;
  if (up.reshaper) {
    warnings.push_back(warning_at(pipeline, stage.mark,
                                  "stage '" + stage.name +
                                      "': its columns are not checked against the Avro schema of source '" +
                                      up.avro_sources.front()->name + "': stage '" + up.reshaper->name +
                                      "' (" + up.reshaper->type + ") between them reshapes the records"));
    return;
  }
  // Columns reading what a map sets, renames or removes read the map's values, not the schema's.
  std::map<std::string, const StageConfig*> changed_by;  // column name -> map
  for (const StageConfig* m : up.maps) {
    std::vector<std::string> changed;
    for (const auto& [path, expr] : m->options.get_string_map("set")) changed.push_back(path);
    for (const auto& [from, to] : m->options.get_string_map("rename")) {
      changed.push_back(from);
      changed.push_back(to);
    }
    for (const auto& path : m->options.get_string_list("remove")) changed.push_back(path);
    std::vector<std::string> skipped;
    for (const auto& col : cfg.columns)
      for (const auto& c : changed)
        if (col.source == ColumnSource::field && overlaps(col.path, c) && !changed_by.count(col.name)) {
          changed_by[col.name] = m;
          skipped.push_back(col.name);
        }
    if (!skipped.empty())
      warnings.push_back(warning_at(pipeline, stage.mark,
                                    "stage '" + stage.name + "': column(s) " + join(skipped) +
                                        " are not checked against the Avro schema: map '" + m->name +
                                        "' sets, renames or removes what they read"));
  }

  // Without the catalog (check_live says why), the fields and the mapped types are still checked.
  Catalog catalog(cfg.dsn);
  bool said_unrouted = false, said_map = false;
  for (const StageConfig* source : up.avro_sources) {
    const Options& o = source->options;
    if (o.has("topic_pattern")) {
      warnings.push_back(warning_at(
          pipeline, o.mark("topic_pattern"),
          "source '" + source->name + "' reads topic_pattern: the columns of stage '" + stage.name +
              "' are checked only against the schemas of topics named in topics, which it has none of"));
      continue;
    }
    const avro::RegistrySettings registry =
        avro::read_registry_settings(o.node("schema_registry"), o.mark("schema_registry"));
    const std::vector<std::string> topics = o.get_string_list("topics");
    for (std::size_t t = 0; t < topics.size(); ++t) {
      const std::string& topic = topics[t];
      const std::string subject = topic + "-value";
      const avro::SubjectSchema latest = avro::fetch_latest_schema(registry, subject);
      if (latest.outcome == avro::SubjectSchema::Outcome::not_registered) {
        warnings.push_back(warning_at(pipeline, o.mark("topics"),
                                      latest.error + ": the columns of stage '" + stage.name +
                                          "' are not checked against topic '" + topic + "'"));
        continue;
      }
      if (latest.outcome != avro::SubjectSchema::Outcome::found) {
        // A registry that cannot be asked is asked nothing more: one error for the topics left.
        const bool unreachable = latest.outcome == avro::SubjectSchema::Outcome::unreachable;
        const std::vector<std::string> left(
            topics.begin() + static_cast<std::ptrdiff_t>(t),
            unreachable ? topics.end() : topics.begin() + static_cast<std::ptrdiff_t>(t) + 1);
        errors.emplace_back(o.mark("schema_registry"),
                            "the columns of stage '" + stage.name + "' cannot be checked against topic" +
                                (left.size() > 1 ? "s '" : " '") + join(left, "', '") + "': " + latest.error,
                            "the database checks ran all the same");
        if (unreachable) break;
        continue;
      }
      const std::string schema_named = "subject " + subject + " version " + std::to_string(latest.version);
      const TopicTable target = table_of_topic(cfg, stage, topic);
      if (!target.table) {
        if (cfg.routing->by_topic.empty() && !said_unrouted)
          warnings.push_back(warning_at(pipeline, target.mark,
                                        "stage '" + stage.name + "': the table template " +
                                            cfg.routing->template_text +
                                            " names its tables from the records: their columns are not "
                                            "checked against the Avro schemas"));
        said_unrouted = true;
        continue;
      }
      const PostgresSinkConfig* table = target.table;
      const AvroNode* row = &latest.schema->root();
      if (table->mode == Mode::debezium) {
        Found after = find_field(*row, "after");
        bool nullable = false;
        if (after.node) after.node = non_null(after.node, nullable);
        if (!after.node || after.node->type != AvroType::record) {
          errors.emplace_back(o.mark("topics"),
                              "topic '" + topic + "' (" + schema_named +
                                  ") is not a Debezium change event: its schema has no 'after' "
                                  "record, which stage '" +
                                  stage.name + "' (mode: debezium) reads");
          continue;
        }
        row = after.node;
      }
      const TableColumns* columns = catalog.columns(table->qualified);
      std::vector<const ColumnSpec*> mapped;  // the columns checked one by one against their fields
      for (const ColumnSpec& col : table->columns) mapped.push_back(&col);
      SchemaColumnsFindings schema_columns;
      if (table->schema_columns && !up.maps.empty()) {
        // A map drops the record's schema: the sink learns the columns from the records it writes.
        if (!said_map)
          warnings.push_back(warning_at(pipeline, target.mark,
                                        "stage '" + stage.name +
                                            "': its columns come from the records' schema, "
                                            "which map '" +
                                            up.maps.front()->name +
                                            "' drops: the table is not checked against the Avro schemas"));
        said_map = true;
        continue;
      }
      if (table->schema_columns) {
        schema_columns =
            check_schema_columns(*table, latest.schema, *row, key_fields(*table, o, registry, topic), columns,
                                 "topic '" + topic + "' (" + schema_named + ")", target.from_template);
        for (const std::string& e : schema_columns.errors) errors.emplace_back(target.mark, e);
        for (const std::string& w : schema_columns.warnings)
          warnings.push_back(warning_at(pipeline, target.mark, w));
        // column_overrides reading another field than their name's: checked as mapped columns.
        mapped.clear();
        if (schema_columns.config)
          for (const ColumnSpec& col : schema_columns.config->columns)
            if (!col.field) mapped.push_back(&col);
      }
      const TopicSchema about{topic, schema_named, latest.schema->root(), *row};
      for (const ColumnSpec* col : mapped)
        if (!changed_by.count(col->name)) check_mapped_column(*col, *table, columns, about, errors);
    }
  }
}

}  // namespace etld::pg

#else  // built without the avro connector: no source can have format: avro

namespace etld::pg {
void check_against_avro_schemas(const PostgresSinkConfig&, const StageConfig&, const PipelineConfig&,
                                std::vector<ConfigError>&, std::vector<std::string>&) {}
}  // namespace etld::pg

#endif
