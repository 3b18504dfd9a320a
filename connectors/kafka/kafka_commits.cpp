// The kafka source's commits to Kafka: each partition at the first offset of its commit window
// not yet settled (or failed), or with exactly_once at what the sink's offset store holds under
// our claim (then Kafka's offsets serve lag monitoring only). Every commit_interval asynchronously,
// on revoke and on close synchronously; a failed commit is retried at the next interval.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace etld::kafka {

std::vector<KafkaSource::Part*> KafkaSource::all_parts() {
  std::vector<Part*> out;
  for (auto& [key, p] : parts_) out.push_back(p.get());
  return out;
}

// The offsets of `parts` that moved since the last commit (marked as sent).
PartitionList KafkaSource::commit_list(const std::vector<Part*>& parts) {
  PartitionList l = make_partition_list(static_cast<int>(parts.size()));
  for (Part* p : parts) {
    // exactly_once: Kafka gets what PostgreSQL holds under our claim, for lag monitoring only.
    auto off = store_ ? store_->written(p->topic.str(), p->partition) : p->acks->commit_offset();
    if (off < 0 || off <= p->committed_sent) continue;
    rd_kafka_topic_partition_list_add(l.get(), p->topic.str().c_str(), p->partition)->offset = off;
    p->committed_sent = off;
  }
  return l;
}

void KafkaSource::commit_parts(const std::vector<Part*>& parts, bool sync, const char* why) {
  if (!rk_) return;
  PartitionList l = commit_list(parts);
  if (l->cnt == 0) return;
  ++commits_;
  auto e = rd_kafka_commit(rk_.get(), l.get(), sync ? 0 : 1);
  if (!sync) return;  // commit_cb reports
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    commit_failures_ += static_cast<std::uint64_t>(l->cnt);
    log_warn("commit", "kafka: {} commit of {} failed: {}", why, describe_offsets(l.get()),
             rd_kafka_err2str(e));
  } else if (ctx_log_ok_)
    ctx_->log().debug("kafka: {} commit: {}", why, describe_offsets(l.get()));
  for (int i = 0; i < l->cnt; ++i) {
    const auto& el = l->elems[i];
    auto it = parts_.find(Key(el.topic, el.partition));
    if (it == parts_.end()) continue;
    if (e || el.err)
      it->second->committed_sent = -1;  // retried at the next interval
    else
      it->second->committed = std::max(it->second->committed, el.offset);
  }
}

std::string KafkaSource::describe_offsets(const rd_kafka_topic_partition_list_t* l) {
  std::string out;
  for (int i = 0; i < l->cnt; ++i) {
    if (i) out += ' ';
    out += std::string(l->elems[i].topic) + "[" + std::to_string(l->elems[i].partition) + "]@" +
           std::to_string(l->elems[i].offset);
  }
  return out;
}

void KafkaSource::on_commit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  for (int i = 0; offsets && i < offsets->cnt; ++i) {
    const auto& el = offsets->elems[i];
    auto it = parts_.find(Key(el.topic, el.partition));
    auto perr = el.err ? el.err : err;
    if (perr == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || perr == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
        perr == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) {
      // Expected while the group rebalances: retried at the next interval.
      if (ctx_log_ok_)
        ctx_->log().debug("kafka: commit of {}[{}]@{} deferred: {}", el.topic, el.partition, el.offset,
                          rd_kafka_err2str(perr));
      if (it != parts_.end()) it->second->committed_sent = -1;
    } else if (perr) {
      ++commit_failures_;
      log_warn(std::string("commit:") + el.topic, "kafka: commit of {}[{}]@{} failed: {}", el.topic,
               el.partition, el.offset, rd_kafka_err2str(perr));
      if (it != parts_.end()) it->second->committed_sent = -1;  // retried at the next interval
    } else if (it != parts_.end()) {
      it->second->committed = std::max(it->second->committed, el.offset);
    }
  }
}

}  // namespace etld::kafka
