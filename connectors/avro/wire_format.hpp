// The Confluent wire format of a Kafka key or value: magic byte 0, the schema's id in the
// registry as 4 bytes big-endian, then the Avro binary body.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace etld::avro {

struct WireFrame {
  std::uint32_t schema_id = 0;
  std::string_view body;  // into the payload
};

inline constexpr std::size_t kWireHeaderBytes = 5;

// The frame of `payload`, or nullopt with `error` saying why it is not one ("wrong magic byte 0x7b
// (expected 0: not the Confluent wire format)").
std::optional<WireFrame> read_wire_frame(std::string_view payload, std::string& error);

// The 5 bytes that frame a body written with schema `id` (for tests and tools that produce).
std::string wire_header(std::uint32_t id);

}  // namespace etld::avro
