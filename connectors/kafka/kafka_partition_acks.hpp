// The kafka source's acknowledgements: one commit window per assigned partition, which sinks
// settle from their strands, the Waker by which a settlement wakes the source's strand, and the
// in-flight cap on a window. The source commits a partition only up to its window's first offset
// not settled (or failed).
// Threading: PartitionAcks and Waker are thread-safe; InFlightCap is a value.
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "stages/engine/offset_store.hpp"

namespace etld::kafka {

// Wakes the source's strand from any thread, at most one pending post at a time. Cleared when the
// source closes, so late settlements never touch a dead strand.
class Waker {
 public:
  void arm(boost::asio::any_io_executor ex, std::function<void()> fn);
  void clear();
  void wake();
  void rearm();  // the posted wake-up ran: the next wake() posts again

 private:
  std::mutex mu_;
  std::optional<boost::asio::any_io_executor> ex_;
  std::function<void()> fn_;
  bool posted_ = false;
};

// max_in_flight_per_partition: a partition may hold at most `max` events emitted and not yet
// committable (its window) or fetched and not yet emitted. At the cap it pauses; once paused, it
// resumes only when they are down to resume_at(), a quarter under, so that it does not flap
// between paused and fetching one settlement at a time.
class InFlightCap {
 public:
  explicit InFlightCap(std::size_t max) : max_(max) {}
  std::size_t max() const { return max_; }
  std::size_t resume_at() const { return max_ - std::max<std::size_t>(1, max_ / 4); }
  // How many more events may be emitted from a partition whose window holds `window`.
  std::size_t room(std::size_t window) const { return window < max_ ? max_ - window : 0; }
  // Whether a partition holding `held` events (window and buffer) should fetch, paused or not now.
  bool fetches(std::size_t held, bool paused) const { return paused ? held <= resume_at() : held < max_; }

 private:
  std::size_t max_;
};

// The ack target of one assigned partition (one per assignment: a partition revoked and assigned
// again gets a fresh one). Tokens are offsets. Keeps the commit window: the emitted offsets from
// the first one not yet settled (or failed) on.
class PartitionAcks final : public TrackedPartition {
 public:
  explicit PartitionAcks(std::shared_ptr<Waker> waker) : waker_(std::move(waker)) {}

  void settle(std::uint64_t token, AckStatus status) override;
  void settle_many(std::span<const std::uint64_t> tokens, AckStatus status) override;
  std::int64_t next_offset_with(std::span<const std::uint64_t> also) const override;

  // Source strand: these offsets (increasing, above every earlier one) are being emitted.
  void add(const std::vector<std::int64_t>& offsets);
  // The offset to commit: the first emitted one not settled (or failed), else one past the last
  // emitted; -1 before anything was emitted.
  std::int64_t commit_offset() const;
  std::size_t window() const;
  std::size_t unsettled() const;  // events emitted and not settled
  std::int64_t failed_offset() const;
  // Wake the source once the window shrinks to `n` events (or below).
  void wake_at(std::size_t n);
  // After a revoke: later settlements change nothing.
  void detach();

 private:
  static constexpr std::size_t kNever = static_cast<std::size_t>(-1);
  struct Slot {
    std::int64_t offset;
    AckStatus status;
    bool settled;
  };

  // Returns whether the source should wake (a first failure).
  bool settle_locked(std::int64_t offset, AckStatus status);
  // Drops the settled prefix (never past a failed slot); returns whether the source should wake.
  bool advance_locked();

  mutable std::mutex mu_;
  std::deque<Slot> window_;
  std::int64_t next_ = -1;
  std::int64_t failed_ = -1;
  std::size_t unsettled_ = 0;
  std::size_t wake_at_ = kNever;
  bool detached_ = false;
  std::shared_ptr<Waker> waker_;
};

}  // namespace etld::kafka
