// The (table, row schema) configs of a sink instance (schema_tables.hpp).
#include "connectors/postgres/schema_tables.hpp"

#include <vector>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/postgres/copy_encoder.hpp"
#include "connectors/postgres/debezium_encoder.hpp"
#include "connectors/postgres/schema_columns.hpp"

namespace etld::pg {

namespace {

using avro::AvroNode;
using avro::AvroType;

// The record node of `n`, or of the one record branch of a union with null.
const AvroNode* record_of(const AvroNode* n) {
  if (n && n->type == AvroType::union_)
    for (const AvroNode* b : n->branches)
      if (b->type == AvroType::record) return b;
  return n && n->type == AvroType::record ? n : nullptr;
}

// The fields of the record's key: the key columns when `key:` is not given. An Avro key's
// (key_format: avro), or a JSON object's (a Debezium key, in Kafka Connect's wrapper or not).
std::vector<std::string> key_fields(const Event& e) {
  std::vector<std::string> out;
  const auto* key = dynamic_cast<const avro::AvroSchema*>(e.key_schema.get());
  if (const AvroNode* k = key ? record_of(&key->root()) : nullptr) {
    for (const auto& f : k->fields) out.push_back(f.first);
    return out;
  }
  if (!e.has_key || e.key.find('{') == std::string::npos) return out;
  try {
    const Value parsed = parse_json(e.key);
    const Value& inner = unwrap_connect_json(parsed);
    if (inner.kind() == Value::Kind::object)
      for (const auto& [name, value] : inner.as_object()) out.push_back(name);
  } catch (const std::exception&) {  // not JSON: no key columns from it
  }
  return out;
}

}  // namespace

const PostgresSinkConfig* SchemaTables::route(const PostgresSinkConfig& t, Event& e, std::string& error) {
  if (e.rejected()) return &t;  // its reason is the upstream stage's; encode_event dead-letters it
  if (t.mode == Mode::debezium && !e.has_value) return nullptr;  // a tombstone: skipped
  const auto* schema = dynamic_cast<const avro::AvroSchema*>(e.schema.get());
  std::shared_ptr<const RecordSchema> owner = e.schema;
  const AvroNode* row = nullptr;
  if (!e.schema && t.mode == Mode::debezium) {
    // JSON change events: the schema in Kafka Connect's wrapper, or the row images themselves.
    const Value* record = record_or_error(e, error);
    if (!record) return nullptr;
    const Value& envelope = unwrap_connect_json(*record);
    if (&envelope == record) return from_json(t, e, error);
    if (envelope.is_null()) return nullptr;  // a tombstone in the wrapper: skipped
    auto converted = connect_[&t].get(*record->find("schema"), "after", error);
    if (!converted) return nullptr;
    row = &converted->root();
    owner = std::move(converted);
  } else if (schema) {
    row = &schema->root();
    if (t.mode == Mode::debezium) {
      const AvroNode* after = nullptr;
      if (row->type == AvroType::record)
        for (const auto& [name, node] : row->fields)
          if (name == "after") after = record_of(node);
      if (!after) {
        error = "the change event's schema " + row->name + " has no record field 'after' to map columns from";
        return nullptr;
      }
      row = after;
    }
  }
  if (!row) {
    if (!e.schema) return e.has_value ? from_json(t, e, error) : for_tombstone(t, e, error);
    error = "the record's schema is not an Avro schema etld can map to columns";
    return nullptr;
  }
  const Key key{&t, row};
  if (last_ && key == last_key_) return last_;
  auto it = configs_.find(key);
  if (it == configs_.end()) {
    if (full(error)) return nullptr;
    auto c = config_for_schema(t, owner, *row, key_fields(e), count(), error);
    if (!c) return nullptr;  // not cached: a later record may bring the key the first lacked
    it = configs_.emplace(key, std::move(c)).first;
  }
  last_key_ = key;
  last_ = it->second.get();
  return last_;
}

const PostgresSinkConfig* SchemaTables::from_json(const PostgresSinkConfig& t, Event& e, std::string& error) {
  const Value* record = record_or_error(e, error);
  if (!record) return nullptr;
  JsonTable& table = json_[&t];
  const Value* row = record;
  if (t.mode == Mode::debezium) {  // the row image: after, or before for a delete
    const Value* after = record->find("after");
    const Value* before = record->find("before");
    row = after && after->kind() == Value::Kind::object     ? after
          : before && before->kind() == Value::Kind::object ? before
                                                            : nullptr;
    if (!row) {
      if (table.current) return table.current;
      error = "a change event without a row image before any with one: its table's columns are not known yet";
      return nullptr;
    }
  }
  std::size_t needed = 0;
  const std::size_t added = table.columns.learn(*row, error, needed);
  if (!error.empty()) return nullptr;
  if (added == 0)
    for (const auto& [width, layout] : table.layouts)
      if (width >= needed) return layout;
  if (full(error)) return nullptr;
  const std::vector<std::string> key = t.key.empty() ? key_fields(e) : t.key;
  std::vector<ColumnSpec> columns;
  error = with_overrides(table.columns.columns(), t.column_overrides, t.skipped_fields, key, columns);
  if (!error.empty()) return nullptr;
  auto c = config_for_columns(t, std::move(columns), key, nullptr, count(), error);
  if (!c) return nullptr;
  json_configs_.push_back(std::move(c));
  table.current = json_configs_.back().get();
  table.layouts.emplace_back(table.columns.columns().size(), table.current);
  return table.current;
}

const PostgresSinkConfig* SchemaTables::for_tombstone(const PostgresSinkConfig& t, const Event& e,
                                                      std::string& error) {
  if (!t.delete_on_tombstone) return &t;  // encode_event skips it
  if (auto it = deletes_.find(&t); it != deletes_.end()) return it->second;
  // A config of the key columns alone, typed as the table has them (the staging table copies
  // them): it deletes, and never creates nor changes the table.
  std::vector<std::string> key = t.key.empty() ? key_fields(e) : t.key;
  if (key.empty()) return nullptr;  // no key columns (no key:, a raw key): nothing to delete, skipped
  if (full(error)) return nullptr;
  std::vector<ColumnSpec> columns;
  for (const std::string& k : key) {
    ColumnSpec c;
    c.name = k;
    c.quoted = quote_ident(k);
    c.path = k;
    c.is_key = true;
    columns.push_back(std::move(c));
  }
  PostgresSinkConfig deletes = t;
  deletes.create_table = false;
  deletes.evolve = false;
  deletes.deletes_only = true;
  auto c = config_for_columns(deletes, std::move(columns), std::move(key), nullptr, count(), error);
  if (!c) return nullptr;
  json_configs_.push_back(std::move(c));
  return deletes_[&t] = json_configs_.back().get();
}

bool SchemaTables::full(std::string& error) const {
  if (count() < kMaxConfigs) return false;
  error = "more than " + std::to_string(kMaxConfigs) + " (table, schema) pairs in one sink instance";
  return true;
}

}  // namespace etld::pg
