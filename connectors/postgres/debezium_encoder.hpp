// Mode debezium's half of the COPY encoder: a Debezium change event (JSON with or without Kafka
// Connect's {"schema":..., "payload":...} wrapper, or a record decoded upstream, e.g. from Avro)
// to one staged row: an upsert of `after` (op c, u, r), a delete by key (d), a truncate (t).
// Pure functions, no state: safe on any thread.
#pragma once

#include <cstdint>
#include <string>

#include "connectors/postgres/copy_encoder.hpp"
#include "stages/engine/value.hpp"

namespace etld::pg {

// The envelope inside Kafka Connect's JsonConverter wrapper ({"schema": ..., "payload": ...}),
// or `v` itself when it has none.
const Value& unwrap_connect_json(const Value& v);

// Encodes one change event, as encode_event does for the other modes: write (c, u, r), del (d),
// truncate (t with cfg.truncate), skip (a tombstone; t without cfg.truncate, with `error` saying
// so) or poison (not a change event, with `error` saying why).
RowOp encode_debezium(const PostgresSinkConfig& cfg, Event& e, std::uint64_t seq, std::string& out,
                      std::string& error);

}  // namespace etld::pg
