// The kafka source's metrics, rendered at scrape time from each instance's published stats (see
// kafka_stats_board.hpp), so the data path pays nothing for them. Counters restart from zero when
// a source instance restarts. Each metric is declared once below; collect() declares every
// family, sampled or not, so that a scrape shows them all while a kafka source runs.
#include <string>

#include "connectors/kafka/kafka_stats_board.hpp"

namespace etld::kafka {

namespace {

using metrics::Metric;
using metrics::Type;

constexpr Metric kConsumerLag{
    "etld_kafka_consumer_lag", Type::gauge,
    "Messages between the partition's high watermark and the group's committed offset, "
    "from librdkafka's statistics (every statistics.interval.ms, default 5s)."};
constexpr Metric kAssignedPartitions{"etld_kafka_assigned_partitions", Type::gauge,
                                     "Partitions assigned to the source instance."};
constexpr Metric kCommits{"etld_kafka_commits_total", Type::counter, "Offset commit requests sent."};
constexpr Metric kCommitFailures{"etld_kafka_commit_failures_total", Type::counter,
                                 "Partition offsets whose commit failed (retried at the next interval); "
                                 "rebalance deferrals not counted."};
constexpr Metric kRebalances{"etld_kafka_rebalances_total", Type::counter,
                             "Rebalance callbacks (assignments and revocations)."};
constexpr Metric kPauses{"etld_kafka_partition_pauses_total", Type::counter,
                         "Partitions paused (backpressure, in-flight cap, poison, revoke, idle)."};
constexpr Metric kFetched{"etld_kafka_partition_fetched_total", Type::counter,
                          "Messages received from the partition."};
constexpr Metric kInFlight{"etld_kafka_partition_in_flight", Type::gauge,
                           "Events of the partition emitted and not yet committable (the commit window)."};
constexpr Metric kBuffered{"etld_kafka_partition_buffered", Type::gauge,
                           "Messages of the partition fetched, waiting for demand."};
constexpr Metric kPrefetched{
    "etld_kafka_partition_prefetched", Type::gauge,
    "Messages librdkafka fetched for the partition that the source has not taken yet (its prefetch queue, "
    "bounded by prefetch_kbytes), from librdkafka's statistics."};
constexpr Metric kPrefetchedBytes{"etld_kafka_partition_prefetched_bytes", Type::gauge,
                                  "Payload bytes of etld_kafka_partition_prefetched."};
constexpr Metric kCommittedOffset{
    "etld_kafka_partition_committed_offset", Type::gauge,
    "Last offset committed for the partition (the next to read), -1 before the first commit."};
constexpr Metric kPaused{"etld_kafka_partition_paused", Type::gauge, "1 while the partition is paused."};
constexpr Metric kHeld{"etld_kafka_partition_held", Type::gauge,
                       "1 while the partition is held at a record that was neither written nor dead-lettered "
                       "(on_poison: pause_partition, or the postgres dead-letter guard's pause)."};
constexpr Metric kFetchedOffset{"etld_kafka_partition_fetched_offset", Type::gauge,
                                "One past the last record fetched from the partition, -1 before the first."};
constexpr Metric kWrittenOffset{
    "etld_kafka_partition_written_offset", Type::gauge,
    "Every record below it is written to its destination (exactly_once: the offset "
    "committed in PostgreSQL), -1 unknown."};
constexpr Metric kDuplicateExposure{
    "etld_kafka_partition_duplicate_exposure", Type::gauge,
    "at_least_once: records written but not yet committed to Kafka, which a crash now would deliver again; 0 "
    "with exactly_once."};
constexpr Metric kEpoch{"etld_kafka_partition_epoch", Type::gauge,
                        "exactly_once: this instance's fencing epoch on the partition (0: no claim)."};

constexpr const Metric* kAll[] = {&kConsumerLag,
                                  &kAssignedPartitions,
                                  &kCommits,
                                  &kCommitFailures,
                                  &kRebalances,
                                  &kPauses,
                                  &kFetched,
                                  &kInFlight,
                                  &kBuffered,
                                  &kPrefetched,
                                  &kPrefetchedBytes,
                                  &kCommittedOffset,
                                  &kPaused,
                                  &kHeld,
                                  &kFetchedOffset,
                                  &kWrittenOffset,
                                  &kDuplicateExposure,
                                  &kEpoch};

}  // namespace

void StatsBoard::collect(metrics::Exposition& out) const {
  for (const auto* m : kAll) out.family(*m);
  auto s = read();
  const auto& labels = labels_;
  out.sample(kAssignedPartitions, labels, static_cast<double>(s.partitions.size()));
  out.sample(kCommits, labels, static_cast<double>(s.commits));
  out.sample(kCommitFailures, labels, static_cast<double>(s.commit_failures));
  out.sample(kRebalances, labels, static_cast<double>(s.rebalances));
  out.sample(kPauses, labels, static_cast<double>(s.pauses));
  for (const auto& p : s.partitions) {
    metrics::Labels pl = labels;
    pl.emplace_back("topic", p.topic);
    pl.emplace_back("partition", std::to_string(p.partition));
    if (p.consumer_lag >= 0) out.sample(kConsumerLag, pl, static_cast<double>(p.consumer_lag));
    out.sample(kFetched, pl, static_cast<double>(p.fetched));
    out.sample(kInFlight, pl, static_cast<double>(p.in_flight));
    out.sample(kBuffered, pl, static_cast<double>(p.buffered));
    if (p.prefetched >= 0) out.sample(kPrefetched, pl, static_cast<double>(p.prefetched));
    if (p.prefetched_bytes >= 0) out.sample(kPrefetchedBytes, pl, static_cast<double>(p.prefetched_bytes));
    out.sample(kCommittedOffset, pl, static_cast<double>(p.committed_offset));
    out.sample(kPaused, pl, p.paused ? 1 : 0);
    out.sample(kHeld, pl, p.poisoned_offset >= 0 ? 1 : 0);
    out.sample(kFetchedOffset, pl, static_cast<double>(p.fetched_offset));
    out.sample(kWrittenOffset, pl, static_cast<double>(p.written_offset));
    out.sample(kDuplicateExposure, pl, static_cast<double>(p.duplicate_exposure));
    out.sample(kEpoch, pl, static_cast<double>(p.epoch));
  }
}

}  // namespace etld::kafka
