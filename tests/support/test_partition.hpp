// A partition assignment as the kafka source keeps it (etld::TrackedPartition): the offsets
// emitted and how each settled, for the exactly-once tests that drive the postgres sink directly.
// Threading: thread-safe (the sink settles from its strand, the test reads from its thread).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "stages/engine/offset_store.hpp"

namespace etld::test {

class TestPartition final : public TrackedPartition {
 public:
  void emitted(std::int64_t from, std::int64_t to) {
    std::lock_guard lock(mu_);
    for (auto o = from; o < to; ++o) settled_.emplace_back(o, std::nullopt);
  }
  void settle(std::uint64_t token, AckStatus status) override {
    std::lock_guard lock(mu_);
    for (auto& [o, s] : settled_)
      if (o == static_cast<std::int64_t>(token)) s = status;
  }
  std::int64_t next_offset_with(std::span<const std::uint64_t> also) const override {
    std::lock_guard lock(mu_);
    for (const auto& [o, s] : settled_) {
      bool covered = (s && *s != AckStatus::failed) ||
                     std::find(also.begin(), also.end(), static_cast<std::uint64_t>(o)) != also.end();
      if (!covered) return o;
    }
    return settled_.empty() ? -1 : settled_.back().first + 1;
  }
  std::size_t count(AckStatus status) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(settled_.begin(), settled_.end(), [&](const auto& p) { return p.second == status; }));
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::int64_t, std::optional<AckStatus>>> settled_;
};

}  // namespace etld::test
