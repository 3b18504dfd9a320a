// The (table, row schema) configs of a sink instance (schema_tables.hpp).
#include "connectors/postgres/schema_tables.hpp"

#include <vector>

#include "connectors/avro/avro_schema.hpp"
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

// The fields of an Avro key (key_format: avro): the key columns when `key:` is not given.
std::vector<std::string> key_fields(const Event& e) {
  std::vector<std::string> out;
  const auto* key = dynamic_cast<const avro::AvroSchema*>(e.key_schema.get());
  if (const AvroNode* k = key ? record_of(&key->root()) : nullptr)
    for (const auto& f : k->fields) out.push_back(f.first);
  return out;
}

}  // namespace

const PostgresSinkConfig* SchemaTables::route(const PostgresSinkConfig& t, Event& e, std::string& error) {
  if (e.rejected()) return &t;  // its reason is the upstream stage's; encode_event dead-letters it
  if (t.mode == Mode::debezium && !e.has_value) return nullptr;  // a tombstone: skipped
  const auto* schema = dynamic_cast<const avro::AvroSchema*>(e.schema.get());
  const AvroNode* row = nullptr;
  if (schema) {
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
    error = e.schema
                ? "the record's schema is not an Avro schema etld can map to columns"
                : "no schema to map the record's columns from (columns: is not given): read the topic with "
                  "format: avro, or map the columns with 'columns:' (a map stage upstream drops the schema)";
    return nullptr;
  }
  const Key key{&t, row};
  if (last_ && key == last_key_) return last_;
  auto it = configs_.find(key);
  if (it == configs_.end()) {
    if (configs_.size() >= kMaxConfigs) {
      error = "more than " + std::to_string(kMaxConfigs) + " (table, schema) pairs in one sink instance";
      return nullptr;
    }
    auto c = config_for_schema(t, e.schema, *row, key_fields(e), configs_.size(), error);
    if (!c) return nullptr;  // not cached: a later record may bring the key the first lacked
    it = configs_.emplace(key, std::move(c)).first;
  }
  last_key_ = key;
  last_ = it->second.get();
  return last_;
}

}  // namespace etld::pg
