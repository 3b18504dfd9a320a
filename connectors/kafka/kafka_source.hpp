// The `kafka` source stage: a consumer-group member that hands downstream only what it demanded,
// pauses partitions when demand or per-partition in-flight credit runs out, and commits per
// partition only offsets whose events (and all earlier ones) are settled. See
// docs/connectors/kafka.md. The stage type registers itself; this header only exposes its live
// counters for tests.
// Threading: kafka_source_stats() is thread-safe; the snapshot is refreshed by each source on its
// own strand every ~100 ms (and on rebalances), so it lags slightly behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace etld {

namespace metrics {
class Registry;
}

// Offsets are "next to read" positions (one past the last record they cover), -1 when unknown.
struct KafkaPartitionStats {
  std::string topic;
  std::int32_t partition = 0;
  std::uint64_t fetched = 0;         // messages received from librdkafka
  std::uint64_t emitted = 0;         // events handed downstream
  std::uint64_t buffered = 0;        // fetched, waiting for demand
  std::uint64_t in_flight = 0;       // emitted and not yet committable (the commit window)
  std::int64_t fetched_offset = -1;  // one past the last record fetched
  // Every record below it is written to its destination (or filtered, or dead-lettered): with
  // exactly_once, the offset committed in PostgreSQL under this instance's claim; otherwise the
  // first emitted record not yet settled.
  std::int64_t written_offset = -1;
  std::int64_t committed_offset = -1;  // last offset committed to Kafka (next to read), -1 none yet
  // at_least_once: records written but not yet committed to Kafka (written_offset -
  // committed_offset), which a crash now would deliver again. Always 0 with exactly_once.
  std::uint64_t duplicate_exposure = 0;
  std::int64_t epoch = 0;             // exactly_once: this instance's claim on the partition (0: none)
  std::int64_t poisoned_offset = -1;  // offset of a failed event holding the partition, -1 none
  std::int64_t consumer_lag = -1;     // from librdkafka's statistics, -1 unknown
  // Messages librdkafka has fetched for the partition and etld has not taken yet (its prefetch
  // queue, fetchq_cnt / fetchq_size in its statistics), -1 unknown: part of what is in flight.
  std::int64_t prefetched = -1;
  std::int64_t prefetched_bytes = -1;
  bool paused = false;
  bool revoking = false;
};

struct KafkaSourceStats {
  std::string pipeline;
  std::string stage;
  int instance = 0;
  std::string group;
  bool exactly_once = false;     // positions come from a sink's offset store (docs/delivery.md)
  std::uint64_t pauses = 0;      // partitions paused (backpressure, caps, poison, revoke)
  std::uint64_t resumes = 0;     // partitions resumed
  std::uint64_t rebalances = 0;  // rebalance callbacks (assign and revoke)
  std::uint64_t commits = 0;     // commit requests sent
  // Partition offsets whose commit failed (rebalance deferrals not counted).
  std::uint64_t commit_failures = 0;
  std::vector<KafkaPartitionStats> partitions;
};

// A snapshot of every live kafka source instance registered in `registry` (a pipeline's:
// Pipeline::metrics()).
std::vector<KafkaSourceStats> kafka_source_stats(const metrics::Registry& registry);

}  // namespace etld
