// One subscription's demand, consumer side, with GenStage's max_demand/min_demand semantics:
// grant max_demand on subscribe; once max_demand - min_demand events have been processed, grant
// that many again. So granted-but-undelivered plus delivered-but-unprocessed never exceeds
// max_demand. Not thread-safe: owned by the consumer's strand.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace etld {

class Credit {
 public:
  Credit(std::size_t max_demand, std::size_t min_demand) : max_(max_demand), min_(min_demand) {
    if (max_ == 0 || min_ >= max_) throw std::invalid_argument("credit: need 0 <= min_demand < max_demand");
  }

  std::size_t grant_initial() {
    outstanding_ = max_;
    return max_;
  }
  // Events arrived. Throws std::logic_error if a producer sent more than was granted.
  void on_received(std::size_t n) {
    if (n > outstanding_)
      throw std::logic_error("demand violated: received " + std::to_string(n) + " events with only " +
                             std::to_string(outstanding_) + " granted");
    outstanding_ -= n;
    unprocessed_ += n;
  }
  // Events processed. Returns the demand to ask upstream now (0 while above min_demand).
  std::size_t on_processed(std::size_t n) {
    if (n > unprocessed_) throw std::logic_error("credit: processed more events than received");
    unprocessed_ -= n;
    pending_ += n;
    if (pending_ < max_ - min_) return 0;
    auto ask = pending_;
    pending_ = 0;
    outstanding_ += ask;
    return ask;
  }
  std::size_t outstanding() const { return outstanding_; }  // granted, not yet delivered
  std::size_t unprocessed() const { return unprocessed_; }  // delivered, not yet processed
  std::size_t max_demand() const { return max_; }
  std::size_t min_demand() const { return min_; }

 private:
  std::size_t max_, min_;
  std::size_t outstanding_ = 0, unprocessed_ = 0, pending_ = 0;
};

}  // namespace etld
