// Routing a postgres sink's records to many tables (pg_routing.hpp).
#include "connectors/postgres/pg_routing.hpp"

#include <string_view>

#include "config/schema/diagnostics.hpp"
#include "config/schema/printable.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/debezium_encoder.hpp"
#include "connectors/postgres/pg_columns.hpp"
#include "connectors/postgres/pg_debezium.hpp"
#include "connectors/postgres/pg_sql.hpp"

namespace etld::pg {

namespace {

// The options a `tables:` entry may set; the others are the stage's.
const std::vector<std::string> kEntryOptions = {
    "table",       "key",      "columns",      "column_overrides",   "evolve", "mode", "guard",
    "soft_delete", "truncate", "create_table", "delete_on_tombstone"};

const char* const kPlaceholders = "{topic}, {source.table} and {source.schema} (mode debezium)";

// "raw_{topic}" -> [text raw_, topic]; throws ConfigError at `mark` for an unknown placeholder.
std::vector<TemplatePart> parse_parts(std::string_view text, const std::string& whole, const YAML::Mark& mark,
                                      bool debezium) {
  std::vector<TemplatePart> parts;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t open = text.find('{', i), close = text.find('}', i);
    if (close < open)
      throw ConfigError(mark, "table template '" + whole + "' has a '}' without its '{'",
                        "placeholders are " + std::string(kPlaceholders));
    if (open > i) parts.push_back({TemplatePart::Kind::text, std::string(text.substr(i, open - i))});
    if (open == std::string_view::npos) break;
    if (close == std::string_view::npos)
      throw ConfigError(mark, "table template '" + whole + "' has a '{' without its '}'",
                        "placeholders are " + std::string(kPlaceholders));
    const std::string name(text.substr(open + 1, close - open - 1));
    TemplatePart p;
    if (name == "topic") {
      p.kind = TemplatePart::Kind::topic;
    } else if (name == "source.table" || name == "source.schema") {
      if (!debezium)
        throw ConfigError(mark, "table template '" + whole + "': {" + name + "} needs mode: debezium",
                          "it is read in a Debezium change event's source block; use {topic} otherwise");
      p.kind = name == "source.table" ? TemplatePart::Kind::source_table : TemplatePart::Kind::source_schema;
    } else {
      throw ConfigError(mark, "table template '" + whole + "': unknown placeholder {" + name + "}",
                        "placeholders are " + std::string(kPlaceholders));
    }
    parts.push_back(p);
    i = close + 1;
  }
  return parts;
}

// The one '.' of `text` outside placeholders, or npos; throws ConfigError when there are more.
std::size_t schema_dot(const std::string& text, const YAML::Mark& mark) {
  std::size_t dot = std::string::npos;
  int depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    depth += text[i] == '{' ? 1 : text[i] == '}' ? -1 : 0;
    if (text[i] != '.' || depth != 0) continue;
    if (dot != std::string::npos)
      throw ConfigError(mark, "table template '" + text + "' has more than one '.' outside placeholders",
                        "write table or schema.table; a topic's own dots are kept in the table's name");
    dot = i;
  }
  return dot;
}

// A table's config made from the stage's: its names, its dead-letter table (unless shared), its
// staging table and the SQL derived from them.
std::unique_ptr<PostgresSinkConfig> config_for(const PostgresSinkConfig& base, const Routing& r,
                                               const std::string& schema, const std::string& table,
                                               std::size_t number) {
  auto c = std::make_unique<PostgresSinkConfig>(base);
  c->routing = nullptr;
  c->schema = schema;
  c->table = table;
  c->qualified = (schema.empty() ? "" : quote_ident(schema) + ".") + quote_ident(table);
  c->display = (schema.empty() ? "" : schema + ".") + table;
  if (!r.shared_dead_letters) {
    const std::string dl = default_dead_letter_table(table);
    c->dead_letter_qualified = (schema.empty() ? "" : quote_ident(schema) + ".") + quote_ident(dl);
    c->dead_letter_display = (schema.empty() ? "" : schema + ".") + dl;
  }
  c->stage_table = "etld_stage_" + std::to_string(number);
  derive_sql(*c);
  if (c->mode == Mode::debezium) derive_debezium_sql(*c);
  return c;
}

// The entry's options: the stage's, but `tables`, with the entry's on top. Values are the nodes
// as written, so errors stay located.
StageConfig entry_stage(const StageConfig& stage, const std::string& topic, const YAML::Node& entry) {
  YAML::Node options(YAML::NodeType::Map);
  for (auto it = stage.node.begin(); it != stage.node.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (key == "tables" || key == "max_tables") continue;
    if (entry.IsMap() && entry[key].IsDefined()) continue;
    options[key] = it->second;
  }
  if (entry.IsMap()) {
    check_keys(entry, kEntryOptions, "tables." + topic);
    for (auto it = entry.begin(); it != entry.end(); ++it) options[it->first.Scalar()] = it->second;
  } else {
    options["table"] = entry;
  }
  StageConfig s = stage;
  // Rebound, not assigned: the copy's node refers to the stage's, and yaml-cpp's assignment would
  // write the entry's options into the stage itself (a second parse of the stage then saw the
  // last entry's table alone, and validate --against-db checked that table only).
  s.node.reset(options);
  s.options = Options(options, &option_specs());
  return s;
}

}  // namespace

