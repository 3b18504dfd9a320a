// The kafka source's metrics, rendered at scrape time from the sources' published stats (see
// kafka_source.hpp), so the data path pays nothing for them. Counters restart from zero when a
// source instance restarts.
#include <string>

#include "connectors/kafka/kafka_source.hpp"
#include "stages/engine/metrics.hpp"

namespace etld {

namespace {

void collect_kafka(metrics::Exposition& out) {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  out.family("etld_kafka_consumer_lag", "gauge",
             "Messages between the partition's high watermark and the group's committed offset, from "
             "librdkafka's statistics (every statistics.interval.ms, default 5s).");
  out.family("etld_kafka_assigned_partitions", "gauge", "Partitions assigned to the source instance.");
  out.family("etld_kafka_commits_total", "counter", "Offset commit requests sent.");
  out.family("etld_kafka_commit_failures_total", "counter",
             "Partition offsets whose commit failed (retried at the next interval); rebalance deferrals not "
             "counted.");
  out.family("etld_kafka_rebalances_total", "counter", "Rebalance callbacks (assignments and revocations).");
  out.family("etld_kafka_partition_pauses_total", "counter",
             "Partitions paused (backpressure, in-flight cap, poison, revoke, idle).");
  out.family("etld_kafka_partition_fetched_total", "counter", "Messages received from the partition.");
  out.family("etld_kafka_partition_in_flight", "gauge",
             "Events of the partition emitted and not yet committable (the commit window).");
  out.family("etld_kafka_partition_buffered", "gauge",
             "Messages of the partition fetched, waiting for demand.");
  out.family("etld_kafka_partition_committed_offset", "gauge",
             "Last offset committed for the partition (the next to read), -1 before the first commit.");
  out.family("etld_kafka_partition_paused", "gauge", "1 while the partition is paused.");
  out.family("etld_kafka_partition_held", "gauge",
             "1 while the partition is held at a record that was neither written nor dead-lettered "
             "(on_poison: pause_partition, or the postgres dead-letter guard's pause).");
  out.family("etld_kafka_partition_fetched_offset", "gauge",
             "One past the last record fetched from the partition, -1 before the first.");
  out.family("etld_kafka_partition_written_offset", "gauge",
             "Every record below it is written to its destination (exactly_once: the offset committed in "
             "PostgreSQL), -1 unknown.");
  out.family("etld_kafka_partition_duplicate_exposure", "gauge",
             "at_least_once: records written but not yet committed to Kafka, which a crash now would deliver "
             "again; 0 with exactly_once.");
  out.family("etld_kafka_partition_epoch", "gauge",
             "exactly_once: this instance's fencing epoch on the partition (0: no claim).");
  for (const auto& s : kafka_source_stats()) {
    Labels labels{{"pipeline", s.pipeline}, {"stage", s.stage}, {"instance", std::to_string(s.instance)}};
    out.sample("etld_kafka_assigned_partitions", labels, static_cast<double>(s.partitions.size()));
    out.sample("etld_kafka_commits_total", labels, static_cast<double>(s.commits));
    out.sample("etld_kafka_commit_failures_total", labels, static_cast<double>(s.commit_failures));
    out.sample("etld_kafka_rebalances_total", labels, static_cast<double>(s.rebalances));
    out.sample("etld_kafka_partition_pauses_total", labels, static_cast<double>(s.pauses));
    for (const auto& p : s.partitions) {
      Labels pl = labels;
      pl.emplace_back("topic", p.topic);
      pl.emplace_back("partition", std::to_string(p.partition));
      if (p.consumer_lag >= 0) out.sample("etld_kafka_consumer_lag", pl, static_cast<double>(p.consumer_lag));
      out.sample("etld_kafka_partition_fetched_total", pl, static_cast<double>(p.fetched));
      out.sample("etld_kafka_partition_in_flight", pl, static_cast<double>(p.in_flight));
      out.sample("etld_kafka_partition_buffered", pl, static_cast<double>(p.buffered));
      out.sample("etld_kafka_partition_committed_offset", pl, static_cast<double>(p.committed_offset));
      out.sample("etld_kafka_partition_paused", pl, p.paused ? 1 : 0);
      out.sample("etld_kafka_partition_held", pl, p.poisoned_offset >= 0 ? 1 : 0);
      out.sample("etld_kafka_partition_fetched_offset", pl, static_cast<double>(p.fetched_offset));
      out.sample("etld_kafka_partition_written_offset", pl, static_cast<double>(p.written_offset));
      out.sample("etld_kafka_partition_duplicate_exposure", pl, static_cast<double>(p.duplicate_exposure));
      out.sample("etld_kafka_partition_epoch", pl, static_cast<double>(p.epoch));
    }
  }
}

const auto registration = metrics::registry().add_collector(collect_kafka);

}  // namespace

}  // namespace etld
