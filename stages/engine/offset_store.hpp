// The rendezvous of exactly-once delivery: a sink that commits its source's positions in the same
// transaction as its rows (the postgres sink with `delivery: exactly_once`) offers an OffsetStore
// through its factory (StageFactory::offset_store); the pipeline binds it to the source feeding
// the sink when it builds the graph (SourceContext::offset_store), after validation checked the
// shape between them (config/delivery_check.hpp). The source (kafka) claims each partition it is
// assigned through the store (fencing the previous owner), seeks to the position the store
// returns, and binds the partition's ack target to the claim. The sink then writes only events of
// a live claim, under its epoch.
// Threading: every OffsetStore method is thread-safe; claim() never blocks the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "stages/engine/event.hpp"

namespace etld {

// The ack target of one partition assignment, as the store sees it: the source's commit window.
class TrackedPartition : public AckTarget {
 public:
  // Where the partition must be read again from if everything settled so far (and not failed),
  // plus `also` (tokens = offsets about to be committed with their rows), were done: the first
  // emitted offset not covered, else one past the last emitted; -1 before anything was emitted.
  virtual std::int64_t next_offset_with(std::span<const std::uint64_t> also) const = 0;
};

struct PartitionClaimRequest {
  std::string topic;
  std::int32_t partition = 0;
  std::shared_ptr<TrackedPartition> target;  // the events of this assignment settle here
  std::string owner;                         // whose positions these are: the source's consumer group
};

struct PartitionClaim {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t epoch = 0;         // ours now; every earlier owner is fenced
  std::int64_t next_offset = -1;  // where to resume; -1: nothing stored yet
};

class OffsetStore {
 public:
  virtual ~OffsetStore() = default;
  // What the store is, for log lines ("PostgreSQL table etld_offsets").
  virtual std::string description() const = 0;
  // Claims the partitions: bumps each one's epoch in the store, so that a previous owner can no
  // longer commit, and binds it to its target. `done` runs once on another thread, with the
  // claims in request order, or with an error message (then nothing is claimed). Transient
  // failures (the database restarting) are retried until they pass.
  using ClaimDone = std::function<void(std::vector<PartitionClaim> claims, std::string error)>;
  virtual void claim(std::vector<PartitionClaimRequest> partitions, ClaimDone done) = 0;
  // The partition is no longer ours (revoked or lost), if `target` is still its claim's target:
  // events of that assignment that reach the sink from now on are dropped, not written.
  virtual void release(const std::string& topic, std::int32_t partition, const TrackedPartition* target) = 0;
  // The next offset committed to the store under our current claim (-1: none), and that claim's
  // epoch (0: no claim): what the source reports and commits to Kafka for lag monitoring.
  virtual std::int64_t written(const std::string& topic, std::int32_t partition) const = 0;
  virtual std::int64_t epoch(const std::string& topic, std::int32_t partition) const = 0;
};

}  // namespace etld
