// libFuzzer target: Avro in the Confluent wire format (connectors/avro/), as the kafka source
// decodes a record's value. Input: a selector byte picks one of a few schemas (every type and
// logical type, a recursive record, arrays and maps of zero-sized items, a union at the root);
// the rest is the payload, read as a Confluent frame when the selector's high bit is set (so that
// the magic byte and schema id are fuzzed too), else as a bare Avro body.
// Checks: only AvroDecodeError is thrown, which the source turns into a dead letter; a decoded
// value writes out as JSON; however long a length or count the input claims, nothing is allocated
// for it beyond the input's size (libFuzzer's -rss_limit_mb and -malloc_limit_mb catch that).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/avro/avro_decode.hpp"
#include "connectors/avro/avro_schema.hpp"
#include "connectors/avro/wire_format.hpp"

namespace {

const std::vector<std::shared_ptr<const etld::avro::AvroSchema>>& schemas() {
  static const auto all = [] {
    std::vector<std::shared_ptr<const etld::avro::AvroSchema>> out;
    for (const char* text : {
             R"({"type":"record","name":"All","namespace":"f","fields":[
               {"name":"n","type":"null"},{"name":"b","type":"boolean"},{"name":"i","type":"int"},
               {"name":"l","type":"long"},{"name":"f","type":"float"},{"name":"d","type":"double"},
               {"name":"by","type":"bytes"},{"name":"s","type":"string"},
               {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
               {"name":"fx","type":{"type":"fixed","name":"F","size":3}},
               {"name":"a","type":{"type":"array","items":"string"}},
               {"name":"m","type":{"type":"map","values":"long"}},
               {"name":"u","type":["null","string","F"]},
               {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":40,"scale":5}},
               {"name":"decf","type":{"type":"fixed","name":"D","size":9,"logicalType":"decimal","precision":20,"scale":2}},
               {"name":"day","type":{"type":"int","logicalType":"date"}},
               {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
               {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
               {"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
               {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
               {"name":"ltm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
               {"name":"ltu","type":{"type":"long","logicalType":"local-timestamp-micros"}},
               {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
               {"name":"fid","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}}]})",
             R"({"type":"record","name":"Node","fields":[{"name":"v","type":"int"},
               {"name":"kids","type":{"type":"array","items":"Node"}},{"name":"next","type":["null","Node"]}]})",
             R"({"type":"array","items":"null"})",
             R"({"type":"map","values":{"type":"record","name":"Empty","fields":[]}})",
             R"(["null","long",{"type":"array","items":{"type":"map","values":"string"}}])",
         })
      out.push_back(etld::avro::AvroSchema::parse(text));
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto& all = schemas();
  const std::uint8_t selector = data[0];
  const auto& schema = *all[(selector & 0x7f) % all.size()];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  if (selector & 0x80) {
    std::string error;
    const auto frame = etld::avro::read_wire_frame(payload, error);
    if (!frame) {
      if (error.empty()) std::abort();  // a refused frame always says why
      return 0;
    }
    payload = frame->body;
  }
  try {
    const etld::Value v = etld::avro::decode_avro(schema, payload);
    const std::string json = v.to_json();
    if (json.empty()) std::abort();
  } catch (const etld::avro::AvroDecodeError& e) {
    if (std::string_view(e.what()).empty()) std::abort();  // a dead letter always says why
  }
  return 0;
}
