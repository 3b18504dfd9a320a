// The per-partition commit window of the kafka source (see kafka_partition_acks.hpp): settling is
// a lookup by offset, usually without a search, and the window's settled prefix is dropped at
// once so that the commit offset is always its front.
#include "connectors/kafka/kafka_partition_acks.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace etld::kafka {

void Waker::arm(boost::asio::any_io_executor ex, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  ex_ = std::move(ex);
  fn_ = std::move(fn);
}

void Waker::clear() {
  std::lock_guard lock(mu_);
  ex_.reset();
  fn_ = nullptr;
}

void Waker::wake() {
  std::lock_guard lock(mu_);
  if (!ex_ || posted_) return;
  posted_ = true;
  boost::asio::post(*ex_, fn_);
}

void Waker::rearm() {
  std::lock_guard lock(mu_);
  posted_ = false;
}

void PartitionAcks::settle(std::uint64_t token, AckStatus status) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    wake = settle_locked(static_cast<std::int64_t>(token), status);
    wake = advance_locked() || wake;
  }
  if (wake) waker_->wake();
}

void PartitionAcks::settle_many(std::span<const std::uint64_t> tokens, AckStatus status) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    for (auto t : tokens) wake = settle_locked(static_cast<std::int64_t>(t), status) || wake;
    wake = advance_locked() || wake;
  }
  if (wake) waker_->wake();
}

void PartitionAcks::add(const std::vector<std::int64_t>& offsets) {
  std::lock_guard lock(mu_);
  for (auto o : offsets) window_.push_back(Slot{o, AckStatus::done, false});
  if (!offsets.empty()) next_ = offsets.back() + 1;
  unsettled_ += offsets.size();
}

std::int64_t PartitionAcks::commit_offset() const {
  std::lock_guard lock(mu_);
  return window_.empty() ? next_ : window_.front().offset;
}

std::size_t PartitionAcks::window() const {
  std::lock_guard lock(mu_);
  return window_.size();
}

std::size_t PartitionAcks::unsettled() const {
  std::lock_guard lock(mu_);
  return unsettled_;
}

std::int64_t PartitionAcks::next_offset_with(std::span<const std::uint64_t> also) const {
  std::vector<std::uint64_t> extra(also.begin(), also.end());
  if (!std::is_sorted(extra.begin(), extra.end())) std::sort(extra.begin(), extra.end());
  std::lock_guard lock(mu_);
  // Both in offset order: one walk along the two.
  auto x = extra.begin();
  for (const Slot& s : window_) {
    const auto offset = static_cast<std::uint64_t>(s.offset);
    while (x != extra.end() && *x < offset) ++x;
    bool covered = (s.settled && s.status != AckStatus::failed) || (x != extra.end() && *x == offset);
    if (!covered) return s.offset;
  }
  return next_;
}

std::int64_t PartitionAcks::failed_offset() const {
  std::lock_guard lock(mu_);
  return failed_;
}

void PartitionAcks::wake_at(std::size_t n) {
  bool now = false;
  {
    std::lock_guard lock(mu_);
    wake_at_ = n;
    now = window_.size() <= n;
    if (now) wake_at_ = kNever;
  }
  if (now) waker_->wake();
}

void PartitionAcks::detach() {
  std::lock_guard lock(mu_);
  detached_ = true;
  wake_at_ = kNever;
}

bool PartitionAcks::settle_locked(std::int64_t offset, AckStatus status) {
  if (detached_ || window_.empty()) return false;
  // Offsets are consecutive but for gaps (compaction, transaction markers): look where the
  // offset would be without gaps first, and search only when a gap moved it.
  auto it = window_.end();
  if (auto at = offset - window_.front().offset; at >= 0 && static_cast<std::size_t>(at) < window_.size() &&
                                                 window_[static_cast<std::size_t>(at)].offset == offset)
    it = window_.begin() + at;
  else
    it = std::lower_bound(window_.begin(), window_.end(), offset,
                          [](const Slot& s, std::int64_t o) { return s.offset < o; });
  if (it == window_.end() || it->offset != offset || it->settled) return false;  // unknown or twice
  it->settled = true;
  it->status = status;
  if (unsettled_ > 0) --unsettled_;
  if (status == AckStatus::failed && (failed_ < 0 || offset < failed_)) {
    failed_ = offset;
    return true;
  }
  return false;
}

bool PartitionAcks::advance_locked() {
  while (!window_.empty() && window_.front().settled && window_.front().status != AckStatus::failed)
    window_.pop_front();
  if (wake_at_ != kNever && (window_.size() <= wake_at_ || unsettled_ == 0)) {
    wake_at_ = kNever;
    return true;
  }
  return false;
}

}  // namespace etld::kafka
