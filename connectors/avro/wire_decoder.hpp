// Decodes the Avro keys and values of a source's events in the Confluent wire format, with schemas
// from a registry: the value becomes the event's record (Event::value keeps the raw bytes), the
// key is replaced by the decoded key's JSON text. An event either decodes whole, or gets the
// dead-letter reason why not ("avro: wrong magic byte 0x7b (expected 0: ...)", "avro: key:
// ..."), or waits untouched while a schema it needs is fetched.
// Threading: one per source instance, used on its strand; the registry is shared and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "connectors/avro/avro_schema.hpp"
#include "connectors/avro/schema_registry.hpp"
#include "stages/engine/event.hpp"

namespace etld::avro {

class WireDecoder {
 public:
  WireDecoder(std::shared_ptr<SchemaRegistry> registry, bool values, bool keys)
      : registry_(std::move(registry)), values_(values), keys_(keys) {}

  enum class Outcome { decoded, rejected, waiting };
  // `reason` on rejected; on waiting, `waiting_for` is the schema id being fetched and the event
  // is as it was. A tombstone's value, and an absent key, are left as they are.
  Outcome decode(Event& e, std::string& reason, std::uint32_t& waiting_for);
  // Whether the schema `id` is still being fetched.
  bool waiting(std::uint32_t id) { return registry_->lookup(id).pending(); }

 private:
  struct Part {
    std::shared_ptr<const AvroSchema> schema;  // null: see `reason`, or `waiting`
    std::uint32_t id = 0;
    std::string_view body;
    bool waiting = false;
  };
  // The schema of `payload`'s frame, its id and body.
  Part schema_of(std::string_view payload, std::string& reason);

  std::shared_ptr<SchemaRegistry> registry_;
  bool values_, keys_;
  // The schemas found so far, without the registry's lock.
  std::unordered_map<std::uint32_t, std::shared_ptr<const AvroSchema>> known_;
};

}  // namespace etld::avro
