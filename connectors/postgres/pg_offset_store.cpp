#include "connectors/postgres/pg_offset_store.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connectors/postgres/pg_connection.hpp"

namespace etld::pg {

PgOffsetStore::PgOffsetStore(std::shared_ptr<const PostgresSinkConfig> cfg) : cfg_(std::move(cfg)) {}

PgOffsetStore::~PgOffsetStore() {
  std::deque<Request> left;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    left.swap(requests_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& r : left) r.done({}, "the offset store is shutting down");
}

std::string PgOffsetStore::description() const {
  return fmt::format("PostgreSQL table {} ({})", cfg_->offsets_display, cfg_->dsn_redacted);
}

void PgOffsetStore::claim(std::vector<PartitionClaimRequest> partitions, ClaimDone done) {
  {
    std::lock_guard lock(mu_);
    if (stop_) {
      done({}, "the offset store is shutting down");
      return;
    }
    requests_.push_back(Request{std::move(partitions), std::move(done)});
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  cv_.notify_all();
}

void PgOffsetStore::release(const std::string& topic, std::int32_t partition,
                            const TrackedPartition* target) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  if (it != claims_.end() && it->second.target.get() == target) claims_.erase(it);
}

std::int64_t PgOffsetStore::written(const std::string& topic, std::int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  return it == claims_.end() ? -1 : it->second.written;
}

std::int64_t PgOffsetStore::epoch(const std::string& topic, std::int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  return it == claims_.end() ? 0 : it->second.epoch;
}

std::optional<PgOffsetStore::Live> PgOffsetStore::live(const std::string& topic,
                                                       std::int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  if (it == claims_.end()) return std::nullopt;
  return it->second;
}

void PgOffsetStore::committed(const std::string& topic, std::int32_t partition, std::int64_t epoch,
                              std::int64_t next_offset) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  if (it != claims_.end() && it->second.epoch == epoch) it->second.written = next_offset;
}

void PgOffsetStore::fenced(const std::string& topic, std::int32_t partition, std::int64_t epoch) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(Key(topic, partition));
  if (it != claims_.end() && it->second.epoch == epoch) claims_.erase(it);
}

// All partitions of one assignment in one transaction: either every epoch moved or none did.
std::vector<PartitionClaim> PgOffsetStore::claim_now(const std::vector<PartitionClaimRequest>& partitions) {
  auto& conn = conn_;
  std::vector<PartitionClaim> out;
  try {
    // Inside the try: a DDL failure must not leave an aborted transaction on a connection that
    // looks healthy (every later claim would fail with 25P02).
    if (!conn || !conn->ok()) {
      conn.reset();
      conn = std::make_unique<PgConnection>(cfg_->dsn);
      conn->exec("BEGIN");
      conn->exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", {cfg_->offsets_lock_key});
      conn->exec(cfg_->create_offsets_sql);
      conn->exec("COMMIT");
    }
    conn->exec("BEGIN");
    for (const auto& p : partitions) {
      Result r = conn->exec_params(cfg_->claim_offset_sql, {p.owner, p.topic, std::to_string(p.partition)});
      PartitionClaim c;
      c.topic = p.topic;
      c.partition = p.partition;
      c.epoch = std::stoll(PQgetvalue(r.get(), 0, 0));
      c.next_offset = PQgetisnull(r.get(), 0, 1) ? -1 : std::stoll(PQgetvalue(r.get(), 0, 1));
      out.push_back(std::move(c));
    }
    conn->exec("COMMIT");
  } catch (const PgError&) {
    conn.reset();  // whatever state the transaction was in, it is gone with the connection
    throw;
  }
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < out.size(); ++i)
    claims_[Key(out[i].topic, out[i].partition)] =
        Live{out[i].epoch, out[i].next_offset, partitions[i].target, partitions[i].owner};
  return out;
}

void PgOffsetStore::run() {
  auto backoff = cfg_->initial_backoff;
  for (;;) {
    Request req;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !requests_.empty(); });
      if (stop_) return;
      req = std::move(requests_.front());
      requests_.pop_front();
    }
    for (;;) {
      try {
        auto claims = claim_now(req.partitions);
        backoff = cfg_->initial_backoff;
        req.done(std::move(claims), {});
        break;
      } catch (const PgError& e) {
        if (e.error_class() != ErrorClass::transient) {
          req.done({}, fmt::format("claiming partitions in the offsets table {} failed: {} (SQLSTATE {})",
                                   cfg_->offsets_display, e.what(), e.sqlstate));
          break;
        }
        spdlog::warn("stage {}: claiming partitions in {} failed transiently: {}; retrying in {} ms",
                     cfg_->stage, cfg_->offsets_display, e.what(), backoff.count());
      }
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, backoff, [&] { return stop_; })) {
        lock.unlock();
        req.done({}, "the offset store is shutting down");
        return;
      }
      backoff = std::min(cfg_->max_backoff, backoff * 2);
    }
  }
}

}  // namespace etld::pg
