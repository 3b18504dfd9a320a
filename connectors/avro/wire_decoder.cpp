#include "connectors/avro/wire_decoder.hpp"

#include <optional>
#include <string>

#include "connectors/avro/avro_decode.hpp"
#include "connectors/avro/wire_format.hpp"

namespace etld::avro {

WireDecoder::Part WireDecoder::schema_of(std::string_view payload, std::string& reason) {
  Part part;
  const std::optional<WireFrame> frame = read_wire_frame(payload, reason);
  if (!frame) return part;
  part.id = frame->schema_id;
  part.body = frame->body;
  if (auto it = known_.find(part.id); it != known_.end()) {
    part.schema = it->second;
    return part;
  }
  SchemaRegistry::Lookup found = registry_->lookup(part.id);
  if (found.pending()) {
    part.waiting = true;
  } else if (!found.schema) {
    reason = std::move(found.error);
  } else {
    part.schema = known_.emplace(part.id, std::move(found.schema)).first->second;
  }
  return part;
}

WireDecoder::Outcome WireDecoder::decode(Event& e, std::string& reason, std::uint32_t& waiting_for) {
  const bool value = values_ && e.has_value, key = keys_ && e.has_key;
  // Both schemas first: the event changes only once everything it needs is there.
  Part k, v;
  if (key) {
    k = schema_of(e.key, reason);
    if (k.waiting) return waiting_for = k.id, Outcome::waiting;
    if (!k.schema) return reason = "avro: key: " + reason, Outcome::rejected;
  }
  if (value) {
    v = schema_of(e.value, reason);
    if (v.waiting) return waiting_for = v.id, Outcome::waiting;
    if (!v.schema) return reason = "avro: " + reason, Outcome::rejected;
  }
  std::string key_json;
  if (key) {
    try {
      key_json = decode_avro(*k.schema, k.body).to_json();
    } catch (const AvroDecodeError& ex) {
      reason = "avro: key: body does not decode with schema id " + std::to_string(k.id) + ": " + ex.what();
      return Outcome::rejected;
    }
  }
  if (value) {
    try {
      e.set_record(decode_avro(*v.schema, v.body));
      e.schema = std::move(v.schema);
    } catch (const AvroDecodeError& ex) {
      reason = "avro: body does not decode with schema id " + std::to_string(v.id) + ": " + ex.what();
      return Outcome::rejected;
    }
  }
  if (key) {
    e.key = std::move(key_json);
    e.key_schema = std::move(k.schema);
  }
  return Outcome::decoded;
}

}  // namespace etld::avro
