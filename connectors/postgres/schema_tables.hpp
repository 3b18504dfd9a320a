// Per sink instance, on its strand: for a table with columns from the schema, the config of each
// (table, row schema) pair its records bring (schema_columns.hpp), made on first use and kept.
// The row schema: the Avro schema the record was decoded with (Event::schema), or with mode
// debezium its envelope's `after` record; records without one (JSON) bring their columns
// themselves (json_columns.hpp), one layout per table that grows with the fields seen.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/postgres/connect_schema.hpp"
#include "connectors/postgres/json_columns.hpp"
#include "connectors/postgres/pg_config.hpp"
#include "stages/engine/event.hpp"

namespace etld::pg {

class SchemaTables {
 public:
  // The config for e's record in table `t` (t.schema_columns); nullptr with `error` set when it has
  // no schema to map or none can be made of it (a dead letter), with `error` empty when it is to be
  // skipped (a Debezium tombstone). A rejected event gets `t` itself: it is a dead letter anyway.
  const PostgresSinkConfig* route(const PostgresSinkConfig& t, Event& e, std::string& error);

  // The most (table, schema) pairs one instance keeps: a schema per record would be a leak.
  static constexpr std::size_t kMaxConfigs = 4096;

 private:
  const PostgresSinkConfig* from_json(const PostgresSinkConfig& t, Event& e, std::string& error);
  // A tombstone without a schema: a config of the table's key columns deletes by them.
  const PostgresSinkConfig* for_tombstone(const PostgresSinkConfig& t, const Event& e, std::string& error);
  std::size_t count() const { return configs_.size() + json_configs_.size(); }
  bool full(std::string& error) const;

  struct Key {
    const PostgresSinkConfig* table;
    const void* row;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<const void*>()(k.table) * 31 + std::hash<const void*>()(k.row);
    }
  };
  std::unordered_map<Key, std::unique_ptr<const PostgresSinkConfig>, KeyHash> configs_;
  Key last_key_{nullptr, nullptr};
  // JSON records: per table, the columns learnt so far and the config of the latest layout (the
  // earlier ones stay alive: rows of a batch in flight point to them).
  struct JsonTable {
    JsonColumns columns;
    const PostgresSinkConfig* current = nullptr;
    // Every layout made, by how many learnt columns it has (ascending): a record goes to the first
    // that holds its fields, so that one refused field does not refuse the records without it.
    std::vector<std::pair<std::size_t, const PostgresSinkConfig*>> layouts;
  };
  std::unordered_map<const PostgresSinkConfig*, JsonTable> json_;
  // mode debezium, JSON in Kafka Connect's wrapper: per table, its row image schemas as Avro.
  std::unordered_map<const PostgresSinkConfig*, ConnectSchemaCache> connect_;
  std::vector<std::unique_ptr<const PostgresSinkConfig>> json_configs_;  // and tombstones' key-only ones
  std::unordered_map<const PostgresSinkConfig*, const PostgresSinkConfig*> deletes_;  // per table
  const PostgresSinkConfig* last_ = nullptr;
};

}  // namespace etld::pg
