// start_at / stop_at: read at configure time, resolved to offsets per partition on assignment.
#include "connectors/kafka/kafka_bounds.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "config/schema/diagnostics.hpp"
#include "connectors/kafka/kafka_handles.hpp"
#include "stages/flow/event_time.hpp"

namespace etld::kafka {

std::int64_t parse_bound_time(const std::string& text) {
  if (auto ms = flow::parse_rfc3339_ms(text)) return *ms;
  // Operators write 2026-12-01T10:00Z; RFC 3339 wants the seconds, which are then 00.
  auto t = text.find_first_of("Tt ");
  if (t != std::string::npos && text.size() > t + 6 && text[t + 3] == ':' && text[t + 6] != ':')
    if (auto ms = flow::parse_rfc3339_ms(text.substr(0, t + 6) + ":00" + text.substr(t + 6))) return *ms;
  return -1;
}

ReadBound read_bound(const YAML::Node& node, bool is_start) {
  const char* name = is_start ? "start_at" : "stop_at";
  const char* hint =
      is_start ? "start_at: 2026-12-01T10:00:00Z, start_at: earliest, or start_at: {orders: {0: 42}}"
               : "stop_at: end, stop_at: 2026-12-01T12:00:00Z, or stop_at: {orders: {0: 42}}";
  ReadBound b;
  if (node.IsScalar()) {
    auto text = node.Scalar();
    if (is_start && text == "earliest") {
      b.kind = ReadBound::Kind::earliest;
    } else if (!is_start && text == "end") {
      b.kind = ReadBound::Kind::end;
    } else {
      b.kind = ReadBound::Kind::time;
      b.time_ms = parse_bound_time(text);
      if (b.time_ms < 0)
        throw ConfigError(node.Mark(),
                          std::string(name) + " '" + text + "' is not " + (is_start ? "earliest" : "end") +
                              " nor an RFC 3339 time (such as 2026-12-01T10:00:00Z)",
                          hint);
    }
    return b;
  }
  if (!node.IsMap() || node.size() == 0)
    throw ConfigError(node.Mark(),
                      std::string(name) + " must be a time, " + (is_start ? "earliest" : "end") +
                          " or a map of topics to {partition: offset}",
                      hint);
  b.kind = ReadBound::Kind::offsets;
  for (const auto& topic : node) {
    auto name_of = topic.first.as<std::string>("");
    if (name_of.empty() || !topic.second.IsMap() || topic.second.size() == 0)
      throw ConfigError(topic.first.Mark(),
                        std::string(name) + ": topic '" + name_of + "' needs a map of partition to offset",
                        hint);
    for (const auto& po : topic.second) {
      long long partition = -1, offset = -1;
      try {
        partition = po.first.as<long long>();
        offset = po.second.as<long long>();
      } catch (const YAML::Exception&) {
        partition = offset = -1;
      }
      if (partition < 0 || partition > INT32_MAX || offset < 0)
        throw ConfigError(po.first.Mark(),
                          std::string(name) + ": " + name_of + " partition '" + po.first.as<std::string>("") +
                              "' offset '" + po.second.as<std::string>("") +
                              "': partitions and offsets are whole numbers from 0",
                          hint);
      b.offsets[{name_of, static_cast<std::int32_t>(partition)}] = offset;
    }
  }
  return b;
}

namespace {

using Key = std::pair<std::string, std::int32_t>;

// The first offset of each partition whose timestamp is at least `time_ms`; the high watermark
// where no record is that new (librdkafka answers OFFSET_END then).
std::map<Key, std::int64_t> offsets_for_time(
    rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* list, std::int64_t time_ms,
    const std::map<Key, std::pair<std::int64_t, std::int64_t>>& marks, int timeout_ms) {
  PartitionList query = copy_partition_list(list);
  for (int i = 0; i < query->cnt; ++i) query->elems[i].offset = time_ms;
  if (auto err = rd_kafka_offsets_for_times(rk, query.get(), timeout_ms); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error(std::string("looking up the offsets for a time failed: ") +
                             rd_kafka_err2str(err));
  std::map<Key, std::int64_t> out;
  for (int i = 0; i < query->cnt; ++i) {
    const auto& e = query->elems[i];
    Key key(e.topic, e.partition);
    if (e.err)
      throw std::runtime_error("looking up the offset for a time of " + key.first + "[" +
                               std::to_string(key.second) + "] failed: " + rd_kafka_err2str(e.err));
    out[key] = e.offset >= 0 ? e.offset : marks.at(key).second;
  }
  return out;
}

}  // namespace

std::map<Key, PartitionRange> resolve_ranges(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* list,
                                             const ReadBound* start, const ReadBound* stop, int timeout_ms) {
  std::map<Key, std::pair<std::int64_t, std::int64_t>> marks;  // low, high watermark
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    std::int64_t low = 0, high = 0;
    if (auto err = rd_kafka_query_watermark_offsets(rk, e.topic, e.partition, &low, &high, timeout_ms);
        err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error(std::string("querying the watermarks of ") + e.topic + "[" +
                               std::to_string(e.partition) + "] failed: " + rd_kafka_err2str(err));
    marks[Key(e.topic, e.partition)] = {low, high};
  }
  auto side = [&](const ReadBound& b, bool is_start) {
    std::map<Key, std::int64_t> out;
    if (b.kind == ReadBound::Kind::time) return offsets_for_time(rk, list, b.time_ms, marks, timeout_ms);
    for (const auto& [key, lh] : marks) {
      if (b.kind == ReadBound::Kind::earliest) {
        out[key] = lh.first;
      } else if (b.kind == ReadBound::Kind::end) {
        out[key] = lh.second;
      } else {
        auto it = b.offsets.find(key);
        out[key] = it != b.offsets.end() ? it->second : (is_start ? lh.first : lh.second);
      }
    }
    return out;
  };
  std::map<Key, PartitionRange> ranges;
  for (const auto& [key, lh] : marks) ranges[key] = PartitionRange{};
  if (start)
    for (const auto& [key, off] : side(*start, true))  // what retention deleted cannot be read
      ranges[key].start = std::clamp(off, marks[key].first, marks[key].second);
  if (stop)
    for (const auto& [key, off] : side(*stop, false)) ranges[key].stop = off;
  return ranges;
}

}  // namespace etld::kafka
