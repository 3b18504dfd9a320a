// Cuts a sink's input into batches: a batch is due when it holds max_rows rows or max_bytes
// bytes, when the oldest pending row has waited `linger`, when the sink is draining, or when the
// sink holds all the credit upstream may send (nothing more can come, so waiting is pointless).
// `Work` is the sink's own batch type (rows, encoded bytes, events): the batcher only counts.
// Memory: at most credit_limit rows are pending, since rows come only against credit.
// Strand-bound.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "stages/sink/instance_scope.hpp"

namespace etld::sink {

struct BatchLimits {
  std::size_t max_rows = 10000;
  std::size_t max_bytes = 0;  // 0: no byte limit
  std::chrono::milliseconds linger{100};
  // The most events upstream sends before the sink reports them done (its credit).
  std::size_t credit_limit = 1000;
};

template <class Work>
class Batcher {
 public:
  // make() creates an empty batch; on_due() runs on the strand when the linger time is up (the
  // sink then calls take_ready()).
  Batcher(const boost::asio::any_io_executor& strand, BatchLimits limits,
          std::function<std::unique_ptr<Work>()> make, std::function<void()> on_due)
      : limits_(limits), make_(std::move(make)), on_due_(std::move(on_due)), timer_(strand) {}

  // The batch the next row goes into: the newest one, or a new one when that is full.
  Work& open() {
    if (pending_.empty() || full(pending_.back())) pending_.push_back(Slot{make_(), 0, 0});
    return *pending_.back().work;
  }
  // After putting rows into open(): counts them and starts the linger time if not running.
  void added(std::size_t rows, std::size_t bytes) {
    pending_.back().rows += rows;
    pending_.back().bytes += bytes;
    rows_ += rows;
    if (!timer_.armed() && !due_) arm();
  }
  // The oldest batch when it is due, else nullptr.
  std::unique_ptr<Work> take_ready() {
    if (pending_.empty()) return nullptr;
    const bool credit_exhausted = rows_ >= limits_.credit_limit;
    if (!full(pending_.front()) && !due_ && !draining_ && !credit_exhausted) return nullptr;
    Slot s = std::move(pending_.front());
    pending_.pop_front();
    rows_ -= s.rows;
    due_ = false;
    timer_.cancel();
    if (!pending_.empty()) arm();
    return std::move(s.work);
  }
  // Rows handed back (they wait for a later batch): the linger time starts again for them.
  void restart_linger() {
    due_ = false;
    if (!timer_.armed()) arm();
  }
  // From now on every pending batch is due.
  void drain() { draining_ = true; }
  // Empties the batcher: the pending batches, oldest first (to fail them).
  std::deque<std::unique_ptr<Work>> take_all() {
    std::deque<std::unique_ptr<Work>> out;
    for (auto& s : pending_) out.push_back(std::move(s.work));
    pending_.clear();
    rows_ = 0;
    return out;
  }
  bool empty() const { return pending_.empty(); }
  std::size_t rows() const { return rows_; }

 private:
  struct Slot {
    std::unique_ptr<Work> work;
    std::size_t rows = 0, bytes = 0;
  };
  bool full(const Slot& s) const {
    return s.rows >= limits_.max_rows || (limits_.max_bytes > 0 && s.bytes >= limits_.max_bytes);
  }
  void arm() {
    timer_.start(limits_.linger, [this] {
      due_ = true;
      on_due_();
    });
  }

  BatchLimits limits_;
  std::function<std::unique_ptr<Work>()> make_;
  std::function<void()> on_due_;
  StrandTimer timer_;
  std::deque<Slot> pending_;
  std::size_t rows_ = 0;
  bool due_ = false, draining_ = false;
};

}  // namespace etld::sink
