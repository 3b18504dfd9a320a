// Per sink instance, on its strand: for a table with columns from the schema, the config of each
// (table, row schema) pair its records bring (schema_columns.hpp), made on first use and kept.
// The row schema: the Avro schema the record was decoded with (Event::schema), or with mode
// debezium its envelope's `after` record.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

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
  const PostgresSinkConfig* last_ = nullptr;
};

}  // namespace etld::pg
