// The kafka source's loop: each strand turn pulls what librdkafka has into per-partition
// buffers (never more than the local buffer holds) and hands out what downstream demanded,
// round-robin across partitions, within a per-turn budget so that one busy source cannot hold
// the strand. Every call into librdkafka here uses timeout 0.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>
#include "connectors/kafka/kafka_message.hpp"

namespace etld::kafka {

void KafkaSource::pump() {
  if (closed_ || !rk_ || in_pump_) return;
  in_pump_ = true;
  bool more = false;
  try {
    if (formats_) report_formats();
    std::size_t pulled = 0, emitted = 0;
    while (true) {
      std::size_t n = serve_queue(kTurnBudget - pulled);
      pulled += n;
      check_poison();
      std::size_t e = stopped_ ? 0 : emit_ready(kTurnBudget - emitted);
      emitted += e;
      if (pulled >= kTurnBudget || emitted >= kTurnBudget) {
        more = true;
        break;
      }
      if (n == 0 && e == 0) break;  // nothing came and nothing went: done for now
    }
    check_hold();
    progress_revokes();
    if (s_.stop_at_end || s_.stop_at) check_end_of_input();
    update_pauses();
    if (Clock::now() - last_commit_ >= s_.commit_interval) {
      last_commit_ = Clock::now();
      commit_parts(all_parts(), /*sync=*/false, "interval");
    }
  } catch (const std::exception& e) {
    in_pump_ = false;
    ctx_->fail(std::make_exception_ptr(std::runtime_error(std::string("kafka: ") + e.what())));
    return;
  }
  in_pump_ = false;
  if (more) schedule_pump();
}

// Pulls up to `budget` messages off the consumer queue into the partition buffers; serves
// rebalances, logs, errors and commit results on the way. Returns how many messages came.
std::size_t KafkaSource::serve_queue(std::size_t budget, bool force) {
  if (!force && !stopped_) budget = std::min(budget, room());
  std::array<rd_kafka_message_t*, kPull> msgs;
  std::size_t pulled = 0;
  while (pulled < budget && queue_) {
    std::size_t want = std::min(kPull, budget - pulled);
    ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), 0, msgs.data(), want);
    if (n < 0) {
      log_warn("consume", "kafka: consume failed: {}", rd_kafka_err2str(rd_kafka_last_error()));
      break;
    }
    for (ssize_t i = 0; i < n; ++i) {
      MessageHandle m(msgs[static_cast<std::size_t>(i)]);
      take_message(*m);
    }
    pulled += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < want) break;
  }
  return pulled;
}

KafkaSource::Part* KafkaSource::find_part(rd_kafka_topic_t* rkt, std::int32_t partition) {
  if (cache_part_ && rkt == cache_rkt_ && partition == cache_partition_) return cache_part_;
  auto it = parts_.find(Key(rd_kafka_topic_name(rkt), partition));
  if (it == parts_.end()) return nullptr;
  cache_rkt_ = rkt;
  cache_partition_ = partition;
  cache_part_ = it->second.get();
  return cache_part_;
}

void KafkaSource::check_end_of_input() {
  if (stopped_ || parts_.empty() || !revokes_.empty()) return;
  for (const auto& [key, p] : parts_)
    if (!p->at_end || !p->buffered.empty()) return;
  ctx_->log().info("kafka: every assigned partition ({}) is read to its {}", parts_.size(),
                   s_.stop_at ? "stop: input ends (stop_at)" : "end: input ends (stop_at_end)");
  stop();
}

