#include "connectors/avro/wire_format.hpp"

#include <fmt/format.h>

namespace etld::avro {

std::optional<WireFrame> read_wire_frame(std::string_view payload, std::string& error) {
  if (payload.empty()) {
    error = "empty payload (the Confluent wire format starts with magic byte 0 and a 4-byte schema id)";
    return std::nullopt;
  }
  const auto magic = static_cast<unsigned char>(payload[0]);
  if (magic != 0) {
    error = fmt::format("wrong magic byte 0x{:02x} (expected 0: not the Confluent wire format)", magic);
    return std::nullopt;
  }
  if (payload.size() < kWireHeaderBytes) {
    error = fmt::format("too short: {} bytes, less than the Confluent wire format's 5-byte header",
                        payload.size());
    return std::nullopt;
  }
  WireFrame f;
  for (std::size_t i = 1; i < kWireHeaderBytes; ++i)
    f.schema_id = (f.schema_id << 8) | static_cast<unsigned char>(payload[i]);
  f.body = payload.substr(kWireHeaderBytes);
  return f;
}

std::string wire_header(std::uint32_t id) {
  return {'\0', static_cast<char>(id >> 24), static_cast<char>(id >> 16), static_cast<char>(id >> 8),
          static_cast<char>(id)};
}

}  // namespace etld::avro