bool is_routed(const Options& o) {
  return o.has("tables") ||
         (o.has("table") && o.get_string("table").find_first_of("{}") != std::string::npos);
}

std::pair<std::string, std::string> unrouted_table(const Options& o, const std::string& stage_name) {
  std::string schema;
  if (o.has("table")) {
    const std::string text = o.get_string("table");
    const std::size_t dot = schema_dot(text, o.mark("table"));
    if (dot != std::string::npos && text.find('{') > dot) schema = text.substr(0, dot);
  }
  return {schema, stage_name};
}

std::shared_ptr<const Routing> parse_routing(const PostgresSinkConfig& base, const StageConfig& stage,
                                             const PipelineConfig& pipeline) {
  const Options& o = stage.options;
  auto r = std::make_shared<Routing>();
  if (base.mode == Mode::merge)
    throw ConfigError(o.mark(o.has("tables") ? "tables" : "table"),
                      "mode merge writes the one table its upstream stage describes: no templates nor tables",
                      "write table: <name>");
  const YAML::Node dl = o.node("dead_letter");
  r->shared_dead_letters = dl.IsMap() && dl["table"].IsDefined() && !dl["table"].IsNull();
  const std::int64_t max_tables = o.get_int("max_tables");
  if (max_tables < 1 || max_tables > 100000)
    throw ConfigError(o.mark("max_tables"), "max_tables must be between 1 and 100000");
  r->max_tables = static_cast<std::size_t>(max_tables);

  if (o.has("tables")) {
    if (o.has("table"))
      throw ConfigError(o.mark("tables"), "options 'table' and 'tables' exclude each other",
                        "route with tables: {topic: table, ...} or table: \"{topic}\", not both");
    const YAML::Node tables = o.node("tables");
    if (!tables.IsMap() || tables.size() == 0)
      throw ConfigError(o.mark("tables"), "option 'tables' must map topics to tables",
                        "tables: {orders: public.orders, customers: {table: crm.customers, key: [id]}}");
    std::size_t number = 0;
    for (auto it = tables.begin(); it != tables.end(); ++it) {
      const std::string topic = it->first.Scalar();
      const YAML::Node entry = it->second;
      if (!entry.IsScalar() && !entry.IsMap())
        throw ConfigError(entry.Mark(), "tables." + topic + " must be a table name or {table: ..., ...}");
      if (entry.IsMap() && !entry["table"].IsDefined())
        throw ConfigError(entry.Mark(), "tables." + topic + " needs 'table'", "write {table: <name>, ...}");
      Routing::Entry e{entry_stage(stage, topic, entry), nullptr};
      const YAML::Node table = entry.IsMap() ? entry["table"] : entry;
      if (scalar_string(table).find_first_of("{}") != std::string::npos)
        throw ConfigError(table.Mark(),
                          "tables." + topic + ": a table of 'tables' is a name, not a template");
      PostgresSinkConfig c;
      try {
        c = parse_config(e.stage, pipeline);
      } catch (const ConfigError& err) {
        if (err.has_mark()) throw;
        throw ConfigError(entry.Mark(), "tables." + topic + ": " + err.what(), err.hint());
      }
      if (c.mode == Mode::merge)
        throw ConfigError(entry.Mark(), "tables." + topic + ": mode merge cannot be routed");
      c.stage_table = "etld_stage_" + std::to_string(number++);
      derive_sql(c);
      if (c.mode == Mode::debezium) derive_debezium_sql(c);
      e.cfg = std::make_shared<const PostgresSinkConfig>(std::move(c));
      r->by_topic.emplace(topic, std::move(e));
    }
    return r;
  }

  const std::string text = o.get_string("table");
  const YAML::Mark mark = o.mark("table");
  const bool debezium = base.mode == Mode::debezium;
  r->template_text = text;
  const std::size_t dot = schema_dot(text, mark);
  if (dot != std::string::npos)
    r->schema_parts = parse_parts(std::string_view(text).substr(0, dot), text, mark, debezium);
  r->table_parts =
      parse_parts(dot == std::string::npos ? std::string_view(text) : std::string_view(text).substr(dot + 1),
                  text, mark, debezium);
  if (r->table_parts.empty() || (dot != std::string::npos && r->schema_parts.empty()))
    throw ConfigError(mark, "table template '" + text + "' has an empty schema or table part");
  for (const auto* parts : {&r->schema_parts, &r->table_parts})
    for (const auto& p : *parts)
      r->reads_envelope = r->reads_envelope || p.kind == TemplatePart::Kind::source_table ||
                          p.kind == TemplatePart::Kind::source_schema;
  return r;
}