void KafkaSource::take_message(const rd_kafka_message_t& m) {
  // stop_at: the end now is at or past the stop (the stop is at most the end seen at assignment),
  // so the range is read even when its last offsets hold no record (transaction markers).
  if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF && (s_.stop_at_end || s_.stop_at)) {
    if (Part* p = find_part(m.rkt, m.partition)) p->at_end = true;
    return;
  }
  if (m.err) return consumer_error(m);
  if (stopped_ || closing_) return;
  Part* p = find_part(m.rkt, m.partition);
  if (!p || p->revoking || p->poisoned) return;  // stale: fetched before a revoke or poison pause
  if (p->stop_offset >= 0) {
    if (p->at_end || m.offset >= p->stop_offset) {  // past the range: dropped, never emitted
      p->at_end = true;
      return;
    }
    p->at_end = m.offset + 1 >= p->stop_offset;
  } else {
    p->at_end = false;
  }
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(&m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = nullptr;
  rd_kafka_timestamp_type_t tstype;
  Event e = kafka::message_to_event(m, hdrs, rd_kafka_message_timestamp(&m, &tstype));
  e.topic = p->topic;
  e.partition = p->partition;
  auto bytes = e.value.size() + e.key.size();
  p->buffered_bytes += bytes;
  total_buffered_bytes_ += bytes;
  ++total_buffered_;
  if (p->first_offset < 0) p->first_offset = m.offset;
  p->fetched_offset = m.offset + 1;
  p->buffered.push_back(std::move(e));
  ++p->fetched;
  if (!p->paused && !want_fetch(*p)) set_paused(*p, true);
}

void KafkaSource::consumer_error(const rd_kafka_message_t& m) {
  std::string where = m.rkt ? std::string(rd_kafka_topic_name(m.rkt)) : std::string();
  if (m.rkt && m.partition >= 0) where += "[" + std::to_string(m.partition) + "]";
  std::string what = rd_kafka_message_errstr(&m);
  log_warn("consumer-error:" + where + ":" + std::to_string(m.err), "kafka: consumer error{}: {}",
           where.empty() ? "" : " on " + where, what);
}

// Hands out buffered events round-robin across partitions, never beyond demand nor a partition's
// in-flight cap; one emit() per batch. Returns the number emitted.
std::size_t KafkaSource::emit_ready(std::size_t budget) {
  std::size_t total = 0;
  while (total < budget && ctx_->demand() > 0) {
    std::size_t want = std::min({ctx_->demand(), kMaxBatch, budget - total});
    // Ready partitions, starting after the one served last.
    std::vector<Part*> ready;
    auto start = parts_.upper_bound(rr_);
    for (std::size_t i = 0, n = parts_.size(); i < n; ++i, ++start) {
      if (start == parts_.end()) start = parts_.begin();
      Part& p = *start->second;
      if (!p.buffered.empty() && !p.revoking && !p.poisoned && cap_.room(p.acks->window()) > 0 &&
          (!p.awaiting_schema || schema_arrived(p)))
        ready.push_back(&p);
    }
    if (ready.empty()) break;
    Batch batch;
    batch.reserve(want);
    std::vector<std::size_t> room(ready.size());
    for (std::size_t i = 0; i < ready.size(); ++i) room[i] = cap_.room(ready[i]->acks->window());
    std::vector<std::vector<std::int64_t>> offsets(ready.size());
    std::size_t quantum = std::max<std::size_t>(1, want / ready.size());
    bool progress = true;
    while (batch.size() < want && progress) {
      progress = false;
      for (std::size_t i = 0; i < ready.size() && batch.size() < want; ++i) {
        Part& p = *ready[i];
        if (p.awaiting_schema) continue;
        std::size_t k = std::min({quantum, want - batch.size(), p.buffered.size(), room[i]});
        for (std::size_t j = 0; j < k; ++j) {
          Event& e = p.buffered.front();
          auto bytes = std::min(p.buffered_bytes, e.value.size() + e.key.size());
          if (formats_ && !decode_for_emit(p, e)) {
            k = j;  // held until its schema arrives
            break;
          }
          p.buffered_bytes -= bytes;
          total_buffered_bytes_ -= std::min(total_buffered_bytes_, bytes);
          --total_buffered_;
          offsets[i].push_back(e.offset);
          e.ack = Ack(p.acks, static_cast<std::uint64_t>(e.offset));
          batch.push_back(std::move(e));
          p.buffered.pop_front();
        }
        if (k > 0) {
          room[i] -= k;
          p.emitted += k;
          progress = true;
          rr_ = Key(p.topic.str(), p.partition);
        }
      }
    }
    for (std::size_t i = 0; i < ready.size(); ++i) {
      if (offsets[i].empty()) continue;
      ready[i]->acks->add(offsets[i]);  // before emit: a sink may settle at once
    }
    if (batch.empty()) break;  // every ready partition waits for a schema
    total += batch.size();
    ctx_->emit(std::move(batch));
  }
  return total;
}

}  // namespace etld::kafka
