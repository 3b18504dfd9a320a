// A bounded read (replays and backfills): where the kafka source starts (start_at) and where each
// partition ends (stop_at), read from the options at configure time and turned into offsets
// per partition on assignment, with the broker's offsets-for-times and high watermarks.
// docs/connectors/kafka.md ("Reading a range").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

namespace etld::kafka {

struct ReadBound {
  enum class Kind { earliest, end, time, offsets };
  Kind kind = Kind::end;
  std::int64_t time_ms = 0;  // Kind::time: epoch milliseconds
  // Kind::offsets: (topic, partition) -> offset; a partition not named takes the default of its
  // side (start_at: its earliest offset, stop_at: the end seen at assignment).
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> offsets;
};

// The RFC 3339 time in `text` (seconds may be left out: 2026-12-01T10:00Z) as epoch ms, or -1.
std::int64_t parse_bound_time(const std::string& text);

// start_at (`is_start`) or stop_at as written: an RFC 3339 time, `earliest` (start_at only),
// `end` (stop_at only), or {TOPIC: {PARTITION: OFFSET}}. Throws ConfigError at the culprit node.
ReadBound read_bound(const YAML::Node& node, bool is_start);

// Offsets [start, stop) of one partition; start == stop: nothing to read.
struct PartitionRange {
  std::int64_t start = RD_KAFKA_OFFSET_INVALID;  // INVALID: the group's position (no start_at)
  std::int64_t stop = -1;                        // -1: no stop_at
};

// The ranges of the partitions of `list`, looked up on the broker (one watermark query per
// partition, one offsets-for-times request per time bound; each waits up to `timeout_ms`).
// Throws std::runtime_error naming the partition when the broker does not answer.
std::map<std::pair<std::string, std::int32_t>, PartitionRange> resolve_ranges(
    rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* list, const ReadBound* start,
    const ReadBound* stop, int timeout_ms);

}  // namespace etld::kafka
