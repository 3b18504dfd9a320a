#include "connectors/kafka/kafka_message.hpp"

#include <cstddef>
#include <string>

namespace etld::kafka {

Event message_to_event(const rd_kafka_message_t& m, const rd_kafka_headers_t* headers,
                       std::int64_t timestamp_ms) {
  Event e;
  if (m.payload) {
    e.value.assign(static_cast<const char*>(m.payload), m.len);
  } else {
    e.has_value = false;  // tombstone
  }
  if (m.key) {
    e.key.assign(static_cast<const char*>(m.key), m.key_len);
    e.has_key = true;
  }
  if (headers) {
    const char* name;
    const void* val;
    std::size_t size;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
      e.headers.push_back(
          Header{name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
  }
  e.timestamp_ms = timestamp_ms >= 0 ? timestamp_ms : 0;
  e.offset = m.offset;
  return e;
}

}  // namespace etld::kafka
