// The kafka source's rebalances: an assignment gets fresh acks per partition (claimed first with
// exactly_once); a revoke is deferred until the revoked partitions' in-flight events settle or
// revoke_timeout passes, then what settled is committed and the partitions are handed back
// (librdkafka's group state machine waits for that unassign); a lost assignment is dropped
// without a commit.
#include "connectors/kafka/kafka_source_internal.hpp"

#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace etld::kafka {

void KafkaSource::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list) {
  ++rebalances_;
  log_positions(err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "before assign" : "before revoke");
  cache_part_ = nullptr;
  bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < list->cnt; ++i) {
      auto p = std::make_unique<Part>();
      p->topic = list->elems[i].topic;
      p->partition = list->elems[i].partition;
      p->acks = std::make_shared<PartitionAcks>(waker_);
      auto& slot = parts_[Key(p->topic.str(), p->partition)];
      if (slot) slot->acks->detach();
      slot = std::move(p);
    }
    if ((s_.start_at || s_.stop_at) && list->cnt > 0 && !closing_) bound_assignment(list);
    if (ctx_log_ok_ && !closing_ && list->cnt > 0)
      ctx_->log().info("kafka: assigned {} ({}; {} partitions now)", describe_partitions(list),
                       cooperative ? "cooperative" : "eager", parts_.size());
    if (store_ && list->cnt > 0 && !closing_) {
      claim_then_assign(copy_partition_list(list), cooperative);
    } else {
      assign(list, cooperative);
    }
    publish_stats();
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    bool lost = rd_kafka_assignment_lost(rk_.get());
    PendingRevoke rev{copy_partition_list(list), Clock::now() + s_.revoke_timeout, cooperative,
                      ++revoke_ids_};
    rev.lost = lost;
    std::size_t in_flight = 0;
    for (int i = 0; i < list->cnt; ++i) {
      auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
      if (it == parts_.end()) continue;
      Part& p = *it->second;
      p.revoking = true;
      clear_buffer(p);
      if (lost) p.acks->detach();
      if (!p.poisoned) in_flight += p.acks->unsettled();
    }
    if (ctx_log_ok_ && !closing_) {
      if (lost)
        ctx_->log().warn(
            "kafka: lost {} (the group moved on without us): not committing them; their "
            "in-flight events will be delivered again to the new owner",
            describe_partitions(list));
      else
        ctx_->log().info("kafka: revoking {} ({} events in flight; waiting up to {} ms for them)",
                         describe_partitions(list), in_flight, s_.revoke_timeout.count());
    }
    revokes_.push_back(std::move(rev));
    if (lost) {
      finish_revoke(revokes_.size() - 1, /*commit=*/false, /*sync=*/false);
    } else {
      for (int i = 0; i < list->cnt; ++i) {
        auto it = parts_.find(Key(list->elems[i].topic, list->elems[i].partition));
        if (it != parts_.end()) {
          if (!it->second->paused) set_paused(*it->second, true);
          it->second->acks->wake_at(0);
        }
      }
      if (closing_)
        finish_revoke(revokes_.size() - 1, /*commit=*/true, /*sync=*/true);
      else
        progress_revokes();
    }
    publish_stats();
    return;
  }
  log_warn("rebalance", "kafka: rebalance error: {}; dropping the assignment", rd_kafka_err2str(err));
  PartitionList all = make_partition_list(static_cast<int>(parts_.size()));
  for (auto& [key, p] : parts_) {
    p->acks->detach();
    if (store_) store_->release(p->topic.str(), p->partition, p->acks.get());
    rd_kafka_topic_partition_list_add(all.get(), p->topic.str().c_str(), p->partition);
  }
  resume_all(all.get());
  parts_.clear();
  revokes_.clear();
  rd_kafka_assign(rk_.get(), nullptr);
}

void KafkaSource::assign(rd_kafka_topic_partition_list_t* list, bool cooperative) {
  if (cooperative) {
    ErrorHandle e(rd_kafka_incremental_assign(rk_.get(), list));
    if (e) log_warn("assign", "kafka: incremental assign failed: {}", rd_kafka_error_string(e.get()));
  } else if (auto e = rd_kafka_assign(rk_.get(), list); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log_warn("assign", "kafka: assign failed: {}", rd_kafka_err2str(e));
  }
}

void KafkaSource::bound_assignment(rd_kafka_topic_partition_list_t* list) {
  // Blocking, once per assignment (a replay's group has one member): a watermark query per
  // partition and an offsets-for-times request per time bound, each up to kBoundsTimeout.
  constexpr int kBoundsTimeout = 10000;
  std::string described;
  try {
    auto ranges = resolve_ranges(rk_.get(), list, s_.start_at ? &*s_.start_at : nullptr,
                                 s_.stop_at ? &*s_.stop_at : nullptr, kBoundsTimeout);
    for (int i = 0; i < list->cnt; ++i) {
      auto& e = list->elems[i];
      const auto& r = ranges.at(Key(e.topic, e.partition));
      if (s_.start_at) e.offset = r.start;
      Part& p = *parts_.at(Key(e.topic, e.partition));
      p.stop_offset = r.stop;
      // Nothing to read: ends now (no partition EOF comes for a partition that never fetches).
      p.at_end = r.stop >= 0 && r.start >= 0 && r.start >= r.stop;
      described += fmt::format("{}{}[{}] {}..{}", described.empty() ? "" : ", ", e.topic, e.partition,
                               r.start >= 0 ? std::to_string(r.start) : std::string("committed"),
                               r.stop >= 0 ? std::to_string(r.stop) : std::string("on"));
    }
  } catch (const std::exception& e) {
    // Reads nothing rather than an unbounded range, and fails the pipeline.
    for (int i = 0; i < list->cnt; ++i) {
      Part& p = *parts_.at(Key(list->elems[i].topic, list->elems[i].partition));
      p.stop_offset = 0;
      p.at_end = true;
    }
    if (ctx_log_ok_)
      ctx_->fail(std::make_exception_ptr(std::runtime_error("kafka: the bounded read (start_at/stop_at) of " +
                                                            describe_partitions(list) + ": " + e.what())));
    return;
  }
  if (ctx_log_ok_) ctx_->log().info("kafka: bounded read, offsets [start..stop): {}", described);
}

