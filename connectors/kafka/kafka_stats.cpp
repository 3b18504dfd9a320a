// What the kafka source publishes about itself: a snapshot of its counters and partitions on its
// StatsBoard every ~100 ms and at each rebalance (scraped by kafka_metrics.cpp, read back by
// kafka_source_stats() for the tests), librdkafka's statistics (consumer lag), and one log line of
// every partition's positions per rebalance.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "connectors/kafka/kafka_source.hpp"
#include "connectors/kafka/kafka_stats_board.hpp"

namespace etld {

namespace kafka {

void KafkaSource::register_board() {
  board_ = std::make_shared<StatsBoard>(ctx_->metrics().labels());
  ctx_->metrics().add(board_);
}

void KafkaSource::on_statistics(std::string_view json) {
  simdjson::dom::object topics;
  if (stats_parser_.parse(json.data(), json.size()).get_object()["topics"].get(topics)) return;
  for (auto& [key, p] : parts_) {
    std::int64_t lag = -1, queued = -1, queued_bytes = -1;
    simdjson::dom::object part;
    if (!topics[key.first]["partitions"][std::to_string(key.second)].get(part)) {
      if (part["consumer_lag"].get(lag)) lag = -1;
      if (part["fetchq_cnt"].get(queued)) queued = -1;
      if (part["fetchq_size"].get(queued_bytes)) queued_bytes = -1;
    }
    p->lag = lag;
    p->prefetched = queued;
    p->prefetched_bytes = queued_bytes;
  }
}

void KafkaSource::unregister_board() { board_.reset(); }

void KafkaSource::publish_stats() {
  if (!board_) return;
  KafkaSourceStats s;
  s.stage = ctx_ && ctx_log_ok_ ? ctx_->stage_name() : s_.stage;
  s.instance = instance_;
  s.group = s_.group;
  s.exactly_once = store_ != nullptr;
  s.pauses = pauses_;
  s.resumes = resumes_;
  s.rebalances = rebalances_;
  s.commits = commits_;
  s.commit_failures = commit_failures_;
  s.pipeline = s_.pipeline;
  for (auto& [key, p] : parts_) {
    KafkaPartitionStats ps;
    ps.topic = p->topic;
    ps.partition = p->partition;
    ps.fetched = p->fetched;
    ps.emitted = p->emitted;
    ps.buffered = p->buffered.size();
    ps.in_flight = p->acks->window();
    ps.fetched_offset = p->fetched_offset;
    ps.written_offset = written_offset(*p);
    ps.committed_offset = p->committed;
    if (!store_ && ps.written_offset > 0)
      ps.duplicate_exposure = static_cast<std::uint64_t>(std::max<std::int64_t>(
          0, ps.written_offset - std::max<std::int64_t>(p->first_offset, p->committed)));
    ps.epoch = store_ ? store_->epoch(p->topic.str(), p->partition) : 0;
    ps.poisoned_offset = p->poisoned ? p->acks->failed_offset() : -1;
    ps.paused = p->paused;
    ps.revoking = p->revoking;
    ps.consumer_lag = p->lag;
    ps.prefetched = p->prefetched;
    ps.prefetched_bytes = p->prefetched_bytes;
    s.partitions.push_back(std::move(ps));
  }
  board_->publish(std::move(s));
}

std::int64_t KafkaSource::written_offset(const Part& p) const {
  return store_ ? store_->written(p.topic.str(), p.partition) : p.acks->commit_offset();
}

// One line per rebalance: where each partition stands, so that what a rebalance may replay
// (at_least_once: written but not committed) is on record.
void KafkaSource::log_positions(const char* when) {
  if (!ctx_log_ok_ || closing_ || parts_.empty()) return;
  std::string text;
  for (auto& [key, p] : parts_) {
    auto written = written_offset(*p);
    text += fmt::format("{}{}[{}] fetched {} in flight {} written {} committed {}", text.empty() ? "" : "; ",
                        p->topic.str(), p->partition, p->fetched_offset, p->acks->window(), written,
                        p->committed);
    if (store_)
      text += fmt::format(" epoch {}", store_->epoch(p->topic.str(), p->partition));
    else if (written > 0)
      text += fmt::format(" exposure {}",
                          std::max<std::int64_t>(0, written - std::max(p->first_offset, p->committed)));
  }
  ctx_->log().info("kafka: positions {}: {}", when, text);
}

}  // namespace kafka

std::vector<KafkaSourceStats> kafka_source_stats(const metrics::Registry& registry) {
  std::vector<KafkaSourceStats> out;
  for (auto& board : registry.collectors_of<kafka::StatsBoard>()) out.push_back(board->read());
  return out;
}

}  // namespace etld
