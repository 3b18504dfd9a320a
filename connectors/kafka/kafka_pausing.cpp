// When the kafka source's partitions fetch: a partition pauses at its in-flight cap (and resumes
// with hysteresis), all pause when the local buffer stayed full for kHoldGrace (so rebalances
// queued behind the prefetch get served), and a partition holding a failed record stays paused
// (on_poison) and is reminded of in the log. Pausing drops librdkafka's prefetch of the
// partition, which it fetches again on resume from the position after the last message taken.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

namespace etld::kafka {

// Room in the local buffer: what may be pulled off librdkafka's queue now.
std::size_t KafkaSource::room() const {
  if (total_buffered_bytes_ >= s_.prefetch_bytes || total_buffered_ >= kLocalBufferEvents) return 0;
  return kLocalBufferEvents - total_buffered_;
}

// Whether the partition should be fetching: with hysteresis, so a partition near its limits
// does not flap between paused and resumed.
bool KafkaSource::want_fetch(const Part& p) const {
  if (stopped_ || closing_ || p.revoking || p.poisoned) return false;
  if (p.stop_offset >= 0 && p.at_end) return false;  // its bounded read is done
  if (p.awaiting_schema) return false;               // fetched again once the schema is there
  if (!cap_.fetches(p.acks->window() + p.buffered.size(), p.paused)) return false;
  if (p.idle_paused)
    return total_buffered_ <= kLocalBufferEvents / 2 && total_buffered_bytes_ <= s_.prefetch_bytes / 2;
  return true;
}

// The local buffer is full and messages wait in librdkafka's queue: leave them there (librdkafka
// bounds its prefetch and stops fetching), unless that lasted kHoldGrace. Then pause every
// partition, so that their prefetch is dropped and whatever waits behind it gets served.
void KafkaSource::check_hold() {
  if (room() > 0 || !queue_ || rd_kafka_queue_length(queue_.get()) == 0) {
    holding_ = false;
    return;
  }
  auto now = Clock::now();
  if (!holding_) {
    holding_ = true;
    hold_since_ = now;
    return;
  }
  if (now - hold_since_ < kHoldGrace) return;
  for (auto& [key, p] : parts_)
    if (!p->paused) {
      set_paused(*p, true);
      if (p->paused) p->idle_paused = true;
    }
  holding_ = false;
  serve_queue(kPull, /*force=*/true);  // outdated messages are dropped; rebalances served
}

void KafkaSource::set_paused(Part& p, bool pause) {
  PartitionList l = make_partition_list(1);
  rd_kafka_topic_partition_list_add(l.get(), p.topic.str().c_str(), p.partition);
  auto e =
      pause ? rd_kafka_pause_partitions(rk_.get(), l.get()) : rd_kafka_resume_partitions(rk_.get(), l.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log_warn("pause", "kafka: {} {}[{}]: {}", pause ? "pausing" : "resuming", p.topic.str(), p.partition,
             rd_kafka_err2str(e));
    return;
  }
  p.paused = pause;
  if (!pause) p.idle_paused = false;
  ++(pause ? pauses_ : resumes_);
}

void KafkaSource::update_pauses() {
  PartitionList to_pause = make_partition_list(), to_resume = make_partition_list();
  std::vector<Part*> paused, resumed;
  for (auto& [key, ptr] : parts_) {
    Part& p = *ptr;
    bool want = want_fetch(p);
    if (p.paused == !want) {
      // Cap-limited: ask to be woken when enough settles, rather than waiting for the tick.
      if (p.paused && !p.revoking && !p.poisoned && p.acks->window() > cap_.resume_at())
        p.acks->wake_at(cap_.resume_at());
      continue;
    }
    auto* l = want ? to_resume.get() : to_pause.get();
    rd_kafka_topic_partition_list_add(l, p.topic.str().c_str(), p.partition);
    (want ? resumed : paused).push_back(&p);
  }
  if (to_pause->cnt > 0) {
    rd_kafka_pause_partitions(rk_.get(), to_pause.get());
    for (int i = 0; i < to_pause->cnt; ++i)
      if (!to_pause->elems[i].err) {
        paused[static_cast<std::size_t>(i)]->paused = true;
        ++pauses_;
      }
  }
  if (to_resume->cnt > 0) {
    rd_kafka_resume_partitions(rk_.get(), to_resume.get());
    for (int i = 0; i < to_resume->cnt; ++i)
      if (!to_resume->elems[i].err) {
        resumed[static_cast<std::size_t>(i)]->paused = false;
        resumed[static_cast<std::size_t>(i)]->idle_paused = false;
        ++resumes_;
      }
  }
}

// Clears the application pause of these partitions (in librdkafka; our Part state is gone).
void KafkaSource::resume_all(const rd_kafka_topic_partition_list_t* list) {
  if (!rk_ || !list || list->cnt == 0) return;
  PartitionList l = copy_partition_list(list);
  rd_kafka_resume_partitions(rk_.get(), l.get());
}

void KafkaSource::clear_buffer(Part& p) {
  total_buffered_ -= std::min(total_buffered_, p.buffered.size());
  total_buffered_bytes_ -= std::min(total_buffered_bytes_, p.buffered_bytes);
  p.buffered.clear();
  p.buffered_bytes = 0;
  p.awaiting_schema = false;  // the event that waited is gone
}

void KafkaSource::check_poison() {
  for (auto& [key, ptr] : parts_) {
    Part& p = *ptr;
    if (p.poisoned || p.revoking) continue;
    auto failed = p.acks->failed_offset();
    if (failed < 0) continue;
    p.poisoned = true;
    p.held_logged = Clock::now();
    clear_buffer(p);
    if (!p.paused) set_paused(p, true);
    const char* policy = s_.on_poison == PoisonPolicy::stop              ? "stop"
                         : s_.on_poison == PoisonPolicy::pause_partition ? "pause_partition"
                                                                         : "dead_letter";
    ctx_->log().error(
        "kafka: the event at {}[{}] offset {} failed (it was neither written nor dead-lettered); "
        "partition {}[{}] is paused at offset {} for good (on_poison: {}): offsets will not be committed "
        "past it, and it is consumed again after a restart or rebalance",
        p.topic.str(), p.partition, failed, p.topic.str(), p.partition, failed, policy);
    if (s_.on_poison == PoisonPolicy::stop && !failed_pipeline_) {
      failed_pipeline_ = true;
      ctx_->fail(std::make_exception_ptr(FatalStageError(
          "kafka: poison event at " + p.topic.str() + "[" + std::to_string(p.partition) + "] offset " +
          std::to_string(failed) + " could not be written; stopping (on_poison: stop)")));
    }
  }
}

void KafkaSource::remind_held() {
  const auto now = Clock::now();
  for (auto& [key, ptr] : parts_) {
    Part& p = *ptr;
    if (!p.poisoned || p.revoking || now - p.held_logged < kHeldReminder) continue;
    p.held_logged = now;
    ctx_->log().error(
        "kafka: partition {}[{}] is still held at offset {}, a record that was neither written nor "
        "dead-lettered; it stays held until a restart or rebalance (docs/operations.md, \"The dead-letter "
        "guard tripped\")",
        p.topic.str(), p.partition, p.acks->failed_offset());
  }
}

}  // namespace etld::kafka
