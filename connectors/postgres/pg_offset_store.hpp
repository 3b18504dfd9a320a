// The offset store of a postgres sink with `delivery: exactly_once`: per (consumer group, topic,
// partition) the next offset to read and an epoch, in a PostgreSQL table. Claims (on partition
// assignment) run on a thread and connection of their own; the sink's writers commit offsets in
// their own transactions with the epoch and expected previous offset they read here, and report
// back what committed or was fenced.
// Threading: every method is thread-safe; claims run on the store's thread, started on first use.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "connectors/postgres/pg_config.hpp"
#include "connectors/postgres/pg_connection.hpp"
#include "stages/engine/offset_store.hpp"

namespace etld::pg {

class PgOffsetStore final : public OffsetStore {
 public:
  explicit PgOffsetStore(std::shared_ptr<const PostgresSinkConfig> cfg);
  ~PgOffsetStore() override;

  std::string description() const override;
  void claim(std::vector<PartitionClaimRequest> partitions, ClaimDone done) override;
  void release(const std::string& topic, std::int32_t partition, const TrackedPartition* target) override;
  std::int64_t written(const std::string& topic, std::int32_t partition) const override;
  std::int64_t epoch(const std::string& topic, std::int32_t partition) const override;

  // For the sink's writers.
  struct Live {
    std::int64_t epoch = 0;
    std::int64_t written = -1;  // the offset row's next_offset as we last committed or read it
    std::shared_ptr<TrackedPartition> target;
    std::string owner;  // the consumer group whose row in the offsets table this is
  };
  // Our live claim of the partition, if any.
  std::optional<Live> live(const std::string& topic, std::int32_t partition) const;
  // A transaction under `epoch` committed `next_offset`.
  void committed(const std::string& topic, std::int32_t partition, std::int64_t epoch,
                 std::int64_t next_offset);
  // Another instance claimed the partition after us (its epoch is higher): our claim is void.
  void fenced(const std::string& topic, std::int32_t partition, std::int64_t epoch);

 private:
  using Key = std::pair<std::string, std::int32_t>;
  struct Request {
    std::vector<PartitionClaimRequest> partitions;
    ClaimDone done;
  };
  void run();
  std::vector<PartitionClaim> claim_now(const std::vector<PartitionClaimRequest>& partitions);

  std::shared_ptr<const PostgresSinkConfig> cfg_;
  mutable std::mutex mu_;
  std::map<Key, Live> claims_;
  std::condition_variable cv_;
  // One request per assignment being claimed: a source waits for its answer before the next.
  std::deque<Request> requests_;
  bool stop_ = false;
  std::unique_ptr<PgConnection> conn_;  // the store's thread only
  std::thread thread_;
};

}  // namespace etld::pg
