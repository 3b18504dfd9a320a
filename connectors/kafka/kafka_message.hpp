// What a consumed Kafka message becomes: an Event with its payload (or a tombstone), key, headers,
// timestamp and offset. A function of its own so that the fuzz target tests/fuzz/kafka_message_fuzz
// can feed it messages built by hand. The caller sets topic and partition (its interned names).
#pragma once

#include <cstdint>

#include <librdkafka/rdkafka.h>

#include "stages/engine/event.hpp"

namespace etld::kafka {

// `headers` is what rd_kafka_message_headers() gave (nullptr: none); `timestamp_ms` is what
// rd_kafka_message_timestamp() gave (negative: none, becomes 0). Header values that are null
// become empty strings.
Event message_to_event(const rd_kafka_message_t& m, const rd_kafka_headers_t* headers,
                       std::int64_t timestamp_ms);

}  // namespace etld::kafka