std::string describe_routing(const Routing& r) {
  if (!r.by_topic.empty()) return "of " + std::to_string(r.by_topic.size()) + " topic(s) in 'tables'";
  return "named by the template " + r.template_text;
}

std::shared_ptr<const PostgresSinkConfig> table_for_topic(const PostgresSinkConfig& base,
                                                          const std::string& topic) {
  const Routing& r = *base.routing;
  if (!r.by_topic.empty()) {
    auto it = r.by_topic.find(topic);
    return it == r.by_topic.end() ? nullptr : it->second.cfg;
  }
  if (r.reads_envelope) return nullptr;
  std::string schema, table;
  for (auto [parts, out] : {std::pair{&r.schema_parts, &schema}, std::pair{&r.table_parts, &table}})
    for (const auto& p : *parts) *out += p.kind == TemplatePart::Kind::topic ? topic : p.text;
  return config_for(base, r, schema, table, 0);
}

TableRouter::TableRouter(std::shared_ptr<const PostgresSinkConfig> base) : base_(std::move(base)) {}

const PostgresSinkConfig* TableRouter::route(Event& e, std::string& error) {
  const Routing& r = *base_->routing;
  if (!r.by_topic.empty()) {
    if (last_ && e.topic == last_topic_) return last_;
    auto it = r.by_topic.find(e.topic.str());
    if (it == r.by_topic.end()) {
      error = "no table for topic '" + printable(e.topic.str(), 250) + "': it is not in 'tables'";
      return nullptr;
    }
    last_topic_ = e.topic;
    last_ = it->second.cfg.get();
    return last_;
  }
  if (!r.reads_envelope && last_ && e.topic == last_topic_) return last_;
  const PostgresSinkConfig* t = from_template(e, error);
  if (t && !r.reads_envelope) {
    last_topic_ = e.topic;
    last_ = t;
  }
  return t;
}

const PostgresSinkConfig* TableRouter::from_template(Event& e, std::string& error) {
  const Routing& r = *base_->routing;
  const Value* source = nullptr;
  if (r.reads_envelope) {
    if (e.rejected()) {  // a transform upstream could not process it: its reason, not the routing's
      error = e.rejection;
      return nullptr;
    }
    if (!e.has_value) return nullptr;  // a tombstone: mode debezium skips it
    const Value* record = record_or_error(e, error);
    if (!record) return nullptr;
    const Value& envelope = unwrap_connect_json(*record);
    if (envelope.is_null()) return nullptr;  // a tombstone in Kafka Connect's wrapper
    source = envelope.kind() == Value::Kind::object ? envelope.find("source") : nullptr;
    if (!source || source->kind() != Value::Kind::object) {
      error = "table template '" + r.template_text +
              "': the record has no Debezium 'source' block to name its table";
      return nullptr;
    }
  }
  auto resolve = [&](const std::vector<TemplatePart>& parts, std::string& out) {
    for (const auto& p : parts) {
      if (p.kind == TemplatePart::Kind::text) {
        out += p.text;
      } else if (p.kind == TemplatePart::Kind::topic) {
        out += e.topic.str();
      } else {
        const char* field = p.kind == TemplatePart::Kind::source_table ? "table" : "schema";
        const Value* v = source ? source->find(field) : nullptr;
        if (!v || v->kind() != Value::Kind::string || v->as_string().empty()) {
          error = "table template '" + r.template_text + "': the change event has no source." + field;
          return false;
        }
        out += v->as_string();
      }
    }
    if (out.find('\0') != std::string::npos) {
      error = "table template '" + r.template_text + "': the name it gives holds a NUL byte";
      return false;
    }
    if (out.size() > kMaxIdentifierBytes) {
      error = "table template '" + r.template_text + "' gives '" + printable(out, 300) + "', " +
              std::to_string(out.size()) + " bytes: longer than PostgreSQL's 63-byte names (it is not cut)";
      return false;
    }
    return true;
  };
  std::string schema, table;
  if (!resolve(r.schema_parts, schema) || !resolve(r.table_parts, table)) return nullptr;
  std::string name = schema;
  name += '\0';
  name += table;
  auto it = tables_.find(name);
  if (it != tables_.end()) return it->second.get();
  if (tables_.size() >= r.max_tables) {
    error = "max_tables (" + std::to_string(r.max_tables) + ") reached: no new table " +
            printable((schema.empty() ? "" : schema + ".") + table, 200) + " for this sink instance";
    return nullptr;
  }
  auto c = config_for(*base_, r, schema, table, tables_.size());
  return tables_.emplace(std::move(name), std::move(c)).first->second.get();
}

}  // namespace etld::pg