// Finishes revokes whose partitions have nothing in flight, or whose time is up.
void KafkaSource::progress_revokes() {
  for (std::size_t i = 0; i < revokes_.size();) {
    const auto& rev = revokes_[i];
    if (rev.committing) {
      ++i;
      continue;
    }
    std::size_t in_flight = 0;
    for (int j = 0; j < rev.list->cnt; ++j) {
      auto it = parts_.find(Key(rev.list->elems[j].topic, rev.list->elems[j].partition));
      if (it != parts_.end() && !it->second->poisoned) in_flight += it->second->acks->unsettled();
    }
    if (!(in_flight == 0 || Clock::now() >= rev.deadline) ||
        !finish_revoke(i, /*commit=*/true, /*sync=*/false))
      ++i;
  }
}

// Commits the revoked partitions (when asked), then forgets them and hands them back to
// librdkafka. On the data path the commit is asynchronous and the unassign follows its result
// (on_revoke_commit); when closing (sync) both happen now. Returns whether the revoke is done.
bool KafkaSource::finish_revoke(std::size_t index, bool commit, bool sync) {
  auto& rev = revokes_[index];
  if (rev.committing) return false;
  std::vector<Part*> parts = revoke_parts(rev);
  std::size_t left = 0;
  for (Part* p : parts)
    if (!p->poisoned) left += p->acks->unsettled();
  if (ctx_log_ok_ && !closing_ && commit && left > 0)
    ctx_->log().warn(
        "kafka: revoking {} with {} events still in flight after revoke_timeout ({} ms); committing what "
        "was settled, the rest will be delivered again to the new owner",
        describe_partitions(rev.list.get()), left, s_.revoke_timeout.count());
  for (Part* p : parts) p->acks->detach();  // what settles from now on cannot be committed by us
  if (commit && rk_) {
    if (!sync && queue_) {
      PartitionList list = commit_list(parts);
      if (list->cnt > 0) {
        ++commits_;
        auto e = rd_kafka_commit_queue(rk_.get(), list.get(), queue_.get(), &KafkaSource::revoke_commit_cb,
                                       reinterpret_cast<void*>(static_cast<std::uintptr_t>(rev.id)));
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
          rev.committing = true;
          return false;  // on_revoke_commit completes it
        }
        log_warn("commit", "kafka: revoke commit of {} failed: {}", describe_offsets(list.get()),
                 rd_kafka_err2str(e));
      }
    } else {
      commit_parts(parts, /*sync=*/true, "revoke");
    }
  }
  complete_revoke(index);
  return true;
}

std::vector<KafkaSource::Part*> KafkaSource::revoke_parts(const PendingRevoke& rev) {
  std::vector<Part*> parts;
  for (int j = 0; j < rev.list->cnt; ++j) {
    auto it = parts_.find(Key(rev.list->elems[j].topic, rev.list->elems[j].partition));
    if (it != parts_.end()) parts.push_back(it->second.get());
  }
  return parts;
}

void KafkaSource::on_revoke_commit(std::uint64_t id, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets) {
  on_commit(err, offsets);
  for (std::size_t i = 0; i < revokes_.size(); ++i)
    if (revokes_[i].id == id) return complete_revoke(i);
}

void KafkaSource::complete_revoke(std::size_t index) {
  PendingRevoke rev = std::move(revokes_[index]);
  revokes_.erase(revokes_.begin() + static_cast<std::ptrdiff_t>(index));
  for (Part* p : revoke_parts(rev)) {
    p->acks->detach();
    if (store_ && !rev.lost) store_->release(p->topic.str(), p->partition, p->acks.get());
    parts_.erase(Key(p->topic.str(), p->partition));
  }
  cache_part_ = nullptr;
  if (ctx_log_ok_ && !closing_)
    ctx_->log().info("kafka: revoked {} ({} partitions left)", describe_partitions(rev.list.get()),
                     parts_.size());
  if (!rk_) return;
  // librdkafka keeps an application pause across assignments: clear ours before handing the
  // partitions back, or a partition assigned to us again would never fetch.
  resume_all(rev.list.get());
  if (rev.cooperative) {
    ErrorHandle e(rd_kafka_incremental_unassign(rk_.get(), rev.list.get()));
    if (e) log_warn("unassign", "kafka: incremental unassign failed: {}", rd_kafka_error_string(e.get()));
  } else if (auto e = rd_kafka_assign(rk_.get(), nullptr); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log_warn("unassign", "kafka: unassign failed: {}", rd_kafka_err2str(e));
  }
}

}  // namespace etld::kafka
